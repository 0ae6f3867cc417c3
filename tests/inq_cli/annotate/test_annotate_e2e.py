"""`inq annotate` end to end on a tiny GlaS: the files it writes, an audit of every choice, resume
after an interruption, fine-tuning, and network training on the suggestions."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from inqnet.cli.annotate.rounds import AnnotateState, annotate
from inqnet.cli.annotate.fcns import load_fcns
from inqnet.cli.config.load import load_recipe
from inqnet.modules.inq.state import is_fully_quantized
from inqnet.modules.registry import data_entry
from tests.inq_cli.annotate.annotate_fixtures import nt_recipe, tiny_glas, tiny_recipe
from tests.inq_cli.clirunner import REPO, cli_env, run_cli, sigint_delivered
from tests.modules.suggestive.test_suggestive_selection import brute_force_greedy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def glas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_glas(tmp_path_factory.mktemp("glas") / "glas")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, glas: Path) -> tuple[Path, Path, str]:
    """(recipe, run folder, stdout) of one uninterrupted 2-round run with 5-bit INQ FCNs."""
    tmp = tmp_path_factory.mktemp("annotate")
    recipe = tiny_recipe(tmp / "tiny_sa.yaml", glas, tmp / "runs")
    proc = run_cli("annotate", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = (tmp / "runs" / "tiny_sa" / "latest").resolve()
    return recipe, run_dir, proc.stdout


def _in_process(recipe: Path, stop_after: int | None = None):  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()

    def stop(round_: int) -> None:
        if round_ == stop_after:
            raise KeyboardInterrupt

    try:
        return annotate(load_recipe(recipe), recipe.stem, str(recipe), echo=lambda line: None, after_round=stop)
    finally:
        torch.set_num_threads(threads)


def test_run_writes_suggestions_descriptors_and_state(run: tuple[Path, Path, str]) -> None:
    _, run_dir, out = run
    for name in ("resolved.yaml", "suggestions.json", "descriptors_round1.npz", "descriptors_round2.npz",
                 "state.json", "fcns.pt", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert "round 1/2" in out and "round 2/2" in out and "mean pairwise distance" in out
    suggestions = json.loads((run_dir / "suggestions.json").read_text())
    assert [sorted(r) for r in suggestions["rounds"]] == [["candidates", "selected"]] * 2
    state = AnnotateState.load(run_dir)
    assert state.rounds_done == 2 and len(state.initial) == 3
    picked = [i for r in suggestions["rounds"] for i in r["selected"]]
    assert state.annotated == state.initial + picked and len(set(state.annotated)) == 7


def test_every_choice_is_the_brute_force_greedy_max_cover(run: tuple[Path, Path, str]) -> None:
    _, run_dir, _ = run
    suggestions = json.loads((run_dir / "suggestions.json").read_text())
    annotated = set(AnnotateState.load(run_dir).initial)
    pool = {f"train_{n}[{r}:{r + 32},{c}:{c + 32}]" for n in range(1, 5) for r in (0, 32) for c in (0, 32)}
    for r, entry in enumerate(suggestions["rounds"], start=1):
        saved = np.load(run_dir / f"descriptors_round{r}.npz")
        ids = [str(i) for i in saved["ids"]]
        assert set(ids) == pool - annotated  # the unannotated pool of that round, each with its descriptor
        uncertainty = dict(zip(ids, saved["uncertainty"].tolist()))
        top = sorted(ids, key=lambda i: (-uncertainty[i], i))[:3]
        assert list(entry["candidates"]) == top
        assert entry["candidates"] == pytest.approx({i: uncertainty[i] for i in top})
        rows = brute_force_greedy(saved["descriptors"], [ids.index(c) for c in top], 2)
        assert entry["selected"] == [ids[i] for i in rows]
        annotated |= set(entry["selected"])


def test_quantized_suggestive_fcns_are_fully_quantized(run: tuple[Path, Path, str]) -> None:
    recipe, run_dir, _ = run
    round_, fcns = load_fcns(run_dir / "fcns.pt", load_recipe(recipe), {"in_channels": 3})
    assert round_ == 2 and len(fcns) == 2
    assert all(is_fully_quantized(f.module) for f in fcns)
    assert not any("_inq_" in k for f in fcns for k in f.float_state)


def test_interrupted_run_resumes_at_the_next_round(run: tuple[Path, Path, str], glas: Path, tmp_path: Path) -> None:
    _, full_dir, _ = run
    moved = tiny_recipe(tmp_path / "tiny_sa.yaml", glas, tmp_path / "runs")  # the same recipe, another output_dir
    with pytest.raises(KeyboardInterrupt):
        _in_process(moved, stop_after=1)
    (run_dir,) = [p for p in (tmp_path / "runs" / moved.stem).iterdir() if p.name != "latest"]
    assert AnnotateState.load(run_dir).rounds_done == 1
    first = json.loads((run_dir / "suggestions.json").read_text())
    assert len(first["rounds"]) == 1

    bad = run_cli("annotate", str(moved), "model.width=8", "--resume", str(run_dir))
    assert bad.returncode == 2 and "different model.width" in bad.stderr
    proc = run_cli("annotate", str(moved), "--resume", str(run_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming" in proc.stdout and "round 2/2" in proc.stdout and "round 1/2" not in proc.stdout
    resumed = json.loads((run_dir / "suggestions.json").read_text())
    assert resumed["rounds"][0] == first["rounds"][0]
    assert AnnotateState.load(run_dir).rounds_done == 2
    # the same seeds give the same FCNs: the resumed run chooses what the uninterrupted one chose
    assert resumed == json.loads((full_dir / "suggestions.json").read_text())


def test_finetuning_between_rounds(glas: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path / "ft.yaml", glas, tmp_path / "runs", retrain="finetune", finetune_epochs=1)
    proc = run_cli("annotate", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("fine-tuned for round 2") == 2
    run_dir = (tmp_path / "runs" / "ft" / "latest").resolve()
    _, fcns = load_fcns(run_dir / "fcns.pt", load_recipe(recipe), {"in_channels": 3})
    assert all(is_fully_quantized(f.module) for f in fcns)  # INQ's stages ran again after fine-tuning


def test_network_training_on_the_suggestions(run: tuple[Path, Path, str], glas: Path, tmp_path: Path) -> None:
    _, run_dir, _ = run
    recipe = nt_recipe(tmp_path / "nt.yaml", glas, tmp_path / "runs", run_dir / "suggestions.json")
    cfg = load_recipe(recipe)
    datamodule = data_entry("glas").build(cfg.data, 0)
    datamodule.setup("fit")
    assert len(datamodule.inner.datasets["train"].pairs) == 7  # 3 initial + 2 rounds x 2 selected
    assert all(pair[0].shape == (32, 32, 3) for pair in datamodule.inner.datasets["train"].pairs)
    one_round = data_entry("glas").build(load_recipe(recipe, ["data.suggestion_rounds=1",
                                                              "data.initial_annotated=[]"]).data, 0)
    one_round.setup("fit")
    assert len(one_round.inner.datasets["train"].pairs) == 2
    proc = run_cli("train", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (nt_dir,) = (tmp_path / "runs" / "nt").iterdir()
    summary = json.loads((nt_dir / "summary.json").read_text())
    assert "test/f1_dice" in summary["final_metrics"] and "test/f1_dice" in summary["float_metrics"]


def test_ensemble_network_training_on_the_suggestions(run: tuple[Path, Path, str], glas: Path, tmp_path: Path) -> None:
    _, run_dir, _ = run
    recipe = nt_recipe(tmp_path / "nt_ens.yaml", glas, tmp_path / "runs", run_dir / "suggestions.json")
    proc = run_cli("train", str(recipe), "ensemble.members=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (nt_dir,) = (tmp_path / "runs" / "nt_ens").iterdir()
    final = json.loads((nt_dir / "summary.json").read_text())["final_metrics"]
    assert {"test/f1_dice", "test/member0/f1_dice", "test/member1/f1_dice"} <= set(final)


def test_ctrl_c_during_retraining_then_resume(glas: Path, tmp_path: Path) -> None:
    """SIGINT while the FCNs retrain after round 1: exit 130, the state says round 1; --resume does round 2."""
    recipe = tiny_recipe(tmp_path / "sigint.yaml", glas, tmp_path / "runs")
    # Retraining long enough (seconds, on a fast CPU too) for the signal to land in it.
    slow = ["trainer.max_epochs=100"]
    proc = subprocess.Popen([sys.executable, "-m", "inqnet.cli.app", "annotate", str(recipe), *slow], cwd=REPO,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_delivered)
    state = tmp_path / "runs" / "sigint" / "latest" / "state.json"
    start = time.monotonic()
    seen = None
    while time.monotonic() < start + 600 and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["rounds_done"] == 1:
            seen = time.monotonic() - start
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic() - start
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (f"round 1 seen after {seen} s, signal sent after {sent:.1f} s", out, err[-2000:])
    assert "interrupted after round 1 of 2" in out and "--resume" in out
    run_dir = state.parent.resolve()
    assert AnnotateState.load(run_dir).rounds_done == 1
    resumed = run_cli("annotate", str(recipe), *slow, "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "round 2/2" in resumed.stdout and "round 1/2" not in resumed.stdout
    assert len(json.loads((run_dir / "suggestions.json").read_text())["rounds"]) == 2
