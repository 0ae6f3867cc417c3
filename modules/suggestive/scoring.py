"""Runs the K suggestive FCNs over a pool: per item its uncertainty, its descriptor, and the FCNs'
disagreement (the diversity quantization is meant to raise).

The FCNs are segmentation modules whose network gives ``(logits, descriptor)`` for
``net(x, return_descriptor=True)`` (``inqnet.modules.networks.fcn.ResidualFCN``). Items are batched by
shape; each is normalised on its own, as training patches are.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import torch
from torch import nn

from inqnet.modules.datamodules.glas import normalise_image
from inqnet.modules.suggestive.selection import mean_pairwise_distance, uncertainty


@dataclass
class PoolScores:
    """What the FCNs say about each pool item (rows in ``ids`` order)."""

    ids: list[str]
    uncertainty: np.ndarray  # (N,) mean over pixels of the std across FCNs
    descriptors: np.ndarray  # (N, D) the FCNs' mean image descriptor
    distance: np.ndarray  # (N,) mean pairwise L1 distance of the FCNs' probability maps

    def uncertainties(self) -> dict[str, float]:
        return {item: float(u) for item, u in zip(self.ids, self.uncertainty)}


@torch.no_grad()
def fcn_outputs(module: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground probabilities (B, H, W) and descriptors (B, D) of one FCN."""
    net = getattr(module, "net", module)
    logits, descriptor = net(images, return_descriptor=True)
    return torch.sigmoid(logits.float())[:, 0], descriptor.float()


@torch.no_grad()
def score_pool(fcns: Sequence[nn.Module], images: Mapping[str, np.ndarray], batch_size: int = 8,
               device: torch.device | str = "cpu") -> PoolScores:
    """Scores every item of ``images`` (id -> (H, W, 3) uint8) with every FCN (in eval mode)."""
    if len(fcns) < 1:
        raise ValueError("no suggestive FCNs to score with")
    ids = list(images)
    modes = [fcn.training for fcn in fcns]
    for fcn in fcns:
        fcn.eval().to(device)
    unc, dist, desc = np.zeros(len(ids)), np.zeros(len(ids)), [np.empty(0)] * len(ids)
    try:
        by_shape = sorted(range(len(ids)), key=lambda i: (images[ids[i]].shape, i))
        for _, group in groupby(by_shape, key=lambda i: images[ids[i]].shape):
            rows = list(group)
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                x = torch.stack([normalise_image(np.ascontiguousarray(images[ids[i]])) for i in chunk]).to(device)
                outputs = [fcn_outputs(fcn, x) for fcn in fcns]
                probs = torch.stack([p for p, _ in outputs], dim=1).cpu().numpy()  # (B, K, H, W)
                mean_desc = torch.stack([d for _, d in outputs]).mean(0).cpu().numpy()  # (B, D)
                for j, i in enumerate(chunk):
                    unc[i] = uncertainty(probs[j])
                    dist[i] = mean_pairwise_distance(probs[j])
                    desc[i] = mean_desc[j]
    finally:
        for fcn, mode in zip(fcns, modes):
            fcn.train(mode)
    return PoolScores(ids=ids, uncertainty=unc, descriptors=np.stack(desc) if ids else np.zeros((0, 0)),
                      distance=dist)
