"""The quickstart end to end through the real CLI (tiny epochs): train, verify, eval."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from inqnet.cli.config.load import validate_recipe
from tests.inq_cli.clirunner import run_cli

pytestmark = pytest.mark.slow
TINY = ["inq.float_epochs=1", "inq.epochs_per_stage=1", "trainer.enable_progress_bar=False"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs")
    proc = run_cli("train", "recipes/quickstart.yaml", f"output_dir={out}", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "INQ 5-bit" in proc.stdout and "weight memory" in proc.stdout
    # without --control each column says its budget, and nothing compares unequal budgets
    assert "float start (1 epoch)" in proc.stdout and "INQ 5-bit (5 epochs)" in proc.stdout
    assert "change" not in proc.stdout
    (run_dir,) = (out / "quickstart").iterdir()
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def test_run_folder_layout(run: tuple[Path, dict]) -> None:
    run_dir, summary = run
    for name in ("resolved.yaml", "last.ckpt", "best.ckpt", "float.ckpt", "metrics.csv", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert summary["run_dir"] == str(run_dir)
    with (run_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert "val/acc" in rows[0] and sum(1 for r in rows if r.get("val/acc")) == 5  # one per epoch
    last = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 4  # `last` is the final epoch, whether or not it was the best


def test_resolved_recipe_is_saved_and_travels_in_the_checkpoint(run: tuple[Path, dict]) -> None:
    run_dir, _ = run
    resolved = yaml.safe_load((run_dir / "resolved.yaml").read_text())
    assert resolved["inq"]["float_epochs"] == 1 and resolved["trainer"]["max_epochs"] == 5
    validate_recipe(resolved, "resolved.yaml")
    ckpt = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["recipe"] == resolved


def test_summary_reports_float_and_quantized_model(run: tuple[Path, dict]) -> None:
    _, summary = run
    assert summary["inq"]["bits"] == [5]
    assert summary["inq"]["quantized_fraction"] == 1.0
    assert summary["inq"]["memory_reduction_quantized"] == pytest.approx(32 / 5)
    assert 1.0 < summary["inq"]["memory_reduction_model"] < 32 / 5
    for metrics in (summary["float_metrics"], summary["final_metrics"]):
        assert 0.0 <= metrics["val/acc"] <= 1.0 and 0.0 <= metrics["test/acc"] <= 1.0
    assert summary["final_metrics"]["val/acc"] > 0.5  # far above chance (0.1) even after 5 epochs
    shares = summary["inq"]["zero_shares"]  # per quantized layer, fixed with its n1
    assert shares and all(0.0 <= v <= 0.5 for v in shares.values()) and "net.classifier.3.weight" in shares


def test_verify_passes_on_the_final_checkpoint(run: tuple[Path, dict]) -> None:
    run_dir, _ = run
    proc = run_cli("verify", str(run_dir / "last.ckpt"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "net.features.0" in proc.stdout and "FAIL" not in proc.stdout


def test_eval_json_matches_the_training_summary(run: tuple[Path, dict]) -> None:
    run_dir, summary = run
    proc = run_cli("eval", str(run_dir / "last.ckpt"), "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["split"] == "test"
    assert payload["metrics"]["test/acc"] == pytest.approx(summary["final_metrics"]["test/acc"], abs=1e-6)


def test_eval_float_checkpoint_matches_float_baseline(run: tuple[Path, dict], call_main) -> None:  # type: ignore[no-untyped-def]
    run_dir, summary = run
    result = call_main("eval", str(run_dir / "float.ckpt"), "--split", "val", "--json", "data.batch_size=64")
    assert result.code == 0, result.err
    metrics = json.loads(result.out.strip().splitlines()[-1])["metrics"]
    assert metrics["val/acc"] == pytest.approx(summary["float_metrics"]["val/acc"], abs=1e-6)


def test_verify_fails_when_a_frozen_weight_leaves_p(run: tuple[Path, dict], tmp_path: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    run_dir, _ = run
    ckpt = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)
    key = next(k for k in ckpt["state_dict"] if k.endswith(".weight") and k + "_inq_mask" in ckpt["state_dict"])
    weight = ckpt["state_dict"][key]
    weight.view(-1)[0] = weight.abs().max() * 0.3 + 1e-3  # between powers of two
    torch.save(ckpt, tmp_path / "tampered.ckpt")
    result = call_main("verify", str(tmp_path / "tampered.ckpt"))
    assert result.code == 1
    assert "FAIL" in result.out and key.removesuffix(".weight") in result.err


def test_bad_checkpoints_give_one_line(run: tuple[Path, dict], tmp_path: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    run_dir, _ = run
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((run_dir / "last.ckpt").read_bytes()[:5000])
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    for args, expected in (
        (("eval", str(truncated)), "not a readable checkpoint"),
        (("verify", str(foreign)), "carries no model description"),
        (("eval", str(foreign)), "carries no inq recipe"),
        (("eval", str(run_dir / "last.ckpt"), "model.width=2"), "inq eval only takes data.*, trainer.* and seed"),
    ):
        result = call_main(*args)
        assert result.code == 2, (args, result.err)
        assert result.err.count("\n") == 1 and expected in result.err, result.err


def test_resume_continues_in_the_same_folder(run: tuple[Path, dict], tmp_path: Path) -> None:
    run_dir, summary = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    proc = run_cli("train", "recipes/quickstart.yaml", f"output_dir={tmp_path / 'elsewhere'}", *TINY,
                   "trainer.max_epochs=7", "--resume", str(copy / "last.ckpt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "elsewhere").exists()
    with (copy / "metrics.csv").open() as handle:
        epochs = {int(r["epoch"]) for r in csv.DictReader(handle) if r.get("val/acc")}
    assert epochs == set(range(7))  # the first run's rows are kept, two more epochs appended
    resumed = json.loads((copy / "summary.json").read_text())
    assert resumed["float_metrics"]["val/acc"] == summary["float_metrics"]["val/acc"]
