"""Evaluation metrics for the three families: GlaS object scores, CTC error rates, top-k error.

GlaS (Sirinukunwattana et al. 2017, the challenge's definitions), for instance-label images
(0 = background, 1..K = objects), pooled over a whole sequence of images:

- object F1: a segmented object S_j is a true positive when it covers more than 50% of the
  ground-truth object it overlaps most; FP = segmented objects - TP, FN = ground-truth objects - TP;
  TP, FP and FN are summed over the sequence before F1 = 2TP / (2TP + FP + FN).
- object Dice: 1/2 [sum_i g_i Dice(G_i, S*(G_i)) + sum_j s_j Dice(G*(S_j), S_j)], where S*(G_i) is
  the segmented object overlapping G_i most (Dice 0 when none overlaps) and g_i, s_j are each
  object's share of the total ground-truth / segmented area of the sequence.
- object Hausdorff: the same weighting with the Hausdorff distance; an object that overlaps nothing
  is paired with the object on the other side nearest to it in Hausdorff distance (as the
  challenge's code does), and with the image diagonal when the other side of that image is empty.

Edge cases: when one side of the whole sequence is empty, its half of Dice / Hausdorff takes the
value of the other half (so an empty prediction scores Dice 0 and Hausdorff = the diagonals);
when both sides are empty, F1 = Dice = 1 and Hausdorff = 0.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = [
    "glas_scores",
    "f1_dice_mean",
    "instances_from_probability",
    "hausdorff_distance",
    "token_error_rate",
    "topk_error",
]


def instances_from_probability(
    probability: np.ndarray, threshold: float = 0.5, min_size: int = 0, fill_holes: bool = True
) -> np.ndarray:
    """Turn a 2-D gland probability map into an int32 instance-label image.

    Pixels above ``threshold`` are foreground; 8-connected components become objects, holes
    inside an object are filled, and objects smaller than ``min_size`` pixels are dropped
    (then labels are renumbered 1..K).
    """
    prob = np.asarray(probability)
    if prob.ndim != 2:
        raise ValueError(f"expected a 2-D probability map, got shape {prob.shape}")
    fg = prob > threshold
    if fill_holes:
        fg = ndimage.binary_fill_holes(fg)
    labels, count = ndimage.label(fg, structure=np.ones((3, 3), dtype=bool))
    if min_size > 0 and count:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        keep = sizes >= min_size
        keep[0] = False
        remap = np.zeros(count + 1, dtype=np.int32)
        remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        labels = remap[labels]
    return labels.astype(np.int32, copy=False)


def hausdorff_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Euclidean Hausdorff distance between two non-empty boolean masks (pixels)."""
    rows, cols = np.nonzero(a | b)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    a, b = a[r0:r1, c0:c1], b[r0:r1, c0:c1]  # every point of both lies in the union's box
    to_b = ndimage.distance_transform_edt(~b)
    to_a = ndimage.distance_transform_edt(~a)
    return float(max(to_b[a].max(), to_a[b].max()))


@dataclass
class _Pool:
    """Running sums of the GlaS statistics over a sequence of images."""

    tp: int = 0
    n_seg: int = 0
    n_gt: int = 0
    # [weighted dice, weighted hausdorff, total area] for the ground-truth and segmented sides
    gt_side: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    seg_side: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


def _overlaps(seg: np.ndarray, gt: np.ndarray, n_seg: int, n_gt: int) -> np.ndarray:
    """(n_seg+1, n_gt+1) pixel counts of every (segmented id, ground-truth id) pair."""
    flat = seg.astype(np.int64) * (n_gt + 1) + gt.astype(np.int64)
    return np.bincount(flat.ravel(), minlength=(n_seg + 1) * (n_gt + 1)).reshape(n_seg + 1, n_gt + 1)


def _side_sums(
    own: list[np.ndarray],
    other: list[np.ndarray],
    overlap: np.ndarray,
    diagonal: float,
    sums: list[float],
) -> None:
    """Add the area-weighted Dice and Hausdorff of each object in ``own`` to ``sums``.

    ``overlap[i, j]`` is the pixel count of own object i with other object j (no background).
    """
    for i, obj in enumerate(own):
        area = float(obj.sum())
        if other and overlap[i].max() > 0:
            j = int(overlap[i].argmax())
            partner = other[j]
            dice = 2.0 * overlap[i, j] / (area + float(partner.sum()))
            haus = hausdorff_distance(obj, partner)
        elif other:
            dice = 0.0
            haus = min(hausdorff_distance(obj, o) for o in other)
        else:
            dice, haus = 0.0, diagonal
        sums[0] += area * dice
        sums[1] += area * haus
        sums[2] += area


def _add_image(pool: _Pool, seg: np.ndarray, gt: np.ndarray) -> None:
    """Accumulate one (prediction, target) pair of instance-label images."""
    _, seg_c = np.unique(seg, return_inverse=True)
    _, gt_c = np.unique(gt, return_inverse=True)
    # compress labels to 0..K keeping 0 = background (np.unique sorts, so 0 stays first)
    seg_c = seg_c.reshape(seg.shape) + (0 if (seg == 0).any() else 1)
    gt_c = gt_c.reshape(gt.shape) + (0 if (gt == 0).any() else 1)
    n_seg, n_gt = int(seg_c.max()), int(gt_c.max())
    seg_objs = [seg_c == i for i in range(1, n_seg + 1)]
    gt_objs = [gt_c == i for i in range(1, n_gt + 1)]
    ov = _overlaps(seg_c, gt_c, n_seg, n_gt)[1:, 1:]
    gt_area = np.array([o.sum() for o in gt_objs], dtype=np.float64)
    for j in range(n_seg):
        if n_gt and ov[j].max() > 0:
            best = int(ov[j].argmax())
            if ov[j, best] > 0.5 * gt_area[best]:
                pool.tp += 1
    pool.n_seg += n_seg
    pool.n_gt += n_gt
    diagonal = float(np.hypot(*seg.shape))
    _side_sums(gt_objs, seg_objs, ov.T, diagonal, pool.gt_side)
    _side_sums(seg_objs, gt_objs, ov, diagonal, pool.seg_side)


def glas_scores(
    predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray]
) -> dict[str, float]:
    """GlaS object F1, object Dice and object Hausdorff of instance-label images, pooled.

    ``predictions`` and ``targets`` are equally long sequences of 2-D integer arrays of equal
    shapes (0 = background). Returns ``{"f1", "object_dice", "object_hausdorff"}``.
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    pool = _Pool()
    for k, (seg, gt) in enumerate(zip(predictions, targets)):
        seg, gt = np.asarray(seg), np.asarray(gt)
        if seg.shape != gt.shape or seg.ndim != 2:
            raise ValueError(f"image {k}: prediction {seg.shape} and target {gt.shape} differ or are not 2-D")
        if not (np.issubdtype(seg.dtype, np.integer) and np.issubdtype(gt.dtype, np.integer)):
            raise ValueError(f"image {k}: instance labels must be integer arrays")
        if (seg < 0).any() or (gt < 0).any():
            raise ValueError(f"image {k}: instance labels must be >= 0 (0 = background)")
        _add_image(pool, seg, gt)
    fp, fn = pool.n_seg - pool.tp, pool.n_gt - pool.tp
    f1 = 1.0 if pool.tp + fp + fn == 0 else 2.0 * pool.tp / (2.0 * pool.tp + fp + fn)
    halves = []
    for metric in (0, 1):
        g = pool.gt_side[metric] / pool.gt_side[2] if pool.gt_side[2] else None
        s = pool.seg_side[metric] / pool.seg_side[2] if pool.seg_side[2] else None
        if g is None and s is None:
            halves.append(1.0 if metric == 0 else 0.0)
        else:
            g = s if g is None else g
            s = g if s is None else s
            halves.append(0.5 * (g + s))
    return {"f1": float(f1), "object_dice": float(halves[0]), "object_hausdorff": float(halves[1])}


def f1_dice_mean(scores: dict[str, float]) -> float:
    """The paper's single segmentation number: the average of object F1 and object Dice."""
    return 0.5 * (scores["f1"] + scores["object_dice"])


def token_error_rate(predictions: Sequence[Sequence[str]], targets: Sequence[Sequence[str]]) -> float:
    """Edit distance of token sequences over the total reference length (PER on phones, WER on words).

    Uses torchmetrics' word error rate on space-joined tokens, so tokens must not contain spaces.
    """
    from torchmetrics.functional.text import word_error_rate

    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    preds = [" ".join(p) for p in predictions]
    refs = [" ".join(t) for t in targets]
    if not any(refs):
        raise ValueError("all reference sequences are empty")
    return float(word_error_rate(preds, refs))


def topk_error(logits, target, k: int = 1) -> float:
    """Fraction of samples whose target is not among the k highest logits (top-k error)."""
    import torch

    logits, target = torch.as_tensor(logits), torch.as_tensor(target)
    k = min(k, logits.shape[-1])
    hit = (logits.topk(k, dim=-1).indices == target.unsqueeze(-1)).any(dim=-1)
    return float(1.0 - hit.float().mean())
