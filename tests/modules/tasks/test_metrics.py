"""GlaS object metrics against cases worked out by hand; error-rate helpers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from inqnet.modules.tasks.metrics import (
    f1_dice_mean,
    glas_scores,
    hausdorff_distance,
    instances_from_probability,
    token_error_rate,
    topk_error,
)


def canvas() -> np.ndarray:
    return np.zeros((20, 40), dtype=np.int32)


def test_perfect_prediction() -> None:
    gt = canvas()
    gt[2:12, 2:12] = 1
    gt[2:12, 20:30] = 2
    s = glas_scores([gt.copy()], [gt])
    assert s == {"f1": 1.0, "object_dice": 1.0, "object_hausdorff": 0.0}


def test_empty_prediction() -> None:
    gt = canvas()
    gt[0:10, 0:10] = 1
    gt[0:10, 20:30] = 2
    s = glas_scores([canvas()], [gt])
    assert s["f1"] == 0.0  # TP 0, FP 0, FN 2
    assert s["object_dice"] == 0.0
    assert s["object_hausdorff"] == pytest.approx(np.hypot(20, 40))  # the image diagonal


def test_split_gland() -> None:
    # one 10x20 gland (area 200) predicted as two pieces of 120 and 80 pixels
    gt = canvas()
    gt[0:10, 0:20] = 1
    seg = canvas()
    seg[0:10, 0:12] = 1
    seg[0:10, 12:20] = 2
    s = glas_scores([seg], [gt])
    # piece 1 covers 120 > 100 px of G -> TP; piece 2 covers 80 -> FP; FN 0
    assert s["f1"] == pytest.approx(2 / 3)
    gt_side = 2 * 120 / 320
    seg_side = 0.6 * (2 * 120 / 320) + 0.4 * (2 * 80 / 280)
    assert s["object_dice"] == pytest.approx((gt_side + seg_side) / 2)
    # H(G, S1) = 8 (column 19 to column 11), H(G, S2) = 12 (column 0 to column 12)
    assert s["object_hausdorff"] == pytest.approx((8 + (0.6 * 8 + 0.4 * 12)) / 2)


def test_split_in_halves_has_no_true_positive() -> None:
    gt = canvas()
    gt[0:10, 0:20] = 1
    seg = canvas()
    seg[0:10, 0:10] = 1
    seg[0:10, 10:20] = 2
    # each half covers exactly 50%, not more: FP 2, FN 1
    assert glas_scores([seg], [gt])["f1"] == 0.0


def test_merged_glands() -> None:
    gt = canvas()
    gt[0:10, 0:10] = 1
    gt[0:10, 14:24] = 2
    seg = canvas()
    seg[0:10, 0:24] = 5  # labels need not be consecutive
    s = glas_scores([seg], [gt])
    assert s["f1"] == pytest.approx(2 / 3)  # TP 1, FP 0, FN 1
    assert s["object_dice"] == pytest.approx(200 / 340)
    assert s["object_hausdorff"] == pytest.approx(14.0)


def test_no_overlap() -> None:
    gt = canvas()
    gt[0:10, 0:10] = 1
    seg = canvas()
    seg[0:10, 20:30] = 1
    s = glas_scores([seg], [gt])
    assert s["f1"] == 0.0
    assert s["object_dice"] == 0.0
    assert s["object_hausdorff"] == pytest.approx(20.0)  # nearest object, shifted by 20 columns


def test_unmatched_object_pairs_with_nearest_by_hausdorff() -> None:
    gt = canvas()
    gt[0:4, 0:4] = 1
    gt[0:4, 30:34] = 2
    seg = canvas()
    seg[0:4, 0:4] = 1
    seg[0:4, 10:14] = 2  # overlaps nothing; nearest ground truth is object 1 (H = 10)
    s = glas_scores([seg], [gt])
    # gt side: G1 perfect (0), G2 overlaps nothing -> nearest segment S2 (H 20, S1 would be 30)
    # seg side: S1 perfect (0), S2 -> G1, H = 10
    assert s["object_hausdorff"] == pytest.approx(((0 + 20) / 2 + (0 + 10) / 2) / 2)
    assert s["f1"] == pytest.approx(0.5)  # TP 1, FP 1, FN 1


def test_pooling_weights_objects_by_area_over_the_sequence() -> None:
    gt1 = canvas()
    gt1[0:10, 0:10] = 1  # area 100, predicted perfectly
    gt2 = canvas()
    gt2[0:10, 0:30] = 1  # area 300, missed
    s = glas_scores([gt1.copy(), canvas()], [gt1, gt2])
    assert s["f1"] == pytest.approx(2 / 3)  # TP 1, FP 0, FN 1 pooled
    assert s["object_dice"] == pytest.approx(0.5 * (100 / 400 + 1.0))
    assert s["object_hausdorff"] == pytest.approx(0.5 * (300 * np.hypot(20, 40) / 400 + 0.0))
    assert f1_dice_mean(s) == pytest.approx(0.5 * (2 / 3 + 0.625))


def test_both_empty_and_bad_input() -> None:
    assert glas_scores([canvas()], [canvas()]) == {"f1": 1.0, "object_dice": 1.0, "object_hausdorff": 0.0}
    with pytest.raises(ValueError):
        glas_scores([canvas()], [])
    with pytest.raises(ValueError):
        glas_scores([np.zeros((3, 3), np.int32)], [np.zeros((3, 4), np.int32)])
    with pytest.raises(ValueError):
        glas_scores([np.zeros((3, 3))], [np.zeros((3, 3))])


def test_hausdorff_distance_is_exact_euclidean() -> None:
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0, 0] = True
    b[3, 4] = True
    assert hausdorff_distance(a, b) == pytest.approx(5.0)


def test_instances_from_probability() -> None:
    prob = np.zeros((12, 12))
    prob[1:5, 1:5] = 0.9
    prob[2, 2] = 0.1  # a hole, filled
    prob[7:11, 7:11] = 0.8
    prob[0, 11] = 0.95  # a 1-pixel speck, dropped by min_size
    labels = instances_from_probability(prob, threshold=0.5, min_size=2)
    assert labels.dtype == np.int32
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    assert labels[2, 2] != 0 and labels[0, 11] == 0
    assert (labels[1:5, 1:5] == labels[1, 1]).all()


def test_token_error_rate_and_topk() -> None:
    assert token_error_rate([["a", "b"]], [["a", "c"]]) == pytest.approx(0.5)
    assert token_error_rate([["a"], []], [["a"], ["b", "c"]]) == pytest.approx(2 / 3)
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.3]])
    assert topk_error(logits, torch.tensor([1, 2]), k=1) == pytest.approx(0.5)
    assert topk_error(logits, torch.tensor([1, 2]), k=2) == pytest.approx(0.0)


def test_metric_object_pools_like_glas_scores() -> None:
    from inqnet.modules.tasks.metrics import GlasObjectMetric

    rng = np.random.default_rng(0)
    preds, gts = [], []
    for _ in range(3):
        gt = canvas()
        gt[rng.integers(0, 5) : 12, rng.integers(0, 5) : 15] = 1
        gt[3:9, 25:35] = 2
        seg = canvas()
        seg[2:11, 3:14] = 4
        preds.append(seg)
        gts.append(gt)
    metric = GlasObjectMetric()
    metric.update(preds[:2], gts[:2])
    metric.update([torch.from_numpy(preds[2])], [torch.from_numpy(gts[2])])
    got = metric.compute()
    want = glas_scores(preds, gts)
    for key in want:
        assert float(got[key]) == pytest.approx(want[key], rel=1e-6)
    assert float(got["f1_dice"]) == pytest.approx(f1_dice_mean(want), rel=1e-6)


def test_metric_object_per_split() -> None:
    from inqnet.modules.tasks.metrics import GlasObjectMetric

    gt = canvas()
    gt[0:10, 0:10] = 1
    missed = canvas()
    metric = GlasObjectMetric(splits=("testA", "testB", "holdout"))
    metric.update([gt.copy(), missed], [gt, gt], splits=["testA", "testB"])
    out = {k: float(v) for k, v in metric.compute().items()}
    assert out["testA/f1"] == 1.0 and out["testB/f1"] == 0.0 and out["f1"] == pytest.approx(2 / 3)
    assert not any(k.startswith("holdout/") for k in out)  # no images: not reported
    with pytest.raises(ValueError, match="unknown split"):
        metric.update([gt], [gt], splits=["testC"])
