"""The TIMIT corpus on disk (LDC layout): finding utterances, the standard splits, transcripts.

Layout: ``ROOT/TRAIN|TEST/DR1..DR8/<speaker>/<utt>.WAV`` with ``.PHN`` (``start end phone``,
in samples), ``.WRD`` (``start end word``) and ``.TXT`` (``start end sentence``) beside each
``.WAV``; names are matched case-insensitively (some copies are lower-case). SA sentences (the
two dialect sentences every speaker reads) are excluded, as is standard.

Splits: ``train`` = every TRAIN speaker (462 in TIMIT: 3696 utterances); ``dev`` = the standard
50 TEST speakers (400 utterances); ``test`` = the 24-speaker core test set (192 utterances).
Both lists are fixed speaker ids (``timit_phones``); a TEST folder that holds none of them is an
error rather than a silent fallback, so a mislabelled corpus cannot be scored on the wrong set.

Transcripts are read as UTF-8 strictly (TIMIT's are ASCII; nothing is guessed as latin-1), and
given the audio's sample count every segment must end within the audio.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from inqnet.modules.datamodules.timit_phones import CORE_TEST_SPEAKERS, DEV_SPEAKERS, PHONES_61
from inqnet.modules.errors import data_error

SPLITS = ("train", "dev", "test")
MAX_TRANSCRIPT_BYTES = 1 << 20  # TIMIT's transcripts are under 10 kB; a larger one is refused unread
_PHONE_SET = frozenset(PHONES_61)


@dataclass(frozen=True)
class Utterance:
    """One TIMIT utterance: where its files are and who said it."""

    part: str  # "TRAIN" or "TEST", the folder it came from
    dialect: str  # "DR1".."DR8"
    speaker: str  # lower-case speaker id, e.g. "mdab0"
    name: str  # lower-case utterance id, e.g. "si1417"
    wav: Path

    def sibling(self, suffix: str) -> Path:
        """The transcript file next to the audio (``.PHN``, ``.WRD``, ``.TXT``), any case."""
        for candidate in (self.wav.with_suffix(suffix.upper()), self.wav.with_suffix(suffix.lower())):
            if candidate.is_file():
                return candidate
        raise data_error(self.wav.with_suffix(suffix.upper()), "missing transcript file")

    @property
    def key(self) -> str:
        return f"{self.speaker}_{self.name}"


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir())


def _child(root: Path, name: str) -> Path | None:
    """A sub-folder of ``root`` whose name equals ``name`` ignoring case."""
    for p in _subdirs(root):
        if p.name.upper() == name:
            return p
    return None


def scan_timit(root: str | Path) -> list[Utterance]:
    """Every non-SA utterance under ROOT/TRAIN and ROOT/TEST (sorted, deterministic)."""
    root = Path(root)
    if not root.is_dir():
        raise data_error(root, "TIMIT root does not exist or is not a folder")
    utterances: list[Utterance] = []
    for part in ("TRAIN", "TEST"):
        part_dir = _child(root, part)
        if part_dir is None:
            raise data_error(root, f"no {part} folder (expected the LDC layout {part}/DR1..DR8/<speaker>/<utt>.WAV)")
        for dialect in _subdirs(part_dir):
            if not re.fullmatch(r"DR[1-8]", dialect.name.upper()):
                continue
            for speaker in _subdirs(dialect):
                for wav in sorted(speaker.iterdir()):
                    stem, dot, ext = wav.name.partition(".")
                    if ext.upper() != "WAV" or not wav.is_file():
                        continue
                    if stem.upper().startswith("SA"):
                        continue
                    utterances.append(Utterance(part, dialect.name.upper(), speaker.name.lower(), stem.lower(), wav))
    return utterances


def split_timit(utterances: Iterable[Utterance], root: str | Path = "") -> dict[str, list[Utterance]]:
    """The standard train / dev / core-test split; raises DataError if a split comes out empty."""
    splits: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    for u in utterances:
        if u.part == "TRAIN":
            splits["train"].append(u)
        elif u.speaker in CORE_TEST_SPEAKERS:
            splits["test"].append(u)
        elif u.speaker in DEV_SPEAKERS:
            splits["dev"].append(u)
    where = {"train": "TRAIN", "dev": "TEST (none of the 50 standard dev speakers, e.g. faks0)",
             "test": "TEST (none of the 24 core-test speakers, e.g. mdab0)"}  # fmt: skip
    for split, items in splits.items():
        if not items:
            raise data_error(Path(root), f"empty {split} split: no utterances under {where[split]}")
    return splits


def read_transcript_text(path: Path) -> str:
    """A transcript's text: at most ``MAX_TRANSCRIPT_BYTES``, strict UTF-8 (TIMIT's files are ASCII)."""
    try:
        if path.stat().st_size > MAX_TRANSCRIPT_BYTES:
            raise data_error(path, f"transcript of {path.stat().st_size} bytes, more than {MAX_TRANSCRIPT_BYTES}")
        raw = path.read_bytes()
    except OSError as err:
        raise data_error(path, f"cannot read ({err.strerror or err})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise data_error(path, f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                               "TIMIT transcripts are ASCII") from None


def _timed_lines(path: Path, n_samples: int | None = None) -> Iterable[tuple[int, int, int, str]]:
    """(line number, start, end, rest) of a ``start end rest`` transcript file; with ``n_samples``
    (the audio's length) every segment must end within the audio."""
    text = read_transcript_text(path)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(None, 2)
        try:
            if len(parts) != 3:
                raise ValueError
            start, end = int(parts[0]), int(parts[1])
        except ValueError:
            raise data_error(path, f"line {number}: expected 'start end label', got {line.strip()[:60]!r}") from None
        if start < 0 or end < start:
            raise data_error(path, f"line {number}: bad sample range {start}..{end}")
        if n_samples is not None and end > n_samples:
            raise data_error(path, f"line {number}: segment {start}..{end} ends after the audio ({n_samples} samples)")
        yield number, start, end, parts[2].strip()


def read_phn(path: str | Path, n_samples: int | None = None) -> list[tuple[int, int, str]]:
    """``.PHN`` segments (start, end, phone) with every phone checked against the 61-phone set."""
    path = Path(path)
    segments = []
    for number, start, end, phone in _timed_lines(path, n_samples):
        if phone not in _PHONE_SET:
            raise data_error(path, f"line {number}: unknown phone {phone!r} (not one of TIMIT's 61)")
        segments.append((start, end, phone))
    if not segments:
        raise data_error(path, "no phone segments")
    return segments


def read_wrd(path: str | Path, n_samples: int | None = None) -> list[tuple[int, int, str]]:
    """``.WRD`` segments (start, end, word)."""
    path = Path(path)
    words = []
    for number, start, end, word in _timed_lines(path, n_samples):
        if " " in word:
            raise data_error(path, f"line {number}: expected one word, got {word[:60]!r}")
        words.append((start, end, word))
    return words


def read_txt(path: str | Path, n_samples: int | None = None) -> str:
    """The sentence of a ``.TXT`` file (``start end sentence``)."""
    path = Path(path)
    lines = list(_timed_lines(path, n_samples))
    if len(lines) != 1:
        raise data_error(path, f"expected one 'start end sentence' line, found {len(lines)}")
    return lines[0][3]


def normalise_text(sentence: str) -> str:
    """Lower-case letters, apostrophes and single spaces: the character CTC target and WER text."""
    kept = re.sub(r"[^a-z' ]+", " ", sentence.lower())
    return " ".join(kept.split())
