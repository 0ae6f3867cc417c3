"""A small synthetic GlaS in the real on-disk format, so the segmentation family runs anywhere.

Images look like H&E-stained colon tissue at a glance: pink, textured stroma with scattered
nuclei; each gland is a lumen (pale) ringed by a band of dark-purple epithelial nuclei. Test B
(like GlaS's Test B, mostly malignant) has irregular, crowded glands. Files: ``<split>_<n>.bmp``
(24-bit RGB) and ``<split>_<n>_anno.bmp`` (8-bit, 0 = background, 1..K = glands), and
``Grade.csv`` with GlaS's header, all in one flat folder.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from inqnet.modules.datamodules.synth_dir import write_dataset_dir
from inqnet.modules.atomic import write_atomic

GRADE_HEADER = ["name", "Patient ID", "grade (GlaS)", "grade (Sirinukunwattana et al. 2015)"]


def _gland_mask(rng: np.random.Generator, size: int, cy: float, cx: float, ry: float, rx: float,
                angle: float, irregular: bool) -> np.ndarray:
    """Boolean mask of one (possibly irregular) elliptical gland."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    r = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    if irregular:
        theta = np.arctan2(v, u)
        wobble = sum(rng.uniform(0.05, 0.15) * np.cos(k * theta + rng.uniform(0, 6.28)) for k in (2, 3, 5))
        r = r * (1 + wobble)
    return r <= 1.0


def _place_glands(rng: np.random.Generator, size: int, malignant: bool) -> tuple[np.ndarray, int]:
    """Non-overlapping glands; malignant tiles have more, smaller, irregular and closer ones."""
    labels = np.zeros((size, size), dtype=np.uint8)
    occupied = np.zeros((size, size), dtype=bool)
    target = int(rng.integers(5, 9) if malignant else rng.integers(3, 6))
    gap = 1 if malignant else 2  # glands may nearly touch: instance separation is part of the task
    count = 0
    for _ in range(300):
        if count == target:
            break
        ry, rx = rng.uniform(8, 22, size=2) * (0.8 if malignant else 1.0)
        cy, cx = rng.uniform(0, size, size=2)
        mask = _gland_mask(rng, size, cy, cx, ry, rx, rng.uniform(0, np.pi), malignant)
        if mask.sum() < 60 or (ndimage.binary_dilation(mask, iterations=gap) & occupied).any():
            continue
        count += 1
        labels[mask] = count
        occupied |= mask
    return labels, count


def _blobs(rng: np.random.Generator, size: int, count: int, radius: tuple[float, float], avoid: np.ndarray) -> np.ndarray:
    """Irregular blobs away from ``avoid`` (stromal spaces and nuclei clusters that are not glands)."""
    out = np.zeros((size, size), dtype=bool)
    for _ in range(count):
        ry, rx = rng.uniform(*radius, size=2)
        blob = _gland_mask(rng, size, rng.uniform(0, size), rng.uniform(0, size), ry, rx, rng.uniform(0, np.pi), True)
        out |= blob & ~ndimage.binary_dilation(avoid, iterations=3)
    return out


def synth_tile(rng: np.random.Generator, size: int = 128, malignant: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One RGB tile (H, W, 3) uint8 and its instance mask (H, W) uint8.

    Distractors keep it from being a colour threshold: pale stromal spaces without epithelium,
    clusters of stromal nuclei, solid glands with little or no lumen, a per-image stain shift.
    """
    labels, count = _place_glands(rng, size, malignant)
    glands = labels > 0
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)), 3) * 40
    img = np.empty((size, size, 3))
    img[..., 0] = 222 + texture
    img[..., 1] = 158 + texture
    img[..., 2] = 195 + 0.5 * texture
    spaces = _blobs(rng, size, int(rng.integers(1, 4)), (4, 11), glands)
    img[spaces] = (238, 222, 236) + rng.normal(0, 8, size=(int(spaces.sum()), 3))
    clusters = _blobs(rng, size, int(rng.integers(1, 4)), (3, 8), glands) & (rng.random((size, size)) < 0.45)
    nuclei = ndimage.binary_dilation(rng.random((size, size)) < 0.006, iterations=1) | clusters
    img[nuclei & ~glands] = (125, 72, 150)
    for k in range(1, count + 1):
        gland = labels == k
        depth = ndimage.distance_transform_edt(gland)
        thickness = rng.uniform(3, 6) * (1.6 if malignant else 1.0)
        if rng.random() < (0.35 if malignant else 0.1):
            thickness = depth.max() + 1  # a solid gland: epithelium only, no lumen
        epithelium = gland & (depth <= thickness)
        lumen = gland & ~epithelium
        lumen_colour = (240, 230, 242) if rng.random() < 0.7 else (205, 190, 225)  # clear or mucin-filled
        img[lumen] = lumen_colour + rng.normal(0, 8, size=(int(lumen.sum()), 3))
        speckle = rng.normal(0, 22, size=(int(epithelium.sum()), 1))
        img[epithelium] = np.array((112, 58, 142)) + speckle
    stain = rng.uniform(0.88, 1.12, size=3) * rng.uniform(0.9, 1.05)
    img = ndimage.gaussian_filter(img * stain, sigma=(0.8, 0.8, 0)) + rng.normal(0, 6, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), labels


def _save_bmp(array: np.ndarray, path: Path) -> None:
    """Write a BMP atomically (temporary name, then rename)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="BMP")
    write_atomic(path, buffer.getvalue())


SYNTH_TRAIN = 20  # 8 are held out for validation by default (data.val_images), 12 train


def write_synthetic_glas(root: str | Path, train: int = SYNTH_TRAIN, test_a: int = 6, test_b: int = 4,
                         size: int = 128, seed: int = 0) -> Path:
    """Write the synthetic GlaS folder (images, masks, Grade.csv) as ``root``, which must be
    missing or empty; the folder appears complete or not at all. Returns ``root``."""
    return write_dataset_dir(root, lambda tmp: _write_files(tmp, train, test_a, test_b, size, seed))


def _write_files(root: Path, train: int, test_a: int, test_b: int, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for split, count, malignant_share in (("train", train, 0.5), ("testA", test_a, 0.5), ("testB", test_b, 0.9)):
        for n in range(1, count + 1):
            malignant = bool(rng.random() < malignant_share)
            image, labels = synth_tile(rng, size, malignant)
            _save_bmp(image, root / f"{split}_{n}.bmp")
            _save_bmp(labels, root / f"{split}_{n}_anno.bmp")
            grade = "malignant" if malignant else "benign"
            detail = "adenomatous moderately differentiated" if malignant else "healthy"
            rows.append([f"{split}_{n}", str(1 + n % 5), grade, detail])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(GRADE_HEADER)
    writer.writerows(rows)
    write_atomic(root / "Grade.csv", text.getvalue())
