"""A tiny GlaS folder and a tiny `inq annotate` recipe for the annotate tests (seconds per FCN)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from inqnet.modules.datamodules.synth_glas import write_synthetic_glas


def tiny_glas(root: Path, train: int = 4) -> Path:
    """4 training images of 64x64 (16 patches of 32px), one image per test split."""
    return write_synthetic_glas(root, train=train, test_a=1, test_b=1, size=64, seed=0)


def tiny_recipe(path: Path, glas_root: Path, output_dir: Path, inq: bool = True, **annotate: Any) -> Path:
    """Writes an annotate recipe: 2 width-4 FCNs, 32px patches, 2 rounds of 3 candidates -> 2 selected;
    all 4 training images form the pool (data.val_on_test: no image held out, as tiny as it gets)."""
    recipe = {
        "seed": 0, "output_dir": str(output_dir), "threads": 1,
        "model": {"name": "fcn", "width": 4, "min_size": 0},
        "data": {"name": "glas", "root": str(glas_root), "patch_size": 16, "patches_per_image": 2,
                 "batch_size": 4, "rotate": False, "val_on_test": True},
        "optimizer": {"name": "adam", "lr": 3e-3},
        "inq": {"enabled": inq, "bits": 5, "portions": [0.5, 1.0], "float_epochs": 1, "epochs_per_stage": 1},
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 3, "enable_progress_bar": False},
        "annotate": {"fcns": 2, "rounds": 2, "candidates": 3, "select": 2, "initial": 3, "unit": "patch",
                     "patch_size": 32, **annotate},
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def nt_recipe(path: Path, glas_root: Path, output_dir: Path, suggestions: Path, **data: Any) -> Path:
    """Writes a network-training recipe on a suggestions file: float then 5-bit INQ, 3 epochs."""
    recipe = {
        "seed": 0, "output_dir": str(output_dir), "threads": 1,
        "model": {"name": "fcn", "width": 4, "min_size": 0},
        "data": {"name": "glas", "root": str(glas_root), "suggestions": str(suggestions), "patch_size": 16,
                 "patches_per_image": 2, "batch_size": 4, "val_on_test": True, **data},
        "optimizer": {"name": "adam", "lr": 3e-3},
        "inq": {"enabled": True, "bits": 5, "portions": [0.5, 1.0], "float_epochs": 1, "epochs_per_stage": 1},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path
