"""GlaS training restricted to annotated items (whole images or patches) named by their ids.

Used on both sides of Suggestive Annotation: the suggestive FCNs train on bootstrap samples of the
annotated set (ids may repeat), and network training (NT) trains on the set a suggestions file
names (`data.suggestions`). Each annotated item is a source of random training patches, as a whole
image is in plain GlaS training.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from inqnet.modules.datamodules.glas import GlasDataModule, GlasItem, GlasPatches, load_pair, scan_glas
from inqnet.modules.datamodules.image_header import DEFAULT_MAX_IMAGE_PIXELS, read_header
from inqnet.modules.datamodules.synth_dir import is_empty_or_missing
from inqnet.modules.errors import data_error
from inqnet.modules.suggestive.items import crop, read_suggestions, resolve_ids

Pair = tuple[np.ndarray, np.ndarray]


def load_train_pairs(items: Sequence[GlasItem], max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> dict[str, Pair]:
    """Image name -> (image, instance labels) for every training image."""
    return {item.name: load_pair(item, max_pixels) for item in items}


def image_sizes(pairs: dict[str, Pair]) -> dict[str, tuple[int, int]]:
    """Image name -> (height, width)."""
    return {name: labels.shape[:2] for name, (_, labels) in pairs.items()}


def annotated_pairs(pairs: dict[str, Pair], ids: Sequence[str], source: str | Path) -> list[Pair]:
    """The (image, labels) crop of every id, in order (repeats kept); DataError naming ``source``
    and the first id that is not a training image or a patch inside one."""
    return [(crop(pairs[name][0], box), crop(pairs[name][1], box))
            for name, box in resolve_ids(ids, image_sizes(pairs), source)]


def patch_dataset(pairs: list[Pair], patch_size: int, patches_per_item: int, rotate: bool, flip: bool,
                  seed: int) -> GlasPatches:
    """Random training patches drawn from the given (image, labels) pairs."""
    dataset = GlasPatches([], patch_size, patches_per_item, rotate, flip, seed)
    dataset.pairs = list(pairs)
    return dataset


def suggested_ids(path: str | Path, initial: Sequence[str] | None = None, rounds: int | None = None) -> list[str]:
    """The annotated ids a suggestions file gives after ``rounds`` rounds (default all), starting
    from ``initial`` (default the file's own initial set); DataError if that selects nothing."""
    suggestions = read_suggestions(path)
    if rounds is not None and rounds > len(suggestions.rounds):
        raise data_error(path, f"has {len(suggestions.rounds)} rounds, fewer than the {rounds} asked for")
    ids = suggestions.annotated(rounds=rounds, initial=initial)
    if not ids:
        raise data_error(path, "names no annotated item (no initial ids and no selections)")
    return ids


def header_sizes(items: Sequence[GlasItem], max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> dict[str, tuple[int, int]]:
    """Image name -> (height, width) from the files' checked headers (no pixel data read)."""
    sizes = {}
    for item in items:
        header = read_header(item.image, max_pixels)
        sizes[item.name] = (header.height, header.width)
    return sizes


class SuggestedGlasDataModule(L.LightningDataModule):
    """A GlaS datamodule (``inner``) whose training set is what a suggestions file annotated
    (network training after SA); validation and test are ``inner``'s.

    The file is read, and its ids checked against the training images, when the datamodule is
    built, so a bad file stops a run before anything is written.
    """

    def __init__(self, inner: GlasDataModule, suggestions: str | Path, initial_annotated: Sequence[str] | None = None,
                 suggestion_rounds: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.suggestions = Path(suggestions)
        self.annotated_ids = suggested_ids(self.suggestions, initial_annotated, suggestion_rounds)
        root = inner.root
        if root.is_dir() and not is_empty_or_missing(root):
            resolve_ids(self.annotated_ids, header_sizes(scan_glas(root)["train"], inner.max_image_pixels),
                        self.suggestions)

    def preflight(self) -> None:
        """``inner``'s checks, then: every annotated id is a training image (or a patch inside one)
        that is not held out for validation."""
        self.inner.preflight()
        items = self.inner.select_items()
        held = {item.name for item in items.get("holdout", [])}
        sizes = header_sizes(items["train"] + items.get("holdout", []), self.inner.max_image_pixels)
        for item_id, (name, _) in zip(self.annotated_ids, resolve_ids(self.annotated_ids, sizes, self.suggestions)):
            if name in held:
                raise data_error(self.suggestions, f"annotates {item_id!r}, a held-out validation image "
                                                   "(data.val_images or data.split_seed differ from the annotate run's)")

    @property
    def data_info(self) -> dict[str, Any]:
        return self.inner.data_info

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if getattr(self.inner.datasets.get("train"), "suggested", False):
            return
        self.inner.setup(stage)
        inner = self.inner
        pairs = load_train_pairs(inner.items["train"])
        train = patch_dataset(annotated_pairs(pairs, self.annotated_ids, self.suggestions), inner.patch_size,
                              inner.patches_per_image, inner.rotate, inner.flip, inner.seed)
        train.suggested = True
        inner.datasets["train"] = train

    def train_dataloader(self) -> Any:
        return self.inner.train_dataloader()

    def val_dataloader(self) -> Any:
        return self.inner.val_dataloader()

    def test_dataloader(self) -> Any:
        return self.inner.test_dataloader()
