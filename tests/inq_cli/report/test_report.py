"""`inq report`: the paper's tables from run folders (resolved.yaml + Lightning metrics.csv)."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from inqnet.cli.errors import InqError
from inqnet.cli.report.tables import build_tables
from inqnet.cli.run.folder import default_metric, find_run_dirs, load_run

ROOT = Path(__file__).resolve().parents[3]


def make_run(root: Path, name: str, model: str, bits: int | None, members: int, val_acc: list[float],
             extra: dict | None = None) -> Path:
    """A finished run: float when bits is None; per epoch a train row then a validation row."""
    run = root / name
    recipe = {
        "model": {"name": model},
        "data": {"name": "digits"},
        "optimizer": {"name": "sgd", "lr": 0.01},
        "trainer": {"max_epochs": len(val_acc)},
        "seed": 0,
        "output_dir": str(root),
    }
    if bits is not None:
        recipe["inq"] = {"bits": bits, "portions": [0.5, 1.0]}
    if members > 1:
        recipe["ensemble"] = {"members": members}
    recipe.update(extra or {})
    run.mkdir(parents=True)
    (run / "resolved.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    log = run / "logs" / "version_0"
    log.mkdir(parents=True)
    with (log / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "step", "train_loss", "val_acc", "val_loss"])
        for epoch, acc in enumerate(val_acc):
            writer.writerow([epoch, epoch * 10 + 9, 1.0 / (epoch + 1), "", ""])
            writer.writerow([epoch, epoch * 10 + 9, "", acc, 1.0 - acc])
    return run


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    """VGG-like sweep as in the paper's Tables 5-6, with a repeat, plus a small model as in Table 7."""
    root = tmp_path / "runs"
    make_run(root, "float", "vgg16", None, 1, [0.60, 0.6929])
    make_run(root, "b2", "vgg16", 2, 1, [0.40, 0.4261])
    make_run(root, "b4", "vgg16", 4, 1, [0.60, 0.6770])
    make_run(root, "b8", "vgg16", 8, 1, [0.70, 0.7048])
    make_run(root, "b8-repeat", "vgg16", 8, 1, [0.69, 0.6990])  # a weaker repeat: best is kept
    make_run(root, "float-x2", "vgg16", None, 2, [0.70, 0.7018])
    make_run(root, "float-x3", "vgg16", None, 3, [0.70, 0.7010])
    make_run(root, "b8-x2", "vgg16", 8, 2, [0.70, 0.7010])
    make_run(root, "b4-x2", "vgg16", 4, 2, [0.70, 0.6905])
    make_run(root, "small-float", "vgg5", None, 1, [0.64, 0.6414])
    make_run(root, "small-b4", "vgg5", 4, 1, [0.64, 0.6412])
    return root


def test_tables_from_fixture_runs(runs: Path) -> None:
    records = [load_run(p) for p in find_run_dirs([runs])]
    assert len(records) == 11
    assert {default_metric(r) for r in records} == {"val_acc"}
    bits, parallel = build_tables(records, ["val_acc"])
    assert bits.columns == ["Original", "2 bits", "4 bits", "8 bits"]
    assert bits.rows == [
        ("vgg16", [0.6929, 0.4261, 0.6770, 0.7048]),
        ("vgg16 + 2 parallel", [0.7018, None, 0.6905, 0.7010]),
        ("vgg5", [0.6414, None, 0.6412, None]),
    ]
    assert parallel.columns == ["Original", "2", "3"]
    assert parallel.rows == [
        ("vgg16", [0.6929, 0.7018, 0.7010]),
        ("vgg16 with 4 bits", [0.6929, 0.6905, None]),
        ("vgg16 with 8 bits", [0.6929, 0.7010, None]),
    ]


def test_repeats_mean_and_best_pick(runs: Path) -> None:
    records = [load_run(p) for p in find_run_dirs([runs])]
    bits, _ = build_tables(records, ["val_acc"], repeats="mean")
    assert bits.rows[0][1][3] == pytest.approx((0.7048 + 0.6990) / 2)
    bits, _ = build_tables(records, ["val_loss"], pick="best")
    # val_loss = 1 - acc, lower is better: the best of each run is its last epoch here.
    assert bits.rows[0][1][0] == pytest.approx(1 - 0.6929)
    assert bits.rows[0][1][3] == pytest.approx(1 - 0.7048)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "inqnet.cli.app", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_report_cli_writes_markdown_csv_and_png(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = _cli("report", str(runs), "--percent", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    assert "Table 1. val_acc by quantization bit width (%)." in md
    assert "| Configurations | Original | 2 bits | 4 bits | 8 bits |" in md
    assert "| vgg16 | 69.29 | 42.61 | 67.70 | 70.48 |" in md
    assert "| vgg5 | 64.14 | - | 64.12 | - |" in md
    assert "Table 2. val_acc by parallel number (ensemble members) (%)." in md
    assert "| vgg16 with 8 bits | 69.29 | 70.10 | - |" in md
    with (out / "val_acc_by_bits.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Configurations", "Original", "2 bits", "4 bits", "8 bits"]
    assert rows[2] == ["vgg16 + 2 parallel", "70.1800", "", "69.0500", "70.1000"]
    with (out / "val_acc_by_parallel.csv").open() as handle:
        assert list(csv.reader(handle))[1] == ["vgg16", "69.2900", "70.1800", "70.1000"]
    with Image.open(out / "val_acc_by_bits.png") as image:
        assert image.format == "PNG" and image.size[0] > 300
    assert not (out / "val_acc_by_parallel.png").exists()


def test_label_keys_split_configurations(runs: Path) -> None:
    make_run(runs, "other-data", "vgg16", 2, 1, [0.5], extra={"data": {"name": "imagenet"}})
    records = [load_run(p) for p in find_run_dirs([runs])]
    bits, _ = build_tables(records, ["val_acc"], label_keys=["data.name"])
    labels = [label for label, _ in bits.rows]
    assert "vgg16 (name=imagenet)" in labels and "vgg16 (name=digits)" in labels


def test_bad_inputs_are_one_line_errors(tmp_path: Path, runs: Path) -> None:
    with pytest.raises(InqError, match="no such run folder"):
        find_run_dirs([tmp_path / "missing"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "resolved.yaml").write_text("model: [unclosed\n")
    with pytest.raises(InqError, match="resolved.yaml: unreadable"):
        load_run(broken)
    proc = _cli("report", str(runs), "--metric", "val_f1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --metric val_f1: no run logged it") and "Traceback" not in proc.stderr
    single = tmp_path / "single"
    make_run(single, "only", "vgg16", None, 1, [0.5])
    proc = _cli("report", str(single), "--out", str(tmp_path / "r2"), cwd=tmp_path)
    assert proc.returncode == 2 and "give no table" in proc.stderr
    assert not (tmp_path / "r2").exists()
