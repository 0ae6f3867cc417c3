"""TIMIT for CTC training: features through torchaudio, phone or character targets, padding collate.

Features: log-mel filterbanks (``features="logmel"``, ``n_mels`` bands) or MFCCs (``"mfcc"``,
``n_mfcc`` coefficients), 25 ms windows every 10 ms, optional deltas and delta-deltas, each
utterance normalised to zero mean and unit variance per dimension. SpecAugment (frequency and time
masks) is applied to training utterances when ``spec_augment`` is on.

Targets: ``"phones"`` (the 61 TIMIT phones, or the 39 folded ones with ``phone_set="39"``;
scored on 39 folded phones: PER) or ``"chars"`` (letters, apostrophe and space from ``.TXT``;
scored as WER and CER). Index 0 is the CTC blank.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torchaudio
from pydantic import PositiveFloat, PositiveInt
from torch.utils.data import DataLoader, Dataset

from inqnet.modules.datamodules.sampling import EpochSeededSampler
from inqnet.modules.datamodules.sphere import DEFAULT_MAX_SECONDS, SAMPLE_RATE, check_audio, max_samples_for, read_sphere
from inqnet.modules.datamodules.synth_timit import write_synthetic_timit
from inqnet.modules.datamodules.timit_corpus import (Utterance, normalise_text, read_phn, read_txt, read_wrd, scan_timit,
                                                     split_timit)
from inqnet.modules.datamodules.timit_phones import CHARACTERS, PHONE_SETS, fold_phones
from inqnet.modules.datamodules.synth_dir import is_empty_or_missing
from inqnet.modules.errors import DataError, data_error
from inqnet.modules.registry import OnDiskDataConfig, register_data

Target = Literal["phones", "chars"]


def check_utterance(u: Utterance, target: str, max_samples: int) -> int:
    """Checks one utterance from headers and transcripts (no audio decoded): the audio's format and
    length, and the transcripts' times within it (``.WRD`` when present; ``.PHN`` or ``.TXT``, the one
    ``target`` needs, always). Returns the sample count."""
    frames = check_audio(u.wav, max_samples)
    for suffix, read, needed in ((".PHN", read_phn, target == "phones"), (".TXT", read_txt, target == "chars"),
                                 (".WRD", read_wrd, False)):
        try:
            path = u.sibling(suffix)
        except DataError:
            if needed:
                raise
            continue
        read(path, frames)
    return frames


class Featurizer(torch.nn.Module):
    """Waveform (samples,) -> normalised features (frames, dims)."""

    def __init__(self, kind: str = "logmel", n_mels: int = 40, n_mfcc: int = 13, deltas: bool = False) -> None:
        super().__init__()
        mel = {"n_fft": 400, "win_length": 400, "hop_length": 160, "n_mels": n_mels}
        if kind == "logmel":
            self.transform: torch.nn.Module = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, **mel)
            base = n_mels
        elif kind == "mfcc":
            self.transform = torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=n_mfcc, melkwargs=mel)
            base = n_mfcc
        else:
            raise ValueError(f"features must be 'logmel' or 'mfcc', got {kind!r}")
        self.kind, self.deltas = kind, deltas
        self.delta = torchaudio.transforms.ComputeDeltas() if deltas else None
        self.dim = base * (3 if deltas else 1)

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.transform(wave)  # (dims, frames)
        if self.kind == "logmel":
            x = torch.log(x + 1e-6)
        if self.delta is not None:
            d1 = self.delta(x)
            x = torch.cat([x, d1, self.delta(d1)], dim=0)
        x = (x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True) + 1e-5)
        return x.T.contiguous()


class SpecAugment(torch.nn.Module):
    """Frequency and time masking (Park et al. 2019) on (frames, dims) features."""

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 20) -> None:
        super().__init__()
        self.freq = torchaudio.transforms.FrequencyMasking(freq_width)
        self.time = torchaudio.transforms.TimeMasking(time_width)
        self.freq_masks, self.time_masks = freq_masks, time_masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.T.unsqueeze(0)  # (1, dims, frames)
        for _ in range(self.freq_masks):
            y = self.freq(y)
        for _ in range(self.time_masks):
            y = self.time(y)
        return y.squeeze(0).T.contiguous()


class Vocabulary:
    """CTC output symbols: index 0 is the blank, then the training tokens."""

    def __init__(self, target: Target, phone_set: int | str = 61) -> None:
        phone_set = str(phone_set)
        if target == "phones":
            if phone_set not in PHONE_SETS:
                raise ValueError(f"phone_set must be '61' or '39', got {phone_set!r}")
            self.tokens = list(PHONE_SETS[phone_set])
        elif target == "chars":
            self.tokens = list(CHARACTERS)
        else:
            raise ValueError(f"target must be 'phones' or 'chars', got {target!r}")
        self.target, self.phone_set = target, phone_set
        self.index = {t: i + 1 for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens) + 1

    def encode(self, tokens: list[str]) -> torch.Tensor:
        return torch.tensor([self.index[t] for t in tokens], dtype=torch.long)

    def decode(self, ids: list[int]) -> list[str]:
        return [self.tokens[i - 1] for i in ids if 0 < i <= len(self.tokens)]

    def scoring_units(self, tokens: list[str]) -> list[str]:
        """What is scored: folded phones (PER) or words (WER) of a token sequence."""
        if self.target == "phones":
            return fold_phones(tokens)
        return "".join(tokens).split()


class TimitDataset(Dataset):
    """Utterances -> dicts with ``features`` (T, F), ``targets`` (L,), ``reference`` (scored units)."""

    def __init__(self, utterances: list[Utterance], featurizer: Featurizer, vocab: Vocabulary,
                 augment: torch.nn.Module | None = None, cache: bool = True,
                 max_samples: int = max_samples_for(DEFAULT_MAX_SECONDS)) -> None:
        self.utterances, self.featurizer, self.vocab, self.augment = utterances, featurizer, vocab, augment
        self.max_samples = max_samples
        # headers checked and transcripts parsed up front: bad files fail early
        self.frames = [check_audio(u.wav, max_samples) for u in utterances]
        self.labels = [self._tokens(u, n) for u, n in zip(utterances, self.frames)]
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None

    def _tokens(self, u: Utterance, n_samples: int) -> list[str]:
        if self.vocab.target == "phones":
            phones = [p for _, _, p in read_phn(u.sibling(".PHN"), n_samples)]
            return fold_phones(phones) if self.vocab.phone_set == "39" else phones
        path = u.sibling(".TXT")
        text = normalise_text(read_txt(path, n_samples))
        if not text:
            raise data_error(path, "sentence has no letters")
        return list(text)

    def __len__(self) -> int:
        return len(self.utterances)

    def features(self, i: int) -> torch.Tensor:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        samples, _ = read_sphere(self.utterances[i].wav, self.max_samples)  # 16 kHz: audio_info refuses others
        wave = torch.from_numpy(samples)
        feats = self.featurizer(wave)
        if self.cache is not None:
            self.cache[i] = feats
        return feats

    def __getitem__(self, i: int) -> dict:
        feats = self.features(i)
        if self.augment is not None:
            feats = self.augment(feats)
        tokens = self.labels[i]
        return {"features": feats, "targets": self.vocab.encode(tokens),
                "reference": self.vocab.scoring_units(tokens), "key": self.utterances[i].key}


def collate_utterances(items: list[dict]) -> dict:
    """Pad features to the longest utterance; concatenate targets as CTC expects."""
    lengths = torch.tensor([it["features"].shape[0] for it in items], dtype=torch.long)
    dims = items[0]["features"].shape[1]
    features = torch.zeros(len(items), int(lengths.max()), dims)
    for k, it in enumerate(items):
        features[k, : it["features"].shape[0]] = it["features"]
    return {
        "features": features,
        "lengths": lengths,
        "targets": torch.cat([it["targets"] for it in items]),
        "target_lengths": torch.tensor([len(it["targets"]) for it in items], dtype=torch.long),
        "references": [it["reference"] for it in items],
        "keys": [it["key"] for it in items],
    }


class TimitDataModule(L.LightningDataModule):
    """TIMIT (LDC layout) train / dev / core-test loaders; ``synthesize`` fills an empty root."""

    def __init__(
        self,
        root: str | Path = "data/timit",
        features: Literal["logmel", "mfcc"] = "logmel",
        n_mels: int = 40,
        n_mfcc: int = 13,
        deltas: bool = False,
        target: Target = "phones",
        phone_set: Literal[61, 39] = 61,
        spec_augment: bool = False,
        batch_size: int = 16,
        num_workers: int = 0,
        cache: bool = True,
        synthesize: bool = False,
        seed: int = 0,
        max_audio_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.max_samples = max_samples_for(max_audio_seconds)
        self.featurizer = Featurizer(features, n_mels, n_mfcc, deltas)
        self.vocab = Vocabulary(target, phone_set)
        self.augment = SpecAugment() if spec_augment else None
        self.batch_size, self.num_workers, self.cache = batch_size, num_workers, cache
        self.synthesize, self.seed = synthesize, seed
        self.datasets: dict[str, TimitDataset] = {}

    @property
    def data_info(self) -> dict[str, Any]:
        """What Deep Speech and the speech module need: feature size, output symbols, scoring.

        Sets the data up first, so a missing or broken dataset is reported before a run starts.
        """
        self.setup()
        return {"n_features": self.n_features, "num_classes": self.num_classes, "target": self.vocab.target,
                "phone_set": int(self.vocab.phone_set)}

    @property
    def n_features(self) -> int:
        return self.featurizer.dim

    @property
    def num_classes(self) -> int:
        return len(self.vocab)

    def prepare_data(self) -> None:
        """Write the synthetic corpus when asked to and the root is missing or empty."""
        if self.synthesize and is_empty_or_missing(self.root):
            write_synthetic_timit(self.root, seed=0)  # the same data whatever the run's seed

    def _splits(self) -> dict[str, list[Utterance]]:
        self.prepare_data()  # idempotent; covers callers that skip prepare_data
        return split_timit(scan_timit(self.root), self.root)

    def preflight(self) -> None:
        """Checks every utterance the run reads from headers and transcripts (audio format, length
        within data.max_audio_seconds, transcript times within the audio, strict UTF-8), decoding no
        audio, so a bad file stops the run before its folder exists."""
        for utterances in self._splits().values():
            for u in utterances:
                check_utterance(u, self.vocab.target, self.max_samples)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        for name, utts in self._splits().items():
            augment = self.augment if name == "train" else None
            self.datasets[name] = TimitDataset(utts, self.featurizer, self.vocab, augment, self.cache,
                                               self.max_samples)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        sampler = EpochSeededSampler(len(dataset), self.seed) if shuffle else None
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          collate_fn=collate_utterances, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class TimitConfig(OnDiskDataConfig):
    """`data: {name: timit, ...}`: TIMIT (LDC layout) from `root`; `synthesize: true` writes the small
    synthetic corpus there first when `root` is missing or empty."""

    name: Literal["timit"] = "timit"
    batch_size: PositiveInt = 16
    features: Literal["logmel", "mfcc"] = "logmel"
    n_mels: PositiveInt = 40
    n_mfcc: PositiveInt = 13
    deltas: bool = False
    target: Literal["phones", "chars"] = "phones"
    phone_set: Literal[61, 39] = 61
    spec_augment: bool = False
    cache: bool = True
    synthesize: bool = False
    max_audio_seconds: PositiveFloat = DEFAULT_MAX_SECONDS  # longer audio files are refused before reading


@register_data("timit", TimitConfig)
def build_timit(cfg: TimitConfig, seed: int) -> TimitDataModule:
    """The TIMIT datamodule for a run seeded with `seed`."""
    return TimitDataModule(root=cfg.root, features=cfg.features, n_mels=cfg.n_mels, n_mfcc=cfg.n_mfcc,
                           deltas=cfg.deltas, target=cfg.target, phone_set=cfg.phone_set,
                           spec_augment=cfg.spec_augment, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                           cache=cfg.cache, synthesize=cfg.synthesize, seed=seed,
                           max_audio_seconds=cfg.max_audio_seconds)
