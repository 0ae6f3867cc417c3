"""GlaS loader on folders written in the real format (BMP pairs, Grade.csv), and bad files."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inqnet.modules.datamodules.glas import GlasDataModule, load_mask, random_patch, read_grades, scan_glas
from inqnet.modules.datamodules.synth_glas import write_synthetic_glas
from inqnet.modules.errors import DataError


@pytest.fixture(scope="module")
def glas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_glas(tmp_path_factory.mktemp("glas"), train=3, test_a=2, test_b=2, size=64, seed=2)


def copy(glas: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(glas, tmp_path / "glas"))


def test_synthetic_set_in_glas_format(glas: Path) -> None:
    items = scan_glas(glas)
    assert [len(items[s]) for s in ("train", "testA", "testB")] == [3, 2, 2]
    assert [i.name for i in items["train"]] == ["train_1", "train_2", "train_3"]
    assert all(i.grade in ("benign", "malignant") for s in items.values() for i in s)
    with Image.open(glas / "train_1.bmp") as img:
        assert img.format == "BMP" and img.mode == "RGB"
    with Image.open(glas / "train_1_anno.bmp") as img:
        assert img.format == "BMP" and img.mode == "L"
    labels = load_mask(glas / "train_1_anno.bmp")
    assert labels.max() >= 1 and set(np.unique(labels)) == set(range(labels.max() + 1))


def test_numeric_order_and_many_instances(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros((60, 60), np.uint8)
    for k in range(150):  # 150 instances on a 10x15 grid of 4x6 blocks
        r, c = divmod(k, 15)
        labels[r * 6 : r * 6 + 4, c * 4 : c * 4 + 3] = k + 1
    image = rng.integers(0, 255, size=(60, 60, 3), dtype=np.uint8)
    for n in (1, 2, 10):
        Image.fromarray(image).save(tmp_path / f"train_{n}.bmp")
        Image.fromarray(labels).save(tmp_path / f"train_{n}_anno.bmp")
    palette = Image.fromarray(labels).convert("P")  # a palette BMP keeps the indices
    palette.save(tmp_path / "testA_1_anno.bmp")
    Image.fromarray(image).save(tmp_path / "testA_1.bmp")
    Image.fromarray(np.stack([labels] * 3, -1)).save(tmp_path / "testB_1_anno.bmp")  # grey stored as RGB
    Image.fromarray(image).save(tmp_path / "testB_1.bmp")
    items = scan_glas(tmp_path)
    assert [i.name for i in items["train"]] == ["train_1", "train_2", "train_10"]
    for split in ("train", "testA", "testB"):
        got = load_mask(items[split][0].mask)
        assert got.dtype == np.int32 and len(np.unique(got)) == 151
        np.testing.assert_array_equal(got, labels)


def test_truncated_bmp_names_the_file(glas: Path, tmp_path: Path) -> None:
    root = copy(glas, tmp_path)
    victim = root / "testA_2.bmp"
    victim.write_bytes(victim.read_bytes()[:700])
    dm = GlasDataModule(root, val_images=1)
    with pytest.raises(DataError) as info:
        dm.setup("fit")
    assert str(victim) in str(info.value) and "truncated or corrupt" in str(info.value)


@pytest.mark.parametrize("case", ["missing_mask", "empty_split", "size_mismatch", "colour_mask", "no_root"])
def test_bad_folders(glas: Path, tmp_path: Path, case: str) -> None:
    root = copy(glas, tmp_path)
    expect = {"missing_mask": "no instance mask", "empty_split": "empty testB split",
              "size_mismatch": "mask is 32x32, image is 64x64", "colour_mask": "colour mask",
              "no_root": "does not exist"}[case]
    if case == "missing_mask":
        (root / "train_2_anno.bmp").unlink()
    elif case == "empty_split":
        for p in root.glob("testB_*"):
            p.unlink()
    elif case == "size_mismatch":
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "train_1_anno.bmp")
    elif case == "colour_mask":
        colour = np.zeros((64, 64, 3), np.uint8)
        colour[:5, :5] = (255, 0, 0)
        Image.fromarray(colour).save(root / "train_1_anno.bmp")
    else:
        root = tmp_path / "missing"
    with pytest.raises(DataError, match=expect):
        GlasDataModule(root, val_images=1).setup("fit")


def test_grade_csv(tmp_path: Path) -> None:
    path = tmp_path / "Grade.csv"
    path.write_text("name, Patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)\n"
                    "testA_1,4,benign,healthy\ntrain_7,9,malignant,adenomatous\n\n")
    assert read_grades(path) == {"testA_1": "benign", "train_7": "malignant"}
    path.write_text("file,grade\nx,y\n")
    with pytest.raises(DataError, match="lacks 'name' or 'grade"):
        read_grades(path)


def test_random_patch_keeps_labels() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(50, 40, 3), dtype=np.uint8)
    labels = np.zeros((50, 40), np.int32)
    labels[10:30, 5:25] = 3
    labels[35:45, 20:35] = 7
    for rotate in (False, True):
        img, lab = random_patch(rng, image, labels, 32, rotate=rotate, flip=True)
        assert img.shape == (32, 32, 3) and lab.shape == (32, 32)
        assert set(np.unique(lab)) <= {0, 3, 7}  # nearest-neighbour rotation invents no labels
    img, lab = random_patch(rng, image, labels, 64, rotate=True, flip=False)  # larger than the image
    assert lab.shape == (64, 64)


def test_datamodule_batches_and_subset(glas: Path) -> None:
    dm = GlasDataModule(glas, patch_size=32, patches_per_image=2, batch_size=4, subset=["train_3", "train_3"],
                        val_on_test=True)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 4
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["target"].shape == (4, 1, 32, 32)
    assert set(batch["target"].unique().tolist()) <= {0.0, 1.0}
    batches = list(dm.val_dataloader())
    full = batches[0]
    assert full["image"].shape == (1, 3, 64, 64) and full["labels"].shape == (1, 64, 64)
    assert full["name"] == ["testA_1"] and full["split"] == ["testA"]
    assert [b["split"][0] for b in batches] == ["testA", "testA", "testB", "testB"]
    with pytest.raises(DataError, match="train_9"):
        GlasDataModule(glas, subset=["train_9"], val_on_test=True).setup("fit")


def test_synthesize_fills_an_empty_root(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    dm = GlasDataModule(root, synthesize=True, patch_size=32)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.items["train"]) == 12 and len(dm.items["holdout"]) == 8  # 20 written, 8 held out by default
    assert len(dm.items["testA"]) == 6 and len(dm.items["testB"]) == 4
    assert dm.data_info["val_splits"] == ["holdout"] and dm.data_info["val_on_test"] is False


def test_held_out_validation_images(glas: Path) -> None:
    dm = GlasDataModule(glas, patch_size=32, val_images=1, split_seed=5)
    dm.setup("fit")
    assert len(dm.items["holdout"]) == 1 and len(dm.items["train"]) == 2
    assert dm.items["holdout"][0].name not in {i.name for i in dm.items["train"]}
    assert dm.data_info["val_splits"] == ["holdout"] and dm.data_info["test_splits"] == ["testA", "testB"]
    assert [b["split"] for b in dm.val_dataloader()] == [["holdout"]]
    assert len(dm.test_dataloader()) == 4
    with pytest.raises(DataError, match="leaves no training image"):
        GlasDataModule(glas, val_images=3).setup("fit")


def test_validation_never_touches_test_images_by_default(tmp_path: Path) -> None:
    root = write_synthetic_glas(tmp_path / "glas", train=10, test_a=2, test_b=2, size=32, seed=3)
    dm = GlasDataModule(root, patch_size=16)  # the defaults: 8 held-out training images
    dm.setup("fit")
    val_files = [item.image.name for _, item in dm.datasets["val"].entries]
    val_names = [name for batch in dm.val_dataloader() for name in batch["name"]]
    assert len(val_names) == 8 and all(n.startswith("train_") for n in val_names), val_names
    assert sorted(val_files) == sorted(f"{n}.bmp" for n in val_names)
    assert {s for batch in dm.val_dataloader() for s in batch["split"]} == {"holdout"}
    assert not {n for n in val_names} & {i.name for i in dm.items["train"]}
    test_names = [name for batch in dm.test_dataloader() for name in batch["name"]]
    assert sorted(test_names) == ["testA_1", "testA_2", "testB_1", "testB_2"]
    assert dm.data_info["val_on_test"] is False and dm.data_info["val_splits"] == ["holdout"]


def test_val_on_test_must_be_asked_for(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from inqnet.modules.datamodules.glas import GlasConfig, build_glas

    with pytest.raises(ValidationError, match="val_images: 0 would validate .* on Test A / Test B.*val_on_test: true"):
        GlasConfig(root=tmp_path, val_images=0)
    root = write_synthetic_glas(tmp_path / "glas", train=3, test_a=1, test_b=1, size=32)
    dm = build_glas(GlasConfig(root=root, val_on_test=True, patch_size=16), seed=0)
    dm.setup("fit")
    assert dm.data_info["val_on_test"] is True and dm.data_info["val_splits"] == ["testA", "testB"]
    assert len(dm.items["train"]) == 3 and "holdout" not in dm.items  # the paper's practice: all 85 train
    assert [b["name"][0] for b in dm.val_dataloader()] == ["testA_1", "testB_1"]


def test_held_out_split_is_stratified_by_grade_and_fixed(tmp_path: Path) -> None:
    from inqnet.modules.datamodules.glas import GlasItem, hold_out, stratified_counts

    grades = ["benign"] * 8 + ["malignant"] * 4
    items = [GlasItem(f"train_{k}", Path(f"train_{k}.bmp"), Path(f"train_{k}_anno.bmp"), g)
             for k, g in enumerate(grades, start=1)]
    kept, held = hold_out(items, 3, split_seed=0)
    assert sorted(i.grade for i in held) == ["benign", "benign", "malignant"]
    assert len(kept) == 9 and not {i.name for i in kept} & {i.name for i in held}
    assert hold_out(items, 3, split_seed=0) == (kept, held)
    assert any(hold_out(items, 3, split_seed=s)[1] != held for s in range(1, 6))
    assert stratified_counts({"benign": 37, "malignant": 48}, 8) == {"benign": 3, "malignant": 5}
    assert sum(stratified_counts({"a": 1, "b": 1, "c": 1}, 2).values()) == 2
