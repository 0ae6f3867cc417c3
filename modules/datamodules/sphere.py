"""NIST SPHERE audio (TIMIT's ``.WAV``): header parsing, reading and writing, no extra dependency.

A SPHERE file starts with ``NIST_1A\\n``, the header size in bytes (``   1024\\n``), then lines
``<name> -i <int>`` / ``-r <real>`` / ``-s<N> <N-character string>`` up to ``end_head``, padded
with spaces to the header size; the samples follow. TIMIT uses 16-bit little-endian PCM
(``sample_byte_format -s2 01``) at 16 kHz. Shorten-compressed files (``sample_coding`` containing
``shorten``) must be decompressed with NIST's ``w_decode`` / ``sph2pipe`` first; they are rejected.
RIFF ``.wav`` files (some TIMIT redistributions converted them) are read too.
"""
from __future__ import annotations

import re
import wave
from pathlib import Path

import numpy as np

from inqnet.modules.errors import data_error
from inqnet.modules.atomic import write_atomic

HEADER_SIZE = 1024
_FIELD = re.compile(r"^\s*(\S+)\s+(-[irs]\d*) (.*)$")


def parse_sphere_header(raw: bytes, path: str | Path = "<bytes>") -> tuple[dict[str, int | float | str], int]:
    """Parse a SPHERE header; returns (fields, header size). Raises DataError naming ``path``."""
    if not raw.startswith(b"NIST_1A"):
        raise data_error(path, "not a NIST SPHERE file (no NIST_1A magic)")
    lines = raw.split(b"\n", 2)
    if len(lines) < 3:
        raise data_error(path, "truncated SPHERE header")
    try:
        size = int(lines[1].strip())
    except ValueError:
        raise data_error(path, f"bad SPHERE header size {lines[1][:16]!r}") from None
    if size < 16 or size % 1024 or len(raw) < size:
        raise data_error(path, f"SPHERE header size {size} is invalid or past the end of the file")
    body = raw[len(lines[0]) + len(lines[1]) + 2 : size]
    fields: dict[str, int | float | str] = {}
    pos = 0
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            raise data_error(path, "SPHERE header has no end_head line")
        line = body[pos:end].decode("latin-1").rstrip("\r")
        pos = end + 1
        if line.strip() == "end_head":
            break
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        match = _FIELD.match(line)
        if match is None:
            raise data_error(path, f"bad SPHERE header line {line[:60]!r}")
        name, kind, value = match.groups()
        try:
            if kind == "-i":
                fields[name] = int(value.strip())
            elif kind == "-r":
                fields[name] = float(value.strip())
            elif kind.startswith("-s"):
                n = int(kind[2:])
                if len(value) < n:  # a string value may contain spaces but not newlines
                    raise ValueError
                fields[name] = value[:n]
            else:
                raise ValueError
        except ValueError:
            raise data_error(path, f"bad SPHERE header line {line[:60]!r}") from None
    return fields, size


def _sample_dtype(fields: dict, path: str | Path) -> np.dtype:
    coding = str(fields.get("sample_coding", "pcm")).lower()
    if "shorten" in coding or "wavpack" in coding or "shn" in coding:
        raise data_error(path, f"compressed SPHERE file (sample_coding {coding!r}); decompress it with sph2pipe or w_decode first")
    if not coding.startswith("pcm"):
        raise data_error(path, f"unsupported SPHERE sample_coding {coding!r} (only pcm)")
    n_bytes = fields.get("sample_n_bytes", 2)
    order = str(fields.get("sample_byte_format", "01" if n_bytes == 2 else "1"))
    if n_bytes == 1:
        return np.dtype(np.int8)
    if n_bytes not in (2, 4):
        raise data_error(path, f"unsupported SPHERE sample_n_bytes {n_bytes}")
    if order == "01" or order == "0123":
        endian = "<"
    elif order == "10" or order == "3210":
        endian = ">"
    else:
        raise data_error(path, f"unsupported SPHERE sample_byte_format {order!r}")
    return np.dtype(f"{endian}i{n_bytes}")


def check_audio(path: str | Path) -> None:
    """Validate an audio file's header and length without decoding it (fails early, one line)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(HEADER_SIZE)
            if head.startswith(b"NIST_1A"):
                size = int(head.split(b"\n", 2)[1].strip() or 0) if head.count(b"\n") >= 2 else 0
                if size > HEADER_SIZE:
                    head += handle.read(size - HEADER_SIZE)
        length = path.stat().st_size
    except (OSError, ValueError) as err:
        if isinstance(err, ValueError):
            raise data_error(path, "bad SPHERE header size") from None
        raise data_error(path, f"cannot read ({err.strerror})") from None
    if head.startswith(b"RIFF"):
        return
    fields, size = parse_sphere_header(head, path)
    for key in ("sample_count", "sample_rate"):
        if key not in fields:
            raise data_error(path, f"SPHERE header lacks {key}")
    dtype = _sample_dtype(fields, path)
    need = int(fields["sample_count"]) * int(fields.get("channel_count", 1)) * dtype.itemsize
    if length - size < need:
        raise data_error(path, f"truncated SPHERE audio: header says {fields['sample_count']} samples, "
                               f"file holds {(length - size) // (int(fields.get('channel_count', 1)) * dtype.itemsize)}")


def read_sphere(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples as float32 in [-1, 1), shape (samples,) (channel 0 of multichannel), and the rate."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise data_error(path, f"cannot read ({err.strerror})") from None
    if raw.startswith(b"RIFF"):
        return _read_riff(path)
    fields, size = parse_sphere_header(raw, path)
    for key in ("sample_count", "sample_rate"):
        if key not in fields:
            raise data_error(path, f"SPHERE header lacks {key}")
    dtype = _sample_dtype(fields, path)
    channels = int(fields.get("channel_count", 1))
    count = int(fields["sample_count"])
    if channels < 1 or count < 0:
        raise data_error(path, f"bad SPHERE channel_count {channels} or sample_count {count}")
    need = count * channels * dtype.itemsize
    data = raw[size:]
    if len(data) < need:
        raise data_error(path, f"truncated SPHERE audio: header says {count} samples, file holds {len(data) // (channels * dtype.itemsize)}")
    samples = np.frombuffer(data[:need], dtype=dtype).reshape(count, channels)[:, 0]
    scale = float(2 ** (8 * dtype.itemsize - 1))
    return (samples.astype(np.float32) / scale), int(fields["sample_rate"])


def _read_riff(path: Path) -> tuple[np.ndarray, int]:
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as err:
        raise data_error(path, f"bad RIFF wav file ({err})") from None
    if width != 2:
        raise data_error(path, f"unsupported RIFF sample width {width} bytes (only 16-bit)")
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)[:, 0]
    return samples.astype(np.float32) / 32768.0, rate


def write_sphere(path: str | Path, samples: np.ndarray, sample_rate: int = 16000, extra: dict | None = None) -> None:
    """Write 16-bit little-endian PCM SPHERE like TIMIT's (``extra`` adds header fields).

    Written to a temporary name and renamed, so a crash leaves no half-written file.
    """
    path = Path(path)
    pcm = np.asarray(samples)
    if pcm.dtype != np.int16:
        pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    fields: dict[str, int | float | str] = {
        "database_id": "TIMIT",
        "database_version": "1.0",
        "utterance_id": path.stem.lower(),
        "channel_count": 1,
        "sample_count": int(pcm.size),
        "sample_rate": int(sample_rate),
        "sample_min": int(pcm.min()) if pcm.size else 0,
        "sample_max": int(pcm.max()) if pcm.size else 0,
        "sample_n_bytes": 2,
        "sample_byte_format": "01",
        "sample_sig_bits": 16,
    }
    fields.update(extra or {})
    lines = ["NIST_1A", "   1024"]
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"SPHERE field {name} must be int, float or str")
        if isinstance(value, int):
            lines.append(f"{name} -i {value}")
        elif isinstance(value, float):
            lines.append(f"{name} -r {value}")
        else:
            lines.append(f"{name} -s{len(value)} {value}")
    lines.append("end_head")
    header = ("\n".join(lines) + "\n").encode("latin-1")
    if len(header) > HEADER_SIZE:
        raise ValueError("SPHERE header fields do not fit in 1024 bytes")
    header = header.ljust(HEADER_SIZE, b" ")
    write_atomic(path, header + pcm.astype("<i2").tobytes())
