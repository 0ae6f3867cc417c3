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
import numpy as np
import torch
from scipy import ndimage
from torchmetrics import Metric

__all__ = [
    "glas_scores",
    "glas_statistics",
    "glas_from_statistics",
    "GlasObjectMetric",
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


# Additive per-sequence statistics (so shards of a test set, e.g. DDP ranks, can be summed):
# [TP, segmented objects, ground-truth objects,
#  gt-side area-weighted Dice, gt-side area-weighted Hausdorff, gt-side area,
#  seg-side area-weighted Dice, seg-side area-weighted Hausdorff, seg-side area]
N_STATS = 9


def _overlaps(seg: np.ndarray, gt: np.ndarray, n_seg: int, n_gt: int) -> np.ndarray:
    """(n_seg+1, n_gt+1) pixel counts of every (segmented id, ground-truth id) pair."""
    flat = seg.astype(np.int64) * (n_gt + 1) + gt.astype(np.int64)
    return np.bincount(flat.ravel(), minlength=(n_seg + 1) * (n_gt + 1)).reshape(n_seg + 1, n_gt + 1)


def _side_sums(own: list[np.ndarray], other: list[np.ndarray], overlap: np.ndarray, diagonal: float) -> np.ndarray:
    """[area-weighted Dice, area-weighted Hausdorff, area] summed over the objects of ``own``.

    ``overlap[i, j]`` is the pixel count of own object i with other object j (no background).
    """
    sums = np.zeros(3)
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
        sums += (area * dice, area * haus, area)
    return sums


def _check_pair(seg: np.ndarray, gt: np.ndarray, where: str) -> None:
    if seg.shape != gt.shape or seg.ndim != 2:
        raise ValueError(f"{where}: prediction {seg.shape} and target {gt.shape} differ or are not 2-D")
    if not (np.issubdtype(seg.dtype, np.integer) and np.issubdtype(gt.dtype, np.integer)):
        raise ValueError(f"{where}: instance labels must be integer arrays")
    if (seg < 0).any() or (gt < 0).any():
        raise ValueError(f"{where}: instance labels must be >= 0 (0 = background)")


def glas_statistics(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The additive GlaS statistics (length ``N_STATS``) of one pair of instance-label images."""
    seg, gt = np.asarray(prediction), np.asarray(target)
    _check_pair(seg, gt, "image")
    # compress labels to 0..K keeping 0 = background (np.unique sorts, so 0 stays first)
    _, seg_c = np.unique(seg, return_inverse=True)
    _, gt_c = np.unique(gt, return_inverse=True)
    seg_c = seg_c.reshape(seg.shape) + (0 if (seg == 0).any() else 1)
    gt_c = gt_c.reshape(gt.shape) + (0 if (gt == 0).any() else 1)
    n_seg, n_gt = int(seg_c.max()), int(gt_c.max())
    seg_objs = [seg_c == i for i in range(1, n_seg + 1)]
    gt_objs = [gt_c == i for i in range(1, n_gt + 1)]
    ov = _overlaps(seg_c, gt_c, n_seg, n_gt)[1:, 1:]
    gt_area = np.array([o.sum() for o in gt_objs], dtype=np.float64)
    tp = 0
    for j in range(n_seg):
        if n_gt and ov[j].max() > 0:
            best = int(ov[j].argmax())
            tp += int(ov[j, best] > 0.5 * gt_area[best])
    diagonal = float(np.hypot(*seg.shape))
    gt_side = _side_sums(gt_objs, seg_objs, ov.T, diagonal)
    seg_side = _side_sums(seg_objs, gt_objs, ov, diagonal)
    return np.concatenate([[tp, n_seg, n_gt], gt_side, seg_side]).astype(np.float64)


def glas_from_statistics(stats: np.ndarray) -> dict[str, float]:
    """F1, object Dice and object Hausdorff from summed statistics (see the module docstring)."""
    tp, n_seg, n_gt = (float(v) for v in stats[:3])
    fp, fn = n_seg - tp, n_gt - tp
    f1 = 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2.0 * tp + fp + fn)
    halves = []
    for metric in (0, 1):
        g = stats[3 + metric] / stats[5] if stats[5] else None
        s = stats[6 + metric] / stats[8] if stats[8] else None
        if g is None and s is None:
            halves.append(1.0 if metric == 0 else 0.0)
        else:
            g = s if g is None else g
            s = g if s is None else s
            halves.append(0.5 * (g + s))
    return {"f1": float(f1), "object_dice": float(halves[0]), "object_hausdorff": float(halves[1])}


def glas_scores(
    predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray]
) -> dict[str, float]:
    """GlaS object F1, object Dice and object Hausdorff of instance-label images, pooled.

    ``predictions`` and ``targets`` are equally long sequences of 2-D integer arrays of equal
    shapes (0 = background). Returns ``{"f1", "object_dice", "object_hausdorff"}``.
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    total = np.zeros(N_STATS)
    for k, (seg, gt) in enumerate(zip(predictions, targets)):
        seg, gt = np.asarray(seg), np.asarray(gt)
        _check_pair(seg, gt, f"image {k}")
        total += glas_statistics(seg, gt)
    return glas_from_statistics(total)


class GlasObjectMetric(Metric):
    """torchmetrics wrapper of the GlaS scores, pooled over everything seen, optionally per split.

    ``update(predictions, targets, splits=None)`` takes instance-label images and, when the metric
    was built with split names, each image's split. ``compute()`` gives ``f1``, ``object_dice``,
    ``object_hausdorff`` and ``f1_dice`` over all images, plus ``<split>/<score>`` for every split
    that received images. The state is the additive statistics, summed across processes, so DDP
    gives the exact result."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, splits: Sequence[str] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.split_names = tuple(splits)
        rows = len(self.split_names) + 1  # row 0: all images
        self.add_state("stats", default=torch.zeros(rows, N_STATS, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("images", default=torch.zeros(rows, dtype=torch.float64), dist_reduce_fx="sum")

    def _row(self, split: str | None) -> int | None:
        if split is None:
            return None
        if split not in self.split_names:
            raise ValueError(f"unknown split {split!r} (this metric knows {list(self.split_names)})")
        return 1 + self.split_names.index(split)

    def update(self, predictions: Sequence, targets: Sequence, splits: Sequence[str] | None = None) -> None:
        splits = list(splits) if splits is not None else [None] * len(predictions)
        for seg, gt, split in zip(predictions, targets, splits, strict=True):
            seg = seg.cpu().numpy() if isinstance(seg, torch.Tensor) else np.asarray(seg)
            gt = gt.cpu().numpy() if isinstance(gt, torch.Tensor) else np.asarray(gt)
            stats = torch.from_numpy(glas_statistics(seg, gt)).to(self.stats)
            for row in (0, self._row(split)):
                if row is not None:
                    self.stats[row] += stats
                    self.images[row] += 1

    def compute(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for row, prefix in enumerate(("", *(f"{name}/" for name in self.split_names))):
            if row and not self.images[row]:
                continue
            scores = glas_from_statistics(self.stats[row].cpu().numpy())
            scores["f1_dice"] = f1_dice_mean(scores)
            out.update({prefix + k: torch.tensor(v, dtype=torch.float32) for k, v in scores.items()})
        return out


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
    logits, target = torch.as_tensor(logits), torch.as_tensor(target)
    k = min(k, logits.shape[-1])
    hit = (logits.topk(k, dim=-1).indices == target.unsqueeze(-1)).any(dim=-1)
    return float(1.0 - hit.float().mean())
