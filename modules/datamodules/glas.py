"""GlaS 2015 (gland segmentation) from its flat folder: images, instance masks, grades, loaders.

Layout: ``train_N.bmp`` / ``testA_N.bmp`` / ``testB_N.bmp`` with ``<name>_anno.bmp`` instance
masks (0 = background, 1..K = glands) and ``Grade.csv`` (its ``name`` and ``grade (GlaS)`` columns are read). Training draws random patches
(crop, then rotation by any angle and flips); evaluation runs on whole images and returns their
instance labels so the module can compute the GlaS object scores.

Selection on validation only: by default ``val_images`` (8) training images, a fixed split
stratified by their ``Grade.csv`` grade, are held out as the ``holdout`` validation split, and Test A
and Test B are scored once, at the end. Validating on Test A / Test B (the paper's practice) must be
asked for with ``val_on_test: true``; ``data_info["val_on_test"]`` then says so.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator
from scipy import ndimage
from torch.utils.data import DataLoader, Dataset

from inqnet.modules.datamodules.image_header import DEFAULT_MAX_IMAGE_PIXELS, open_checked, read_header
from inqnet.modules.datamodules.sampling import EpochSeededSampler
from inqnet.modules.datamodules.synth_glas import write_synthetic_glas
from inqnet.modules.datamodules.synth_dir import is_empty_or_missing
from inqnet.modules.errors import data_error
from inqnet.modules.registry import OnDiskDataConfig, register_data

SPLITS = ("train", "testA", "testB")
DEFAULT_VAL_IMAGES = 8  # held-out training images validated on (85 in GlaS: 77 stay for training)
_NAME = re.compile(r"^(train|testA|testB)_(\d+)\.bmp$", re.IGNORECASE)


@dataclass(frozen=True)
class GlasItem:
    """One image of the set: its name (``train_3``), files and grade (``""`` if unknown)."""

    name: str
    image: Path
    mask: Path
    grade: str = ""


def read_grades(path: Path) -> dict[str, str]:
    """``Grade.csv``: image name -> GlaS grade (benign / malignant)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as err:
        raise data_error(path, f"cannot read ({err})") from None
    if not rows:
        raise data_error(path, "empty file, expected a header with 'name' and 'grade (GlaS)'")
    header = [h.strip().lower() for h in rows[0]]
    if "name" not in header or "grade (glas)" not in header:
        raise data_error(path, f"header {rows[0]} lacks 'name' or 'grade (GlaS)'")
    i_name, i_grade = header.index("name"), header.index("grade (glas)")
    grades = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(i_name, i_grade):
            raise data_error(path, f"line {number}: expected {len(header)} columns, got {len(row)}")
        grades[row[i_name].strip()] = row[i_grade].strip()
    return grades


def scan_glas(root: str | Path) -> dict[str, list[GlasItem]]:
    """All images per split, in numeric order; every image must have its ``_anno.bmp``."""
    root = Path(root)
    if not root.is_dir():
        raise data_error(root, "GlaS root does not exist or is not a folder")
    grade_file = next((p for p in root.iterdir() if p.name.lower() == "grade.csv"), None)
    grades = read_grades(grade_file) if grade_file else {}
    found: dict[str, list[tuple[int, GlasItem]]] = {s: [] for s in SPLITS}
    for path in root.iterdir():
        match = _NAME.match(path.name)
        if not match:
            continue
        split = next(s for s in SPLITS if s.lower() == match.group(1).lower())
        name = f"{split}_{int(match.group(2))}"
        mask = next((p for p in (path.with_name(f"{path.stem}_anno{path.suffix}"),
                                 path.with_name(f"{path.stem}_anno.bmp")) if p.is_file()), None)
        if mask is None:
            raise data_error(path, f"no instance mask {path.stem}_anno.bmp beside the image")
        found[split].append((int(match.group(2)), GlasItem(name, path, mask, grades.get(name, ""))))
    return {s: [item for _, item in sorted(items)] for s, items in found.items()}


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """RGB image as (H, W, 3) uint8, after its header's checks; a bad file raises DataError."""
    with open_checked(path, max_pixels) as img:
        img.load()
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


_MASK_MODES = ("L", "P", "I", "I;16", "1", "RGB", "RGBA")


def load_mask(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Instance labels as (H, W) int32 from an 8/16-bit grey, palette or grey-as-RGB BMP."""
    with open_checked(path, max_pixels) as img:
        img.load()
        mode = img.mode
        array = np.asarray(img)
    if mode in ("RGB", "RGBA"):
        if not (np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2])):
            raise data_error(path, "colour mask; expected grey instance labels (0 = background, 1..K = glands)")
        array = array[..., 0]
    elif mode not in ("L", "P", "I", "I;16", "1"):
        raise data_error(path, f"unsupported mask mode {mode}")
    return array.astype(np.int32)


def normalise_image(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float, each channel of the image standardised (stain-robust)."""
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
    mean = x.mean(dim=(1, 2), keepdim=True)
    std = x.std(dim=(1, 2), keepdim=True)
    return (x - mean) / (std + 1e-3)


def check_item(item: GlasItem, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
    """An image and its mask checked from their headers alone: size limit, file length, mask mode, sizes equal."""
    image, mask = read_header(item.image, max_pixels), read_header(item.mask, max_pixels)
    if mask.mode not in _MASK_MODES:
        raise data_error(item.mask, f"unsupported mask mode {mask.mode}")
    if (image.width, image.height) != (mask.width, mask.height):
        raise data_error(item.mask, f"mask is {mask.width}x{mask.height}, image is {image.width}x{image.height}")


def load_pair(item: GlasItem, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    check_item(item, max_pixels)
    image, mask = load_image(item.image, max_pixels), load_mask(item.mask, max_pixels)
    if image.shape[:2] != mask.shape:
        raise data_error(item.mask, f"mask is {mask.shape[1]}x{mask.shape[0]}, image is {image.shape[1]}x{image.shape[0]}")
    return image, mask


def random_patch(rng: np.random.Generator, image: np.ndarray, labels: np.ndarray, size: int,
                 rotate: bool, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size`` x ``size`` patch, rotated by a random angle and flipped.

    A larger window (side ``size * sqrt(2)``) is cropped first so the rotated patch has no empty
    corners; images smaller than the window are reflect-padded.
    """
    window = int(np.ceil(size * np.sqrt(2))) + 2 if rotate else size
    h, w = labels.shape
    pad_h, pad_w = max(0, window - h), max(0, window - w)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)), mode="reflect")
        h, w = labels.shape
    y, x = int(rng.integers(0, h - window + 1)), int(rng.integers(0, w - window + 1))
    img, lab = image[y : y + window, x : x + window], labels[y : y + window, x : x + window]
    if rotate:
        angle = float(rng.uniform(0, 360))
        img = ndimage.rotate(img, angle, axes=(0, 1), reshape=False, order=1, mode="reflect")
        lab = ndimage.rotate(lab, angle, axes=(0, 1), reshape=False, order=0, mode="reflect")
        o = (window - size) // 2
        img, lab = img[o : o + size, o : o + size], lab[o : o + size, o : o + size]
    if flip and rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    if flip and rng.random() < 0.5:
        img, lab = img[::-1], lab[::-1]
    return np.ascontiguousarray(img), np.ascontiguousarray(lab)


class GlasPatches(Dataset):
    """Training patches: ``patches_per_image`` random patches of every image per epoch."""

    def __init__(self, items: list[GlasItem], patch_size: int = 96, patches_per_image: int = 8,
                 rotate: bool = True, flip: bool = True, seed: int = 0,
                 max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.pairs = [load_pair(item, max_pixels) for item in items]
        self.patch_size, self.per_image = patch_size, patches_per_image
        self.rotate, self.flip, self.seed = rotate, flip, seed
        self.draws = 0

    def __len__(self) -> int:
        return len(self.pairs) * self.per_image

    def __getitem__(self, index: int) -> dict:
        # fresh randomness per draw, reproducible for a given seed and draw order
        self.draws += 1
        rng = np.random.default_rng((self.seed, index, self.draws, torch.initial_seed() % 2**32))
        image, labels = self.pairs[index // self.per_image]
        img, lab = random_patch(rng, image, labels, self.patch_size, self.rotate, self.flip)
        return {"image": normalise_image(img), "target": torch.from_numpy((lab > 0).astype(np.float32))[None]}


class GlasImages(Dataset):
    """Whole images with their instance labels and split name (``testA``, ...), for evaluation."""

    def __init__(self, splits: dict[str, list[GlasItem]], max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.entries = [(split, item) for split, items in splits.items() for item in items]
        self.pairs = [load_pair(item, max_pixels) for _, item in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        image, labels = self.pairs[index]
        split, item = self.entries[index]
        return {"image": normalise_image(image), "labels": torch.from_numpy(labels),
                "target": torch.from_numpy((labels > 0).astype(np.float32))[None], "name": item.name, "split": split}


def collate_images(items: list[dict]) -> dict:
    """Stack when all images share a size; otherwise keep lists (batch size 1 is typical)."""
    same = len({tuple(it["image"].shape) for it in items}) == 1
    out: dict = {"name": [it["name"] for it in items], "split": [it["split"] for it in items]}
    for key in ("image", "labels", "target"):
        values = [it[key] for it in items]
        out[key] = torch.stack(values) if same else values
    return out


def stratified_counts(sizes: dict[str, int], count: int) -> dict[str, int]:
    """How many of ``count`` to take from each group: proportional to its size, remainders to the
    largest fractions (ties by name), so the total is exactly ``count``."""
    total = sum(sizes.values())
    exact = {g: count * n / total for g, n in sizes.items()}
    taken = {g: int(np.floor(x)) for g, x in exact.items()}
    for g in sorted(sizes, key=lambda g: (-(exact[g] - taken[g]), g))[: count - sum(taken.values())]:
        taken[g] += 1
    return taken


def hold_out(items: list[GlasItem], count: int, split_seed: int) -> tuple[list[GlasItem], list[GlasItem]]:
    """(kept, held out): ``count`` training images, stratified by grade (``Grade.csv``; images without a
    grade form one group), chosen in each grade by a permutation seeded with ``split_seed``."""
    if count >= len(items):
        raise ValueError(f"val_images {count} leaves no training image (there are {len(items)})")
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.grade.strip().lower(), []).append(i)
    rng = np.random.default_rng(split_seed)
    chosen: set[int] = set()
    for grade, take in stratified_counts({g: len(v) for g, v in groups.items()}, count).items():
        members = groups[grade]
        chosen.update(members[j] for j in rng.permutation(len(members))[:take].tolist())
    return ([it for i, it in enumerate(items) if i not in chosen], [it for i, it in enumerate(items) if i in chosen])


class GlasDataModule(L.LightningDataModule):
    """GlaS train patches; validation on held-out training images; test on Test A and Test B (one
    loader; each image carries its split).

    ``val_images`` whole training images, fixed by ``split_seed`` and stratified by grade, are the
    ``holdout`` validation split, so checkpoint selection never sees the test images. With
    ``val_on_test`` validation is on Test A and Test B instead (what the paper reports) and no
    training image is held out.
    """

    test_splits = ("testA", "testB")

    def __init__(self, root: str | Path = "data/glas", patch_size: int = 96, patches_per_image: int = 8,
                 batch_size: int = 8, eval_batch_size: int = 1, num_workers: int = 0, rotate: bool = True,
                 flip: bool = True, subset: list[str] | None = None, val_images: int = DEFAULT_VAL_IMAGES,
                 split_seed: int = 0, val_on_test: bool = False, synthesize: bool = False, seed: int = 0,
                 max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        super().__init__()
        if not val_on_test and val_images < 1:
            raise ValueError("val_images must be at least 1 unless val_on_test (validation on Test A / Test B)")
        self.root = Path(root)
        self.patch_size, self.patches_per_image = patch_size, patches_per_image
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.rotate, self.flip, self.subset = rotate, flip, subset
        self.val_images, self.split_seed, self.val_on_test = (0 if val_on_test else val_images), split_seed, val_on_test
        self.synthesize, self.seed, self.max_image_pixels = synthesize, seed, max_image_pixels
        self.items: dict[str, list[GlasItem]] = {}
        self.datasets: dict[str, Dataset] = {}

    @property
    def val_splits(self) -> tuple[str, ...]:
        return self.test_splits if self.val_on_test else ("holdout",)

    def prepare_data(self) -> None:
        """Write the synthetic set when asked to and the root is missing or empty."""
        if self.synthesize and is_empty_or_missing(self.root):
            write_synthetic_glas(self.root, seed=0)  # the same data whatever the run's seed

    def select_items(self) -> dict[str, list[GlasItem]]:
        """The images of every split this run reads (train after hold-out and subset, holdout, testA,
        testB), from the folder listing and Grade.csv alone; DataError naming what is wrong."""
        self.prepare_data()  # idempotent; covers callers that skip prepare_data
        items = scan_glas(self.root)
        for split in SPLITS:
            if not items[split]:
                raise data_error(self.root, f"empty {split} split: no {split}_N.bmp images")
        if not self.val_on_test:
            try:
                items["train"], items["holdout"] = hold_out(items["train"], self.val_images, self.split_seed)
            except ValueError as err:
                raise data_error(self.root, f"data.{err}") from None
        if self.subset is not None:
            known = {item.name: item for item in items["train"]}
            held = {item.name for item in items.get("holdout", [])}
            if any(n in held for n in self.subset):
                raise data_error(self.root, "subset names held-out validation images: "
                                            f"{', '.join(n for n in self.subset if n in held)[:200]}")
            missing = [n for n in self.subset if n not in known]
            if missing:
                raise data_error(self.root, f"subset names not among the training images: {', '.join(missing[:5])}")
            items["train"] = [known[n] for n in self.subset]
        return items

    def preflight(self) -> None:
        """Checks every file the run will read from its header (sizes, lengths, mask mode, mask size
        = image size) without decoding pixels, so a bad file stops the run before its folder exists."""
        for split_items in self.select_items().values():
            for item in split_items:
                check_item(item, self.max_image_pixels)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.items = self.select_items()
        limit = self.max_image_pixels
        self.datasets["train"] = GlasPatches(self.items["train"], self.patch_size, self.patches_per_image,
                                             self.rotate, self.flip, self.seed, limit)
        self.datasets["val"] = GlasImages({split: self.items[split] for split in self.val_splits}, limit)
        self.datasets["test"] = GlasImages({split: self.items[split] for split in self.test_splits}, limit)

    @property
    def data_info(self) -> dict[str, Any]:
        """What the FCN and the segmentation module need: input channels, evaluation split names.

        Sets the data up first, so a missing or broken dataset is reported before a run starts.
        """
        self.setup()
        return {"in_channels": 3, "val_splits": list(self.val_splits), "test_splits": list(self.test_splits),
                "val_on_test": self.val_on_test}

    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        return DataLoader(dataset, batch_size=self.batch_size, sampler=EpochSeededSampler(len(dataset), self.seed),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def _eval(self, stage: str) -> DataLoader:
        return DataLoader(self.datasets[stage], batch_size=self.eval_batch_size, shuffle=False,
                          num_workers=self.num_workers, collate_fn=collate_images)

    def val_dataloader(self) -> DataLoader:
        return self._eval("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval("test")


class GlasConfig(OnDiskDataConfig):
    """`data: {name: glas, ...}`: GlaS 2015 from `root`; `synthesize: true` writes the small synthetic
    set there first when `root` is missing or empty; `subset` trains on those images only.
    Validation is on `val_images` held-out training images (stratified by Grade.csv, fixed by
    `split_seed`); `val_on_test: true` validates on Test A / Test B instead (the paper's practice: the
    model is then selected on the test set, no image is held out whatever `val_images` says, and the
    run's data_info says so). `max_image_pixels` caps what an image header may declare."""

    name: Literal["glas"] = "glas"
    batch_size: PositiveInt = 8
    patch_size: int = Field(192, ge=16)
    patches_per_image: PositiveInt = 16
    eval_batch_size: PositiveInt = 1
    rotate: bool = True
    flip: bool = True
    subset: list[str] | None = None
    val_images: NonNegativeInt = DEFAULT_VAL_IMAGES
    split_seed: NonNegativeInt = 0
    val_on_test: bool = False
    max_image_pixels: PositiveInt = DEFAULT_MAX_IMAGE_PIXELS
    synthesize: bool = False
    # Network training after `inq annotate`: train only on the items a suggestions.json annotated
    # (its initial ids, or `initial_annotated` instead, plus the first `suggestion_rounds` rounds' picks).
    suggestions: Path | None = None
    initial_annotated: list[str] | None = None
    suggestion_rounds: PositiveInt | None = None

    @model_validator(mode="after")
    def _validation_split(self) -> GlasConfig:
        if not self.val_on_test and self.val_images == 0:
            raise ValueError("val_images: 0 would validate (and pick best.ckpt) on Test A / Test B, a test split; "
                             "hold out training images (val_images >= 1) or set data.val_on_test: true")
        return self

    @model_validator(mode="after")
    def _suggestions_alone(self) -> GlasConfig:
        if self.suggestions is None and (self.initial_annotated is not None or self.suggestion_rounds is not None):
            raise ValueError("suggestions: initial_annotated and suggestion_rounds need data.suggestions")
        if self.suggestions is not None and self.subset is not None:
            raise ValueError("suggestions: set either data.suggestions or data.subset, not both")
        return self


@register_data("glas", GlasConfig)
def build_glas(cfg: GlasConfig, seed: int) -> L.LightningDataModule:
    """The GlaS datamodule for a run seeded with `seed`."""
    if cfg.suggestions is not None:
        from inqnet.modules.datamodules.glas_annotated import SuggestedGlasDataModule

        plain = cfg.model_copy(update={"suggestions": None, "initial_annotated": None, "suggestion_rounds": None})
        return SuggestedGlasDataModule(build_glas(plain, seed), cfg.suggestions, cfg.initial_annotated,
                                       cfg.suggestion_rounds)
    return GlasDataModule(root=cfg.root, patch_size=cfg.patch_size, patches_per_image=cfg.patches_per_image,
                          batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers,
                          rotate=cfg.rotate, flip=cfg.flip, subset=cfg.subset, val_images=cfg.val_images,
                          split_seed=cfg.split_seed, val_on_test=cfg.val_on_test, synthesize=cfg.synthesize, seed=seed,
                          max_image_pixels=cfg.max_image_pixels)
