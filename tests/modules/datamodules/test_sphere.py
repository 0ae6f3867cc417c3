"""NIST SPHERE reading: TIMIT-style headers with extra fields, byte orders, and broken files."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from inqnet.modules.datamodules.sphere import parse_sphere_header, read_sphere, write_sphere
from inqnet.modules.errors import DataError


def sphere_bytes(fields: list[str], samples: bytes, size: int = 1024) -> bytes:
    """A SPHERE file assembled by hand, the way LDC's TIMIT files look."""
    header = ("NIST_1A\n" + f"{size:7d}\n" + "".join(f + "\n" for f in fields) + "end_head\n").encode()
    return header.ljust(size, b" ") + samples


TIMIT_FIELDS = [
    "database_id -s5 TIMIT",
    "database_version -s3 1.0",
    "utterance_id -s8 aks0_sa1",
    "channel_count -i 1",
    "sample_count -i 4",
    "sample_rate -i 16000",
    "sample_min -i -2",
    "sample_max -i 300",
    "sample_n_bytes -i 2",
    "sample_byte_format -s2 01",
    "sample_sig_bits -i 16",
    "recording_date -s11 03-Jan-1987",  # a string with a dash; below one with spaces
    "speaker_note -s12 read clearly",
    "sample_checksum -i 12345",
    "ratio -r 0.5",
]


def test_reads_timit_header_with_extra_fields(tmp_path: Path) -> None:
    values = np.array([-2, 0, 300, 7], dtype="<i2")
    path = tmp_path / "SA1.WAV"
    path.write_bytes(sphere_bytes(TIMIT_FIELDS, values.tobytes()))
    fields, size = parse_sphere_header(path.read_bytes(), path)
    assert size == 1024
    assert fields["speaker_note"] == "read clearly" and fields["ratio"] == 0.5
    audio, rate = read_sphere(path)
    assert rate == 16000
    np.testing.assert_allclose(audio, values / 32768.0)


def test_big_endian_and_larger_header(tmp_path: Path) -> None:
    values = np.array([1000, -1000, 5], dtype=">i2")
    fields = [f.replace("-s2 01", "-s2 10").replace("sample_count -i 4", "sample_count -i 3") for f in TIMIT_FIELDS]
    path = tmp_path / "X.WAV"
    path.write_bytes(sphere_bytes(fields, values.tobytes(), size=2048))
    audio, _ = read_sphere(path)
    np.testing.assert_allclose(audio, values.astype(np.float32) / 32768.0)


def test_write_read_roundtrip(tmp_path: Path) -> None:
    x = np.sin(np.linspace(0, 20, 800)) * 0.4
    write_sphere(tmp_path / "A.WAV", x, 16000, extra={"speaking_mode": "read"})
    y, rate = read_sphere(tmp_path / "A.WAV")
    assert rate == 16000 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1 / 32768)
    assert not list(tmp_path.glob("*.tmp"))


def test_reads_riff_wav(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "r.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.array([0, 16384], dtype="<i2").tobytes())
    audio, rate = read_sphere(tmp_path / "r.wav")
    assert rate == 8000 and audio.tolist() == [0.0, 0.5]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.replace(b"NIST_1A", b"NIST_XX"), "NIST_1A"),
        (lambda b: b.replace(b"end_head", b"end_hexd"), "bad SPHERE header line"),
        (lambda b: b.replace(b"   1024\n", b"   abcd\n"), "header size"),
        (lambda b: b.replace(b"sample_rate -i 16000", b"sample_rate -i 16k00"), "bad SPHERE header line"),
        (lambda b: b.replace(b"sample_count -i 4", b"sample_count -i 9"), "truncated SPHERE audio"),
        (lambda b: b[:600], "past the end"),
        (lambda b: b.replace(b"ratio -r 0.5", b"sample_coding -s26 pcm,embedded-shorten-v2.00"), "sph2pipe"),
    ],
)
def test_broken_files_name_the_file(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "BAD.WAV"
    path.write_bytes(mutate(sphere_bytes(TIMIT_FIELDS, np.zeros(4, "<i2").tobytes())))
    with pytest.raises(DataError) as info:
        read_sphere(path)
    assert str(path) in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.replace(b"end_head", b"end_hexd"), "bad SPHERE header line"),
        (lambda b: b.replace(b"sample_count -i 4", b"sample_count -i 9"), "truncated SPHERE audio"),
        (lambda b: b.replace(b"ratio -r 0.5", b"sample_coding -s26 pcm,embedded-shorten-v2.00"), "sph2pipe"),
    ],
)
def test_check_audio_finds_the_same_problems_without_decoding(tmp_path: Path, mutate, message: str) -> None:
    from inqnet.modules.datamodules.sphere import check_audio

    good = tmp_path / "GOOD.WAV"
    good.write_bytes(sphere_bytes(TIMIT_FIELDS, np.zeros(4, "<i2").tobytes()))
    check_audio(good)
    bad = tmp_path / "BAD.WAV"
    bad.write_bytes(mutate(good.read_bytes()))
    with pytest.raises(DataError, match=message):
        check_audio(bad)
