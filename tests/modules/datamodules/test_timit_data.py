"""TIMIT loader on corpora written in the LDC layout: splits, transcripts, features, bad files."""
from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path

import pytest
import torch

from inqnet.modules.tasks.ctc_decoding import beam_search_decode, greedy_decode
from inqnet.modules.datamodules.synth_timit import write_synthetic_timit
from inqnet.modules.datamodules.timit import TimitDataModule, Vocabulary
from inqnet.modules.datamodules.timit_corpus import read_phn, read_txt, read_wrd, scan_timit, split_timit
from inqnet.modules.datamodules.timit_phones import (CORE_TEST_SPEAKERS, DEV_SPEAKERS, FOLD_61_TO_39, PHONES_39,
                                              fold_phones)
from inqnet.modules.errors import DataError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_timit(tmp_path_factory.mktemp("timit"), train_speakers=3, dev_speakers=2,
                                 test_speakers=2, utterances_per_speaker=2, seed=1)


def copy_corpus(corpus: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(corpus, tmp_path / "timit"))


def test_layout_and_standard_split(corpus: Path) -> None:
    wavs = sorted(corpus.glob("*/DR*/*/*.WAV"))
    assert any(w.stem == "SA1" for w in wavs)  # written, but must be skipped
    utterances = scan_timit(corpus)
    assert all(not u.name.startswith("sa") for u in utterances)
    splits = split_timit(utterances, corpus)
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [6, 4, 4]
    assert {u.speaker for u in splits["test"]} <= CORE_TEST_SPEAKERS
    assert {u.speaker for u in splits["dev"]} <= DEV_SPEAKERS
    assert all(u.part == "TRAIN" for u in splits["train"])
    for u in utterances:  # transcripts agree with each other and with the audio
        phn, wrd = read_phn(u.sibling(".PHN")), read_wrd(u.sibling(".WRD"))
        assert phn[0][2] == "h#" and phn[-1][2] == "h#"
        assert [w for _, _, w in wrd] == read_txt(u.sibling(".TXT")).rstrip(".").lower().split()
        assert all(a[1] == b[0] for a, b in zip(phn, phn[1:]))


def test_lower_case_copy_is_found(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "lower"
    for path in corpus.rglob("*"):
        if path.is_file():
            target = root / path.relative_to(corpus).as_posix().lower()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    assert len(scan_timit(root)) == len(scan_timit(corpus))


def test_speakers_outside_the_standard_lists_are_an_error(corpus: Path, tmp_path: Path) -> None:
    root = copy_corpus(corpus, tmp_path)
    for speaker_dir in root.glob("TEST/DR*/*"):
        if speaker_dir.name.lower() in CORE_TEST_SPEAKERS:
            shutil.rmtree(speaker_dir)
    with pytest.raises(DataError, match="empty test split.*core-test"):
        split_timit(scan_timit(root), root)


def test_missing_root_and_part(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan_timit(tmp_path / "nope")
    (tmp_path / "TRAIN").mkdir()
    with pytest.raises(DataError, match="no TEST folder"):
        scan_timit(tmp_path)


@pytest.mark.parametrize(("line", "message"), [("0 100", "line 2: expected 'start end label'"),
                                               ("0 x1 h#", "line 2: expected"),
                                               ("100 50 h#", "line 2: bad sample range"),
                                               ("0 100 zz", "line 2: unknown phone 'zz'")])
def test_bad_phn_lines(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "SI1.PHN"
    path.write_text(f"0 10 h#\n{line}\n")
    with pytest.raises(DataError) as info:
        read_phn(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_bad_phn_surfaces_from_the_datamodule(corpus: Path, tmp_path: Path) -> None:
    root = copy_corpus(corpus, tmp_path)
    victim = sorted(root.glob("TRAIN/DR*/*/SI*.PHN"))[0]
    victim.write_text(victim.read_text() + "garbage line here\n")
    dm = TimitDataModule(root)
    with pytest.raises(DataError, match=victim.name):
        dm.setup("fit")


def test_folding_is_lee_and_hon() -> None:
    assert len(PHONES_39) == 39 and FOLD_61_TO_39["q"] is None
    assert fold_phones(["h#", "q", "bcl", "b", "ix", "zh", "pau", "h#"]) == ["sil", "b", "ih", "sh", "sil"]
    assert {FOLD_61_TO_39[p] for p in ("ao", "ax-h", "axr", "hv", "el", "em", "nx", "eng", "ux")} == {
        "aa", "ah", "er", "hh", "l", "m", "n", "ng", "uw"}


@pytest.mark.parametrize(("features", "target", "dims"), [("logmel", "phones", 40), ("mfcc", "chars", 39)])
def test_batches(corpus: Path, features: str, target: str, dims: int) -> None:
    dm = TimitDataModule(corpus, features=features, deltas=features == "mfcc", target=target, batch_size=3,
                         spec_augment=True)
    dm.setup("fit")
    assert dm.n_features == dims
    batch = next(iter(dm.train_dataloader()))
    assert batch["features"].shape[0] == 3 and batch["features"].shape[2] == dims
    assert int(batch["target_lengths"].sum()) == batch["targets"].numel()
    assert batch["targets"].min() >= 1 and batch["targets"].max() < dm.num_classes
    first = dm.datasets["dev"][0]
    assert torch.allclose(first["features"].mean(0), torch.zeros(dims), atol=1e-4)  # per-utterance norm
    frames = first["features"].shape[0]
    samples = int(read_phn(dm.datasets["dev"].utterances[0].sibling(".PHN"))[-1][1])
    assert frames == samples // 160 + 1


def test_vocabulary_roundtrip() -> None:
    vocab = Vocabulary("phones", "61")
    ids = vocab.encode(["h#", "sh", "iy", "q"]).tolist()
    assert 0 not in ids and vocab.decode(ids) == ["h#", "sh", "iy", "q"]
    assert vocab.scoring_units(["h#", "sh", "iy", "q", "pau"]) == ["sil", "sh", "iy", "sil"]
    chars = Vocabulary("chars")
    assert chars.scoring_units(list("she had")) == ["she", "had"]


def test_greedy_and_beam_decoding() -> None:
    lp = torch.log(torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1],
                                 [0.1, 0.1, 0.8]]))
    assert greedy_decode(lp) == [1, 1, 2]
    assert greedy_decode(lp, length=2) == [1]
    # beam search finds the most probable labelling; check it against brute force on random posteriors
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        lp = torch.randn(5, 3, generator=gen).mul(2).log_softmax(-1)
        totals: dict[tuple[int, ...], float] = {}
        for path in itertools.product(range(3), repeat=5):
            label = tuple(greedy_decode(torch.eye(3)[list(path)].log()))
            totals[label] = totals.get(label, 0.0) + math.exp(sum(float(lp[t, s]) for t, s in enumerate(path)))
        best = max(totals, key=totals.get)
        assert tuple(beam_search_decode(lp, beam_width=50, prune=-1e9)) == best
