"""ImageNet-2012 in the ImageFolder layout (``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``).

Standard transforms: training takes a random-resized crop of ``input_size`` and a horizontal
flip; validation resizes the short side to ``input_size / 0.875`` (256 for 224) and takes the
centre crop; both normalise with ImageNet's channel means and deviations. ``max_per_class``
keeps the first N images of each class, for small runs. A corrupt image raises DataError naming it;
every image's header is checked (size within ``max_image_pixels``) before its pixels are decoded,
and ``preflight`` checks all headers at set-up, in threads, before a run folder exists.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from functools import partial

from PIL import Image
from pydantic import Field, PositiveInt
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from inqnet.modules.datamodules.image_header import DEFAULT_MAX_IMAGE_PIXELS, check_headers, open_checked
from inqnet.modules.datamodules.sampling import EpochSeededSampler
from inqnet.modules.errors import data_error
from inqnet.modules.registry import OnDiskDataConfig, register_data

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_rgb(path: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """ImageFolder loader: the header checked first, the file named when it cannot be decoded."""
    with open_checked(path, max_pixels) as img:
        return img.convert("RGB")


def train_transform(input_size: int) -> transforms.Compose:
    return transforms.Compose([
        transforms.RandomResizedCrop(input_size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])  # fmt: skip


def eval_transform(input_size: int) -> transforms.Compose:
    return transforms.Compose([
        transforms.Resize(int(round(input_size / 0.875))),
        transforms.CenterCrop(input_size),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])  # fmt: skip


def image_folder(root: Path, split: str, transform, max_per_class: int | None,
                 max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> datasets.ImageFolder:
    """One split as an ImageFolder, with clear errors for a missing or empty folder."""
    folder = root / split
    if not folder.is_dir():
        raise data_error(folder, f"missing {split}/ folder (expected ImageFolder layout {split}/<wnid>/*.JPEG)")
    try:
        dataset = datasets.ImageFolder(str(folder), transform=transform, loader=partial(load_rgb, max_pixels=max_pixels))
    except (FileNotFoundError, RuntimeError) as err:
        raise data_error(folder, f"empty {split} split ({str(err).splitlines()[0]})") from None
    if max_per_class is not None:
        kept, seen = [], {}
        for path, label in dataset.samples:
            if seen.get(label, 0) < max_per_class:
                kept.append((path, label))
                seen[label] = seen.get(label, 0) + 1
        dataset.samples = dataset.imgs = kept
        dataset.targets = [label for _, label in kept]
    return dataset


class ImageNetDataModule(L.LightningDataModule):
    """ImageNet train / val loaders (val is also the test split, as usual for ImageNet)."""

    def __init__(self, root: str | Path = "data/imagenet", input_size: int = 224, batch_size: int = 32,
                 eval_batch_size: int | None = None, num_workers: int = 8, max_per_class: int | None = None,
                 seed: int = 0, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        super().__init__()
        self.root = Path(root)
        self.input_size, self.batch_size = input_size, batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers, self.max_per_class, self.seed = num_workers, max_per_class, seed
        self.max_image_pixels = max_image_pixels
        self.train_set: datasets.ImageFolder | None = None
        self.val_set: datasets.ImageFolder | None = None

    @property
    def num_classes(self) -> int:
        self.setup()
        return len(self.train_set.classes)

    @property
    def data_info(self) -> dict[str, Any]:
        """What VGG needs: classes (from train/'s folders), channels, input size."""
        return {"num_classes": self.num_classes, "in_channels": 3, "input_size": self.input_size}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if not self.root.is_dir():
            raise data_error(self.root, "ImageNet root does not exist or is not a folder")
        limit = self.max_image_pixels
        train = image_folder(self.root, "train", train_transform(self.input_size), self.max_per_class, limit)
        val = image_folder(self.root, "val", eval_transform(self.input_size), self.max_per_class, limit)
        if train.classes != val.classes:
            extra = sorted(set(val.classes) ^ set(train.classes))[:3]
            raise data_error(self.root / "val", f"class folders differ from train/ (e.g. {', '.join(extra)})")
        self.train_set, self.val_set = train, val

    def preflight(self, workers: int | None = None) -> None:
        """Checks the header of every image the run reads (size within max_image_pixels, BMP length)
        in ``workers`` processes (default: data.num_workers, at least 1), decoding no pixels; the
        first bad file in listing order is one DataError."""
        self.setup()
        paths = [Path(p) for dataset in (self.train_set, self.val_set) for p, _ in dataset.samples]
        check_headers(paths, self.max_image_pixels, workers or max(1, self.num_workers))

    def _loader(self, dataset, batch_size: int, shuffle: bool) -> DataLoader:
        sampler = EpochSeededSampler(len(dataset), self.seed) if shuffle else None
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=self.num_workers,
                          pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()


class ImageNetConfig(OnDiskDataConfig):
    """`data: {name: imagenet, ...}`: ImageNet-2012 in the ImageFolder layout under `root`;
    `max_per_class` keeps the first N images of each class (small runs)."""

    name: Literal["imagenet"] = "imagenet"
    batch_size: PositiveInt = 32
    input_size: int = Field(224, ge=16)
    eval_batch_size: PositiveInt | None = None
    max_per_class: PositiveInt | None = None
    max_image_pixels: PositiveInt = DEFAULT_MAX_IMAGE_PIXELS  # what an image header may declare


@register_data("imagenet", ImageNetConfig)
def build_imagenet(cfg: ImageNetConfig, seed: int) -> ImageNetDataModule:
    """The ImageNet datamodule for a run seeded with `seed`."""
    return ImageNetDataModule(root=cfg.root, input_size=cfg.input_size, batch_size=cfg.batch_size,
                              eval_batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers,
                              max_per_class=cfg.max_per_class, seed=seed, max_image_pixels=cfg.max_image_pixels)
