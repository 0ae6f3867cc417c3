"""TIMIT's audio (NIST SPHERE ``.WAV``, or RIFF ``.wav`` in converted copies), read with ``soundfile``.

libsndfile reads and writes uncompressed NIST SPHERE; a well-kept reader beats our own. On top of
it sit only TIMIT's own checks, all made before any sample is read: 16 kHz, 16-bit PCM, mono, a
sample rate above 0, a SPHERE header size that is sane and inside the file, a declared
``sample_count`` the file really holds, and a length within ``max_samples``
(``DEFAULT_MAX_SECONDS`` of audio unless the recipe says otherwise). libsndfile trusts the file's
length rather than ``sample_count``, so the declared count is read from the header here.
Shorten-compressed files (``sample_coding`` containing ``shorten``) must be decompressed with NIST's
``w_decode`` / ``sph2pipe`` first; they are refused with that advice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from inqnet.modules.atomic import atomic_path
from inqnet.modules.errors import data_error, first_line

SAMPLE_RATE = 16000  # TIMIT's rate: other rates are refused, not resampled
SUBTYPE = "PCM_16"  # TIMIT's sample format
HEADER_SIZE = 1024  # the usual SPHERE header size (a multiple of 1024)
MAX_HEADER_SIZE = 64 * 1024  # a larger declared header is refused before it is read
DEFAULT_MAX_SECONDS = 600.0  # TIMIT utterances last about 3 s; longer files are refused (overridable)
_MAGIC = b"NIST_1A\n"
_DECLARED = re.compile(rb"^(sample_count|sample_rate|channel_count|sample_n_bytes|sample_coding)\s+-(i|s\d+)\s+(\S+)",
                       re.MULTILINE)


@dataclass(frozen=True)
class AudioInfo:
    """What the header of one audio file says, after TIMIT's checks."""

    path: Path
    frames: int  # samples the loader will read (the declared count for SPHERE)
    rate: int


def max_samples_for(seconds: float) -> int:
    """The sample limit of ``seconds`` of TIMIT audio."""
    return int(seconds * SAMPLE_RATE)


def _sphere_declared(path: Path, length: int) -> dict[str, str]:
    """The SPHERE header's size-like fields, read within ``MAX_HEADER_SIZE`` bytes; DataError if the
    declared header size is not a number, not a multiple of 1024, too large or past the file's end."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_MAGIC) + 16)
            size_line = head[len(_MAGIC):].split(b"\n", 1)[0]
            if not re.fullmatch(rb"\s*\d{1,12}\s*", size_line):
                raise data_error(path, f"bad SPHERE header size {size_line[:16]!r}")
            size = int(size_line)
            if size < HEADER_SIZE or size % HEADER_SIZE or size > MAX_HEADER_SIZE or size > length:
                raise data_error(path, f"SPHERE header size {size} is invalid (a multiple of {HEADER_SIZE} up to "
                                       f"{MAX_HEADER_SIZE}, inside the file of {length} bytes)")
            handle.seek(0)
            header = handle.read(size)
    except OSError as err:
        raise data_error(path, f"cannot read ({err.strerror or err})") from None
    end = header.find(b"\nend_head")
    if end < 0:
        raise data_error(path, "SPHERE header has no end_head line")
    return {m.group(1).decode(): m.group(3).decode("ascii", "replace") for m in _DECLARED.finditer(header[:end])}


def _declared_int(declared: dict[str, str], key: str, path: Path) -> int:
    if key not in declared:
        raise data_error(path, f"SPHERE header lacks {key} (a '{key} -i N' line)")
    try:
        return int(declared[key])
    except ValueError:
        raise data_error(path, f"SPHERE header {key} {declared[key][:20]!r} is not an integer") from None


def audio_info(path: str | Path, max_samples: int = max_samples_for(DEFAULT_MAX_SECONDS)) -> AudioInfo:
    """Checks one audio file's header against TIMIT's format and the limits, reading no samples."""
    path = Path(path)
    try:
        length = path.stat().st_size
        with path.open("rb") as handle:
            magic = handle.read(len(_MAGIC))
    except OSError as err:
        raise data_error(path, f"cannot read ({err.strerror or err})") from None
    declared: dict[str, str] | None = None
    if magic == _MAGIC:
        declared = _sphere_declared(path, length)
        coding = declared.get("sample_coding", "pcm").lower()
        if "shorten" in coding or "wavpack" in coding or "shn" in coding:
            raise data_error(path, f"compressed SPHERE file (sample_coding {coding!r}); "
                                   "decompress it with sph2pipe or w_decode first")
        rate = _declared_int(declared, "sample_rate", path)
        if rate <= 0:
            raise data_error(path, f"SPHERE sample_rate {rate}: must be {SAMPLE_RATE}")
        count = _declared_int(declared, "sample_count", path)
        if count < 0 or count > max_samples:
            raise data_error(path, f"SPHERE sample_count {count} is outside 0..{max_samples} "
                                   f"(data.max_audio_seconds raises the limit)")
    elif not magic.startswith(b"RIFF"):
        raise data_error(path, "not a NIST SPHERE (NIST_1A) or RIFF wav file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise data_error(path, f"unreadable audio ({first_line(err).replace(str(path), '').strip(': ')})") from None
    if info.samplerate != SAMPLE_RATE:
        raise data_error(path, f"sample rate {info.samplerate} Hz; TIMIT audio is {SAMPLE_RATE} Hz")
    if info.channels != 1:
        raise data_error(path, f"{info.channels} channels; TIMIT audio is mono")
    if info.subtype != SUBTYPE:
        raise data_error(path, f"sample format {info.subtype}; TIMIT audio is 16-bit PCM")
    frames = int(info.frames)
    if declared is not None:
        if count > frames:
            raise data_error(path, f"truncated SPHERE audio: header says {count} samples, file holds {frames}")
        frames = count
    elif frames > max_samples:
        raise data_error(path, f"{frames} samples, more than the limit of {max_samples} "
                               f"(data.max_audio_seconds raises the limit)")
    return AudioInfo(path, frames, int(info.samplerate))


def check_audio(path: str | Path, max_samples: int = max_samples_for(DEFAULT_MAX_SECONDS)) -> int:
    """Validates an audio file without decoding it (fails early, one line); returns its sample count."""
    return audio_info(path, max_samples).frames


def read_sphere(path: str | Path, max_samples: int = max_samples_for(DEFAULT_MAX_SECONDS)) -> tuple[np.ndarray, int]:
    """Samples as float32 in [-1, 1), shape (samples,), and the rate, after ``audio_info``'s checks."""
    info = audio_info(path, max_samples)
    try:
        samples, rate = sf.read(str(info.path), frames=info.frames, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise data_error(info.path, f"unreadable audio ({first_line(err)})") from None
    if samples.shape != (info.frames,):
        raise data_error(info.path, f"truncated audio: expected {info.frames} samples, read {samples.shape[0]}")
    return samples, int(rate)


def write_sphere(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Writes 16-bit PCM NIST SPHERE as TIMIT's (float samples in [-1, 1) or int16), atomically."""
    pcm = np.asarray(samples)
    if pcm.dtype != np.int16:
        pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), pcm, int(sample_rate), format="NIST", subtype=SUBTYPE, endian="LITTLE")
