"""SegmentationModule's ensemble protocol: pixel probability maps, GlaS metrics from averaged maps."""
from __future__ import annotations

import numpy as np
import torch

from inqnet.modules.tasks.metrics import GlasObjectMetric, instances_from_probability
from inqnet.modules.tasks.segmentation import SegmentationModule

MODEL = {"name": "fcn", "width": 4, "min_size": 0}
OPTIMIZER = {"name": "adam", "lr": 1e-3}


def _module() -> SegmentationModule:
    torch.manual_seed(0)
    return SegmentationModule(model=MODEL, data_info={"in_channels": 3}, optimizer=OPTIMIZER).eval()


def _labels(h: int, w: int) -> torch.Tensor:
    lab = torch.zeros(h, w, dtype=torch.int32)
    lab[4:12, 4:12] = 1
    lab[16:24, 2:10] = 2
    return lab


def test_predict_probs_are_pixel_maps_and_pad_mixed_sizes() -> None:
    module = _module()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        probs = module.predict_probs({"image": images})
        assert probs.shape == (2, 32, 32) and float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0
        torch.testing.assert_close(probs, torch.sigmoid(module(images))[:, 0])
        mixed = module.predict_probs({"image": [torch.randn(3, 32, 32), torch.randn(3, 24, 40)]})
    assert mixed.shape == (2, 32, 40)
    assert torch.all(mixed[1, 24:] == 0) and torch.all(mixed[0, :, 32:] == 0)


def test_metrics_from_probabilities_match_direct_scoring() -> None:
    module = _module()
    images = [torch.randn(3, 32, 32), torch.randn(3, 24, 40)]
    labels = [_labels(32, 32), _labels(24, 40)]
    with torch.no_grad():
        probs = module.predict_probs({"image": images})
    metrics = module.make_metrics()
    module.update_metrics(metrics, probs, {"image": images, "labels": labels})
    got = module.compute_metrics(metrics)
    direct = GlasObjectMetric()
    for image, label in zip(images, labels):
        with torch.no_grad():
            prob = torch.sigmoid(module.net(image[None]))[0, 0].numpy()
        direct.update([instances_from_probability(prob, 0.5, 0)], [label.numpy()])
    expected = direct.compute()
    assert set(got) == {"f1", "object_dice", "object_hausdorff", "f1_dice"}
    for key, value in expected.items():
        assert np.isclose(float(got[key]), float(value), equal_nan=True), key


def test_training_loss_is_the_module_loss() -> None:
    module = _module()
    batch = {"image": torch.randn(2, 3, 16, 16), "target": (torch.rand(2, 1, 16, 16) > 0.5).float()}
    loss = module.training_loss(batch)
    assert loss.ndim == 0 and loss.requires_grad
    torch.testing.assert_close(loss, module.loss(module.net(batch["image"]), batch["target"]))
