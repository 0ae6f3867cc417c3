"""Scoring a pool with real (tiny) FCNs: agreement gives zero uncertainty, batching changes nothing."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from inqnet.modules.networks.fcn import ResidualFCN
from inqnet.modules.suggestive.scoring import score_pool


def _images(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = {"train_1": 32, "train_2": 32, "train_3": 48, "train_4[0:32,0:32]": 32, "train_5": 32}
    return {k: rng.integers(0, 255, size=(s, s, 3), dtype=np.uint8) for k, s in sizes.items()}


def _fcn(seed: int) -> ResidualFCN:
    torch.manual_seed(seed)
    return ResidualFCN(width=4)


def test_uncertainty_and_distance_are_zero_when_all_fcns_agree() -> None:
    net = _fcn(0)
    scores = score_pool([net, copy.deepcopy(net), copy.deepcopy(net)], _images())
    assert np.all(scores.uncertainty == 0.0)
    assert np.all(scores.distance == 0.0)
    assert scores.descriptors.shape == (5, 16 * 4)


def test_disagreeing_fcns_are_uncertain() -> None:
    scores = score_pool([_fcn(0), _fcn(1)], _images())
    assert np.all(scores.uncertainty > 0.0)
    assert np.all(scores.distance > 0.0)
    # for two FCNs the pixel std is half the absolute difference
    np.testing.assert_allclose(scores.uncertainty, scores.distance / 2, rtol=1e-6)


def test_batching_by_shape_matches_one_at_a_time() -> None:
    fcns = [_fcn(0), _fcn(1)]
    images = _images(3)
    batched, single = score_pool(fcns, images, batch_size=8), score_pool(fcns, images, batch_size=1)
    assert batched.ids == list(images)
    np.testing.assert_allclose(batched.uncertainty, single.uncertainty, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(batched.descriptors, single.descriptors, rtol=1e-4, atol=1e-6)


def test_modes_are_restored() -> None:
    fcns = [_fcn(0).train(), _fcn(1).eval()]
    score_pool(fcns, _images())
    assert fcns[0].training and not fcns[1].training
    with pytest.raises(ValueError):
        score_pool([], _images())
