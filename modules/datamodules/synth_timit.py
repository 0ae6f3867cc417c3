"""A small synthetic TIMIT in the real LDC layout and formats, so the speech family runs anywhere.

Sentences are drawn from a small lexicon with TIMIT phone transcriptions (closures included);
each phone is synthesised from its own acoustic recipe — vowels, glides and nasals as harmonics of
the speaker's pitch shaped by phone-specific formants, fricatives as band-limited noise, stops as
a closure then a burst — so phones are learnable from spectra, as in speech. Files written per
utterance: SPHERE ``.WAV`` (16 kHz, 16-bit mono PCM, written by libsndfile), ``.PHN``, ``.WRD``, ``.TXT``.

Speakers: TRAIN holds made-up ids (``msya0`` ...); TEST holds real ids from the standard dev and
core-test lists, so the loader's real split logic assigns them to ``dev`` and ``test``. Every
speaker also gets SA1/SA2 files, which the loader must skip.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from inqnet.modules.datamodules.sphere import write_sphere
from inqnet.modules.datamodules.synth_dir import write_dataset_dir
from inqnet.modules.datamodules.timit_phones import CORE_TEST_SPEAKERS, DEV_SPEAKERS
from inqnet.modules.atomic import write_atomic

SAMPLE_RATE = 16000

LEXICON: dict[str, list[str]] = {
    "she": ["sh", "iy"], "had": ["hh", "ae", "dcl", "d"], "your": ["y", "er"],
    "dark": ["dcl", "d", "aa", "r", "kcl", "k"], "suit": ["s", "uw", "tcl", "t"], "in": ["ih", "n"],
    "wash": ["w", "aa", "sh"], "water": ["w", "ao", "dx", "er"], "all": ["ao", "l"],
    "year": ["y", "ih", "r"], "greasy": ["gcl", "g", "r", "iy", "s", "iy"], "the": ["dh", "ax"],
    "cat": ["kcl", "k", "ae", "tcl", "t"], "big": ["bcl", "b", "ih", "gcl", "g"], "fish": ["f", "ih", "sh"],
    "man": ["m", "ae", "n"], "sing": ["s", "ih", "ng"], "thin": ["th", "ih", "n"], "zoo": ["z", "uw"],
    "very": ["v", "eh", "r", "iy"], "good": ["gcl", "g", "uh", "dcl", "d"], "boy": ["bcl", "b", "oy"],
    "now": ["n", "aw"], "my": ["m", "ay"], "day": ["dcl", "d", "ey"], "go": ["gcl", "g", "ow"],
    "top": ["tcl", "t", "aa", "pcl", "p"], "chair": ["ch", "eh", "r"], "joy": ["jh", "oy"],
    "yes": ["y", "eh", "s"], "long": ["l", "ao", "ng"],
}  # fmt: skip

# Voiced sounds: formant frequencies (Hz); two targets make a diphthong glide between them.
_FORMANTS: dict[str, list[tuple[float, float, float]]] = {
    "iy": [(270, 2290, 3010)], "ih": [(390, 1990, 2550)], "eh": [(530, 1840, 2480)],
    "ae": [(660, 1720, 2410)], "aa": [(730, 1090, 2440)], "ao": [(570, 840, 2410)],
    "ah": [(520, 1190, 2390)], "ax": [(500, 1400, 2500)], "uh": [(440, 1020, 2240)],
    "uw": [(300, 870, 2240)], "er": [(490, 1350, 1690)], "ey": [(480, 1900, 2600), (300, 2250, 2900)],
    "ay": [(700, 1200, 2500), (350, 2100, 2800)], "oy": [(550, 850, 2400), (350, 2000, 2700)],
    "aw": [(700, 1250, 2500), (350, 850, 2300)], "ow": [(500, 950, 2400), (350, 800, 2300)],
    "l": [(360, 1000, 2800)], "r": [(420, 1150, 1500)], "w": [(300, 650, 2200)], "y": [(260, 2150, 3100)],
    "m": [(250, 1100, 2300)], "n": [(250, 1600, 2600)], "ng": [(250, 2100, 2900)], "dx": [(400, 1700, 2600)],
}  # fmt: skip
_NASAL_GAIN = {"m": 0.35, "n": 0.35, "ng": 0.35, "dx": 0.4, "l": 0.6, "w": 0.6, "r": 0.7, "y": 0.7}

# Noise sounds: (low Hz, high Hz, gain, voiced)
_NOISE: dict[str, tuple[float, float, float, bool]] = {
    "s": (4500, 7800, 0.5, False), "sh": (2000, 4200, 0.6, False), "f": (1000, 7800, 0.12, False),
    "th": (1400, 6500, 0.1, False), "hh": (400, 3500, 0.15, False), "z": (4500, 7800, 0.35, True),
    "v": (1000, 7800, 0.1, True), "dh": (1400, 6500, 0.1, True), "ch": (2000, 4200, 0.6, False),
    "jh": (2000, 4200, 0.45, True),
}  # fmt: skip
# Stop bursts: (low Hz, high Hz) of the release
_BURST = {"p": (300, 1500), "t": (3500, 7500), "k": (1500, 3000), "b": (200, 1200), "d": (3000, 6000), "g": (1200, 2600)}
_SILENT = {"h#", "pau", "bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "epi"}

_DURATION_MS = {"vowel": (80, 150), "voiced": (50, 90), "noise": (70, 120), "burst": (15, 30),
                "closure": (35, 60), "h#": (120, 220), "pau": (80, 140)}  # fmt: skip


def _kind(phone: str) -> str:
    if phone in ("h#", "pau"):
        return phone
    if phone in _SILENT:
        return "closure"
    if phone in _BURST:
        return "burst"
    if phone in _NOISE:
        return "noise"
    if phone in _NASAL_GAIN:
        return "voiced"
    return "vowel"


def _band_noise(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spectrum *= np.exp(-0.5 * (np.maximum(lo - freqs, 0) ** 2 + np.maximum(freqs - hi, 0) ** 2) / 200.0**2)
    out = np.fft.irfft(spectrum, n)
    return out / (np.abs(out).max() + 1e-9)


def _harmonics(rng: np.random.Generator, n: int, f0: float, targets: list[tuple[float, float, float]], scale: float) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    frac = np.linspace(0.0, 1.0, n)
    start, end = np.array(targets[0]) * scale, np.array(targets[-1]) * scale
    formants = start[None, :] * (1 - frac[:, None]) + end[None, :] * frac[:, None]  # (n, 3)
    pitch = f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6.28)))
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    out = np.zeros(n)
    for k in range(1, int(5000 // f0) + 1):
        freq = k * pitch
        amp = sum(np.exp(-0.5 * ((freq - formants[:, i]) / (60 + 30 * i)) ** 2) / (1 + i) for i in range(3))
        out += amp * np.sin(k * phase + rng.uniform(0, 6.28))
    return out / (np.abs(out).max() + 1e-9)


def synth_phone(rng: np.random.Generator, phone: str, f0: float, scale: float) -> np.ndarray:
    """Samples of one phone for a speaker with pitch ``f0`` and formant ``scale``."""
    kind = _kind(phone)
    lo_ms, hi_ms = _DURATION_MS[kind]
    n = int(rng.uniform(lo_ms, hi_ms) * SAMPLE_RATE / 1000)
    if kind in ("h#", "pau", "closure"):
        sig = 0.005 * rng.standard_normal(n)
        if phone in ("bcl", "dcl", "gcl"):  # voiced closures keep a low voice bar
            sig += 0.05 * _harmonics(rng, n, f0, [(200, 400, 600)], 1.0)
    elif kind == "burst":
        lo, hi = _BURST[phone]
        sig = 0.5 * _band_noise(rng, n, lo, hi) * np.exp(-np.linspace(0, 4, n))
    elif kind == "noise":
        lo, hi, gain, voiced = _NOISE[phone]
        sig = gain * _band_noise(rng, n, lo * scale, min(hi * scale, 7900))
        if voiced:
            sig += 0.25 * _harmonics(rng, n, f0, [(250, 800, 2300)], scale)
    else:
        gain = _NASAL_GAIN.get(phone, 1.0)
        sig = gain * _harmonics(rng, n, f0, _FORMANTS[phone], scale)
    ramp = min(n // 4, SAMPLE_RATE // 200)
    if ramp > 1:
        window = np.ones(n)
        window[:ramp] = np.linspace(0, 1, ramp)
        window[-ramp:] = np.linspace(1, 0, ramp)
        sig = sig * window
    return sig


def synth_utterance(rng: np.random.Generator, words: list[str], f0: float, scale: float):
    """Audio (float, peak 0.5) and the .PHN / .WRD segments of a sentence, h# at both ends."""
    pieces: list[np.ndarray] = []
    phn: list[tuple[int, int, str]] = []
    wrd: list[tuple[int, int, str]] = []
    pos = 0

    def add(phone: str) -> None:
        nonlocal pos
        sig = synth_phone(rng, phone, f0, scale)
        pieces.append(sig)
        phn.append((pos, pos + len(sig), phone))
        pos += len(sig)

    add("h#")
    for i, word in enumerate(words):
        if i and rng.random() < 0.2:
            add("pau")
        start = pos
        for phone in LEXICON[word]:
            add(phone)
        wrd.append((start, pos, word))
    add("h#")
    audio = np.concatenate(pieces)
    audio = audio + 0.002 * rng.standard_normal(audio.size)
    return 0.5 * audio / (np.abs(audio).max() + 1e-9), phn, wrd


def _write_text(path: Path, lines: list[str]) -> None:
    write_atomic(path, "".join(line + "\n" for line in lines))


def write_utterance(folder: Path, name: str, rng: np.random.Generator, f0: float, scale: float, n_words: int) -> None:
    """Write ``name``.WAV/.PHN/.WRD/.TXT for one random sentence into ``folder``."""
    vocabulary = sorted(LEXICON)
    words = [vocabulary[i] for i in rng.choice(len(vocabulary), size=n_words, replace=False)]
    audio, phn, wrd = synth_utterance(rng, words, f0, scale)
    write_sphere(folder / f"{name}.WAV", audio, SAMPLE_RATE)
    _write_text(folder / f"{name}.PHN", [f"{s} {e} {p}" for s, e, p in phn])
    _write_text(folder / f"{name}.WRD", [f"{s} {e} {w}" for s, e, w in wrd])
    sentence = " ".join(words).capitalize() + "."
    _write_text(folder / f"{name}.TXT", [f"0 {len(audio)} {sentence}"])


def write_synthetic_timit(
    root: str | Path,
    train_speakers: int = 12,
    dev_speakers: int = 4,
    test_speakers: int = 4,
    utterances_per_speaker: int = 5,
    seed: int = 0,
) -> Path:
    """Write a synthetic TIMIT (TRAIN/ and TEST/) as ``root``, which must be missing or empty;
    the folder appears complete or not at all. Returns ``root``."""
    return write_dataset_dir(root, lambda tmp: _write_files(tmp, train_speakers, dev_speakers, test_speakers,
                                                            utterances_per_speaker, seed))


def _write_files(root: Path, train_speakers: int, dev_speakers: int, test_speakers: int,
                 utterances_per_speaker: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    train = [f"{'mf'[i % 2]}sy{letters[i // 10 % 26]}{i % 10}" for i in range(train_speakers)]
    speakers = [("TRAIN", s) for s in train]
    speakers += [("TEST", s) for s in sorted(DEV_SPEAKERS)[:dev_speakers]]
    speakers += [("TEST", s) for s in sorted(CORE_TEST_SPEAKERS)[:test_speakers]]
    for index, (part, speaker) in enumerate(speakers):
        folder = root / part / f"DR{index % 8 + 1}" / speaker.upper()
        folder.mkdir(parents=True, exist_ok=True)
        female = speaker.startswith("f")
        f0 = rng.uniform(170, 240) if female else rng.uniform(95, 150)
        scale = rng.uniform(1.02, 1.12) if female else rng.uniform(0.9, 1.0)
        names = ["SA1", "SA2"] + [f"SX{index * 10 + k + 10}" if k % 2 else f"SI{1000 + index * 10 + k}" for k in range(utterances_per_speaker)]
        for name in names:
            write_utterance(folder, name, rng, f0, scale, n_words=int(rng.integers(3, 6)))
