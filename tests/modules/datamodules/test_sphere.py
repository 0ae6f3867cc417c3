"""TIMIT audio through soundfile: real NIST SPHERE files written by libsndfile, then damaged by hand
(a huge header size, a rate of 0, a short file, ...): each is one line naming the file, before any
sample is read."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inqnet.modules.datamodules.sphere import audio_info, check_audio, read_sphere, write_sphere
from inqnet.modules.errors import DataError

VALUES = np.array([-2, 0, 300, 7, -32768, 32767], dtype=np.int16)


def sphere_file(path: Path, values: np.ndarray = VALUES, rate: int = 16000, **kwargs: object) -> Path:
    """A NIST SPHERE file as libsndfile writes it."""
    sf.write(str(path), values, rate, format="NIST", subtype=kwargs.pop("subtype", "PCM_16"), **kwargs)
    return path


def patched(tmp_path: Path, old: bytes, new: bytes, name: str = "BAD.WAV") -> Path:
    """A good SPHERE file with one header text replaced (padding kept, so the header stays 1024 bytes)."""
    raw = sphere_file(tmp_path / "GOOD.WAV").read_bytes()
    assert old in raw[:1024], raw[:200]
    head = raw[:1024].replace(old, new, 1)
    head = head[:1024] if len(head) >= 1024 else head.ljust(1024, b" ")  # the padding absorbs the change
    path = tmp_path / name
    path.write_bytes(head + raw[1024:])
    return path


def test_reads_what_libsndfile_wrote(tmp_path: Path) -> None:
    path = sphere_file(tmp_path / "SI1.WAV")
    assert path.read_bytes().startswith(b"NIST_1A\n   1024\n")
    audio, rate = read_sphere(path)
    assert rate == 16000 and audio.dtype == np.float32
    np.testing.assert_array_equal(audio, VALUES / 32768.0)
    assert check_audio(path) == len(VALUES)


def test_big_endian_is_read_the_same(tmp_path: Path) -> None:
    path = sphere_file(tmp_path / "BE.WAV", endian="BIG")
    np.testing.assert_array_equal(read_sphere(path)[0], VALUES / 32768.0)


def test_write_read_roundtrip(tmp_path: Path) -> None:
    x = np.sin(np.linspace(0, 20, 800)) * 0.4
    write_sphere(tmp_path / "A.WAV", x, 16000)
    y, rate = read_sphere(tmp_path / "A.WAV")
    assert rate == 16000 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1 / 32768)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.WAV"]


def test_reads_riff_wav_at_16k(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "r.wav"), np.array([0, 16384], np.int16), 16000, subtype="PCM_16")
    audio, rate = read_sphere(tmp_path / "r.wav")
    assert rate == 16000 and audio.tolist() == [0.0, 0.5]


def test_file_longer_than_declared_reads_the_declared_samples(tmp_path: Path) -> None:
    path = sphere_file(tmp_path / "L.WAV")
    path.write_bytes(path.read_bytes() + b"\x01\x00" * 10)
    assert len(read_sphere(path)[0]) == len(VALUES)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"   1024\n", b"999999999999\n", "SPHERE header size 999999999999 is invalid"),  # a huge size field
        (b"   1024\n", b"   2048\n", "SPHERE header size 2048 is invalid"),  # past the end of this small file
        (b"   1024\n", b"   abcd\n", "bad SPHERE header size"),
        (b"sample_rate -i 16000", b"sample_rate -i 0", "SPHERE sample_rate 0: must be 16000"),
        (b"sample_rate -i 16000", b"sample_rate -x 16000", "SPHERE header lacks sample_rate"),
        (b"sample_count -i 6", b"sample_count -i 9", "truncated SPHERE audio: header says 9 samples, file holds 6"),
        (b"sample_count -i 6", b"sample_count -i 99999999999", "SPHERE sample_count 99999999999 is outside"),
        (b"end_head", b"end_hexd", "SPHERE header has no end_head line"),
        (b"sample_coding -s3 pcm", b"sample_coding -s3 shn", "sph2pipe"),
        (b"NIST_1A", b"NIST_XX", "not a NIST SPHERE"),
    ],
)
def test_damaged_headers_are_one_line_naming_the_file(tmp_path: Path, old: bytes, new: bytes, message: str) -> None:
    path = patched(tmp_path, old, new)
    for read in (check_audio, read_sphere):
        with pytest.raises(DataError) as info:
            read(path)
        text = str(info.value)
        assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_huge_size_field_allocates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The size field is refused from its text: the header is never read at that size."""
    path = patched(tmp_path, b"   1024\n", b"99999999999\n")
    reads: list[int] = []
    real_open = Path.open

    def spy(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_open(self, *args, **kwargs)
        original = handle.read
        handle.read = lambda n=-1: (reads.append(n), original(n))[1]  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(Path, "open", spy)
    with pytest.raises(DataError, match="header size"):
        check_audio(path)
    assert reads and max(reads) <= 64 and -1 not in reads


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: sphere_file(p, rate=8000), "sample rate 8000 Hz; TIMIT audio is 16000 Hz"),
        (lambda p: sphere_file(p, np.zeros((4, 2), np.int16)), "2 channels; TIMIT audio is mono"),
        (lambda p: sphere_file(p, subtype="PCM_24"), "sample format PCM_24; TIMIT audio is 16-bit PCM"),
        (lambda p: p.write_bytes(b"RIFF" + b"\0" * 40), "unreadable audio"),
        (lambda p: p.write_bytes(b"hello"), "not a NIST SPHERE (NIST_1A) or RIFF wav file"),
    ],
)
def test_not_timit_audio(tmp_path: Path, write, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "X.WAV"
    write(path)
    with pytest.raises(DataError) as info:
        audio_info(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), str(info.value)


def test_length_limit_is_overridable(tmp_path: Path) -> None:
    path = sphere_file(tmp_path / "A.WAV", np.zeros(100, np.int16))
    with pytest.raises(DataError, match="sample_count 100 is outside 0..50 .*max_audio_seconds"):
        check_audio(path, max_samples=50)
    assert check_audio(path, max_samples=100) == 100
    riff = tmp_path / "r.wav"
    sf.write(str(riff), np.zeros(100, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(DataError, match="100 samples, more than the limit of 50"):
        check_audio(riff, max_samples=50)
