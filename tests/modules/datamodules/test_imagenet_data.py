"""ImageNet datamodule on a tiny ImageFolder tree of real JPEG files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inqnet.modules.datamodules.imagenet import ImageNetDataModule
from inqnet.modules.errors import DataError

WNIDS = ("n01440764", "n01443537", "n01484850")


def make_tree(root: Path, per_class: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for wnid in WNIDS:
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for k in range(per_class):
                pixels = rng.integers(0, 255, size=(40, 50, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{k}.JPEG", format="JPEG")
    return root


def test_loaders(tmp_path: Path) -> None:
    dm = ImageNetDataModule(make_tree(tmp_path), input_size=32, batch_size=4, num_workers=0, max_per_class=1)
    dm.setup("fit")
    assert dm.num_classes == 3 and len(dm.train_set) == 3
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (3, 3, 32, 32) and sorted(labels.tolist()) == [0, 1, 2]
    images, _ = next(iter(dm.val_dataloader()))
    assert images.shape == (3, 3, 32, 32)


def test_bad_trees(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        ImageNetDataModule(tmp_path / "none").setup()
    root = make_tree(tmp_path / "a")
    (root / "val" / WNIDS[0]).rename(root / "val" / "n99999999")
    with pytest.raises(DataError, match="class folders differ"):
        ImageNetDataModule(root).setup()
    root = make_tree(tmp_path / "b")
    for image in (root / "val").rglob("*.JPEG"):
        image.unlink()
    with pytest.raises(DataError, match="empty val split"):
        ImageNetDataModule(root).setup()


def test_corrupt_jpeg_names_the_file(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    victim = sorted((root / "val").rglob("*.JPEG"))[0]
    victim.write_bytes(victim.read_bytes()[:50])
    dm = ImageNetDataModule(root, input_size=32, num_workers=0)
    dm.setup()
    with pytest.raises(DataError, match=victim.name):
        dm.val_set[0]


def test_corrupt_jpeg_in_a_worker_is_still_one_line(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    victim = sorted((root / "val").rglob("*.JPEG"))[0]
    victim.write_bytes(victim.read_bytes()[:50])
    dm = ImageNetDataModule(root, input_size=32, num_workers=1, batch_size=2)
    dm.setup()
    with pytest.raises(DataError) as info:
        next(iter(dm.val_dataloader()))
    message = str(info.value)
    assert message.startswith(str(victim)) and "truncated or corrupt image" in message
    assert "Traceback" not in message and "\n" not in message
