"""Hostile and damaged data files of our own making: each stops `preflight` (and the loader itself)
with one line naming the file and the problem, from headers alone, before any pixel or sample is
decoded."""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inqnet.modules.datamodules.glas import GlasDataModule, load_image
from inqnet.modules.datamodules.image_header import read_header
from inqnet.modules.datamodules.imagenet import ImageNetDataModule, load_rgb
from inqnet.modules.datamodules.sphere import check_audio
from inqnet.modules.datamodules.synth_glas import write_synthetic_glas
from inqnet.modules.datamodules.synth_timit import write_synthetic_timit
from inqnet.modules.datamodules.timit import TimitDataModule
from inqnet.modules.errors import DataError
from tests.modules.datamodules.test_imagenet_data import make_tree


@pytest.fixture(scope="module")
def glas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_glas(tmp_path_factory.mktemp("glas"), train=3, test_a=1, test_b=1, size=32, seed=1)


@pytest.fixture(scope="module")
def timit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_timit(tmp_path_factory.mktemp("timit"), train_speakers=1, dev_speakers=1,
                                 test_speakers=1, utterances_per_speaker=1)


def bmp_claiming(path: Path, width: int, height: int) -> Path:
    """A real 8x8 BMP whose header then claims ``width`` x ``height`` (header only: no pixel data for it)."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, format="BMP")
    raw = bytearray(path.read_bytes())
    struct.pack_into("<ii", raw, 18, width, height)
    path.write_bytes(bytes(raw))
    return path


def jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A real 8x8 JPEG whose SOF0 marker then claims ``width`` x ``height``."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, format="JPEG")
    raw = bytearray(path.read_bytes())
    sof = raw.index(b"\xff\xc0")
    struct.pack_into(">HH", raw, sof + 5, height, width)
    path.write_bytes(bytes(raw))
    return path


def one_line(info: pytest.ExceptionInfo, path: Path, words: str) -> None:
    text = str(info.value)
    assert text.startswith(f"{path}: ") and words in text and "\n" not in text, text


def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Image.Image):  # type: ignore[no-untyped-def]
        raise AssertionError("preflight decoded pixels")

    Image.init()  # every format plugin imported first (one builds a small table image when imported)
    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr(Image.Image, "convert", refuse)


@pytest.mark.parametrize("make", [bmp_claiming, jpeg_claiming])
def test_header_claiming_30000_squared_is_one_line(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / "bomb.img", 30000, 30000)
    for read in (read_header, load_image, load_rgb):
        with pytest.raises(DataError) as info:
            read(path)
        one_line(info, path, "image header declares 30000x30000 = 900000000 pixels, more than the limit")


def test_glas_preflight_refuses_a_bomb_without_decoding(glas: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(shutil.copytree(glas, tmp_path / "glas"))
    GlasDataModule(root, val_images=1).preflight()  # the untouched set passes
    bmp_claiming(root / "testB_1.bmp", 30000, 30000)
    no_pixel_decoding(monkeypatch)
    with pytest.raises(DataError) as info:
        GlasDataModule(root, val_images=1).preflight()
    one_line(info, root / "testB_1.bmp", "30000x30000")


def test_glas_preflight_finds_truncated_bmp_and_mask_size_from_headers(glas: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(shutil.copytree(glas, tmp_path / "glas"))
    victim = root / "train_2.bmp"
    victim.write_bytes(victim.read_bytes()[:500])
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "testA_1_anno.bmp")
    no_pixel_decoding(monkeypatch)
    with pytest.raises(DataError) as info:
        GlasDataModule(root, val_images=1).preflight()
    one_line(info, victim, "truncated or corrupt image (header declares 32x32, needing")
    shutil.copy(glas / "train_2.bmp", victim)
    with pytest.raises(DataError) as info:
        GlasDataModule(root, val_images=1).preflight()
    one_line(info, root / "testA_1_anno.bmp", "mask is 16x16, image is 32x32")


def test_pixel_limit_is_overridable(glas: Path) -> None:
    with pytest.raises(DataError, match=r"32x32 = 1024 pixels, more than the limit of 1000 \(data.max_image_pixels"):
        GlasDataModule(glas, val_images=1, max_image_pixels=1000).preflight()
    GlasDataModule(glas, val_images=1, max_image_pixels=1024).preflight()


def test_imagenet_preflight_checks_every_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path / "imagenet", per_class=200)  # 1200 files: the multi-process path
    ImageNetDataModule(root, num_workers=0).preflight()
    victims = sorted((root / "val").rglob("*.JPEG"))
    jpeg_claiming(victims[450], 30000, 30000)
    victims[7].write_bytes(b"not an image")
    no_pixel_decoding(monkeypatch)
    with pytest.raises(DataError) as info:
        ImageNetDataModule(root, num_workers=0).preflight(workers=2)
    one_line(info, victims[7], "truncated or corrupt image")  # the first bad file in listing order
    victims[7].unlink()
    with pytest.raises(DataError) as info:
        ImageNetDataModule(root, num_workers=0).preflight(workers=2)
    one_line(info, victims[450], "30000x30000")


def copy_timit(timit: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(timit, tmp_path / "timit"))


def test_timit_preflight_passes_and_finds_rate_zero(timit: Path, tmp_path: Path) -> None:
    root = copy_timit(timit, tmp_path)
    TimitDataModule(root).preflight()
    victim = next(root.glob("TEST/DR*/*/SI*.WAV"))
    raw = victim.read_bytes()
    victim.write_bytes(raw.replace(b"sample_rate -i 16000", b"sample_rate -i 0    ", 1))
    with pytest.raises(DataError) as info:
        TimitDataModule(root).preflight()
    one_line(info, victim, "SPHERE sample_rate 0")
    victim.write_bytes(raw.replace(b"   1024\n", b"99999999999\n", 1))
    with pytest.raises(DataError) as info:
        TimitDataModule(root).preflight()
    one_line(info, victim, "SPHERE header size 99999999999 is invalid")


@pytest.mark.parametrize("suffix", [".PHN", ".WRD", ".TXT"])
def test_times_beyond_the_audio(timit: Path, tmp_path: Path, suffix: str) -> None:
    root = copy_timit(timit, tmp_path)
    wav = next(root.glob("TRAIN/DR*/*/SI*.WAV"))
    victim = wav.with_suffix(suffix)
    lines = victim.read_text().splitlines()
    samples = check_audio(wav)
    start, _, rest = lines[-1].split(None, 2)
    lines[-1] = f"{start} {samples + 1} {rest}"  # one sample past the end
    victim.write_text("\n".join(lines) + "\n")
    target = "chars" if suffix == ".TXT" else "phones"
    with pytest.raises(DataError) as info:
        TimitDataModule(root, target=target).preflight()
    one_line(info, victim, f"line {len(lines)}: segment {start}..{samples + 1} ends after the audio ({samples} samples)")
    if suffix != ".WRD":  # the loader checks what it reads, too
        with pytest.raises(DataError, match="ends after the audio"):
            TimitDataModule(root, target=target).setup("fit")


def test_txt_is_strict_utf8(timit: Path, tmp_path: Path) -> None:
    root = copy_timit(timit, tmp_path)
    victim = next(root.glob("TRAIN/DR*/*/SI*.TXT"))
    victim.write_bytes(victim.read_bytes().replace(b"\n", " caf\xe9\n".encode("latin-1"), 1))
    for call in (lambda: TimitDataModule(root, target="chars").preflight(),
                 lambda: TimitDataModule(root, target="chars").setup("fit")):
        with pytest.raises(DataError) as info:
            call()
        one_line(info, victim, "not UTF-8 text (byte 0xe9 at offset")


def test_audio_length_limit_from_the_recipe(timit: Path) -> None:
    with pytest.raises(DataError, match=r"sample_count \d+ is outside 0..1600 \(data.max_audio_seconds"):
        TimitDataModule(timit, max_audio_seconds=0.1).preflight()
