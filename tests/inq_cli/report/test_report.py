"""`inq report`: tables that never pool configurations, mean ± sd with n, best only on validation and
only among fully quantized epochs, float controls with paired differences, identical weights marked."""
from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import pytest
from PIL import Image

from inqnet.cli.errors import InqError
from inqnet.cli.report.outputs import choose_digits, report_markdown
from inqnet.cli.report.picks import is_rate_metric, logged_values, run_value
from inqnet.cli.report.tables import CONTROL, build_tables
from inqnet.cli.report.weights import quantized_weights_hash, weights_hasher
from inqnet.cli.run.folder import find_run_dirs, load_run
from tests.inq_cli.report.fakeruns import write_run


def records(root: Path) -> list:
    return [load_run(p) for p in find_run_dirs([root])]


def test_runs_that_differ_in_anything_but_bits_seed_and_paths_are_separate_rows(tmp_path: Path) -> None:
    for seed in (0, 1):
        for bits in (4, 5):
            write_run(tmp_path / f"w1-b{bits}-s{seed}", [0.5, 0.6, 0.7, 0.80 + seed / 100], bits=bits, seed=seed)
    write_run(tmp_path / "w05-b4", [0.5, 0.6, 0.7, 0.60], bits=4, model__width=0.5)
    write_run(tmp_path / "long-b4", [0.5, 0.6, 0.7, 0.90, 0.91], bits=4, trainer__max_epochs=5,
              frozen=[0, 0, 0.5, 1, 1])
    (table,) = build_tables(records(tmp_path), ["val/acc"])
    labels = [row.label for row in table.rows]
    assert labels == ["vgg (model.width=0.5, trainer.max_epochs=4)", "vgg (model.width=1.0, trainer.max_epochs=4)",
                      "vgg (model.width=1.0, trainer.max_epochs=5)"]
    pooled = table.rows[1].cells[-2]  # 4 bits, seeds 0 and 1: mean ± sd with n
    assert pooled.n == 2 and pooled.center == pytest.approx(0.805)
    assert pooled.spread == pytest.approx(statistics.stdev([0.80, 0.81]))
    assert table.rows[0].cells[-2].n == 1 and table.rows[0].cells[-2].center == pytest.approx(0.60)
    text = report_markdown([table])
    assert "| vgg (model.width=1.0, trainer.max_epochs=4) | - | 80.50 ± 0.71 (n=2) | 80.50 ± 0.71 (n=2) |" in text


def test_best_is_taken_among_fully_quantized_epochs_only(tmp_path: Path) -> None:
    # The float epochs reach 0.99; the 2-bit model never does.
    inq = write_run(tmp_path / "b2", [0.95, 0.99, 0.60, 0.70], bits=2)
    run = load_run(inq)
    assert run_value(run, "val/acc", "best") == pytest.approx(0.70)
    assert run_value(run, "val/acc", "last") == pytest.approx(0.70)
    assert [i.frozen for i in logged_values(run, "val/acc")] == [None, None, 0.5, 1.0]
    # A control is compared over the same epochs as the INQ runs it controls.
    write_run(tmp_path / "control", [0.95, 0.99, 0.80, 0.82], control=True)
    (table, _) = build_tables(records(tmp_path), ["val/acc"], pick="best")
    assert table.columns[0] == CONTROL
    assert table.rows[0].cells[0].center == pytest.approx(0.82)
    assert table.rows[0].cells[-1].center == pytest.approx(0.70)
    # Without the frozen fraction in its CSV, an INQ run's best is its final (fully quantized) model.
    blind = load_run(write_run(tmp_path / "blind", [0.95, 0.99, 0.6, 0.65], bits=3, log_frozen=False))
    assert run_value(blind, "val/acc", "best") == pytest.approx(0.65)


def test_frozen_fraction_logged_at_epoch_end_counts_for_that_epoch(tmp_path: Path) -> None:
    run = write_run(tmp_path / "tracker", [0.5], bits=4)
    (run / "metrics.csv").write_text(  # InqTracker: the epoch's fraction in the train row after validation
        "epoch,step,val/acc,inq/frozen_fraction\n0,9,0.90,\n0,9,,0.5\n1,19,0.95,\n1,19,,1.0\n2,29,0.93,\n2,29,,1.0\n")
    record = load_run(run)
    assert [i.frozen for i in logged_values(record, "val/acc")] == [0.5, 1.0, 1.0]
    assert run_value(record, "val/acc", "best") == pytest.approx(0.95)


def test_best_only_on_validation_metrics(tmp_path: Path, call_main) -> None:
    for seed in (0, 1):
        write_run(tmp_path / "runs" / f"b4-{seed}", [0.5, 0.6, 0.7, 0.8], bits=4, seed=seed, test=0.7 + seed / 10)
    out = tmp_path / "out"
    for option in ("--repeats", "--pick"):
        result = call_main("report", str(tmp_path / "runs"), "--metric", "test/acc", option, "best", "--out", str(out))
        assert result.code == 2
        assert result.err.strip().splitlines() == [
            f"error: {option} best: selects on test/acc, which is not a validation metric "
            "(choose on val/..., or use last / mean)"]
        assert not out.exists()
    ok = call_main("report", str(tmp_path / "runs"), "--metric", "test/acc", "--out", str(out))
    assert ok.code == 0 and "75.00 ± 7.07 (n=2)" in ok.out


def test_without_controls_the_float_start_is_shown_with_its_epochs_and_no_difference(tmp_path: Path) -> None:
    for seed in (0, 1):
        for bits in (3, 4):
            write_run(tmp_path / f"b{bits}-{seed}", [0.5, 0.6, 0.7, 0.8], bits=bits, seed=seed,
                      float_val=0.90 + seed / 50)
    write_run(tmp_path / "float", [0.5, 0.95], bits=None)
    tables = build_tables(records(tmp_path), ["val/acc"])
    assert [t.axis for t in tables] == ["bits"]  # no difference table
    (table,) = tables
    assert table.columns == ["float start (2 epochs)", "3 bits", "4 bits"]
    start = table.rows[0].cells[0]
    assert start.n == 2 and start.center == pytest.approx(0.91)  # per seed, not once per bit width
    assert any("1 float run(s) (inq.enabled: false) are not in this table" in n for n in table.notes)


def test_percent_for_rates_and_enough_decimals_to_tell_cells_apart(tmp_path: Path) -> None:
    for bits, acc in ((4, 0.98601), (5, 0.98604), (6, 0.99)):
        write_run(tmp_path / f"b{bits}", [0.5, 0.6, 0.7, acc], bits=bits)
    tables = build_tables(records(tmp_path), ["val/acc", "val/loss"])
    acc, loss = tables
    assert acc.percent and not loss.percent
    assert choose_digits(acc) == 3
    text = report_markdown([acc])
    assert "val/acc (%)" in text and "| 98.601 (n=1) | 98.604 (n=1) | 99.000 (n=1) |" in text
    assert "val/loss by quantization bit width" in report_markdown([loss])
    for name in ("val/acc", "test/f1_dice", "val/top1_error", "test/per", "val/wer", "val/member0/acc"):
        assert is_rate_metric(name), name
    for name in ("val/loss", "test/object_hausdorff", "inq/compression_ratio"):
        assert not is_rate_metric(name), name


def test_controls_give_the_equal_budget_column_and_paired_differences(tmp_path: Path) -> None:
    inq, control = [0.90, 0.92, 0.97], [0.91, 0.90, 0.95]
    for seed in range(3):
        write_run(tmp_path / f"b4-{seed}", [0.5, 0.6, 0.7, inq[seed]], bits=4, seed=seed, float_val=0.8)
        write_run(tmp_path / f"b4-{seed}" / "control", [0.5, 0.6, 0.7, control[seed]], bits=4, seed=seed,
                  control=True)  # as `inq train --control` places it
    write_run(tmp_path / "b5-0", [0.5, 0.6, 0.7, 0.93], bits=5, seed=0)
    table, diff = build_tables(records(tmp_path), ["val/acc"])
    assert table.columns == [CONTROL, "4 bits", "5 bits"] and len(table.rows) == 1
    assert table.rows[0].cells[0].center == pytest.approx(statistics.fmean(control))
    diffs = [a - b for a, b in zip(inq, control)]
    half = 4.302652729911275 * statistics.stdev(diffs) / math.sqrt(3)  # t(0.975, 2 dof)
    cell = diff.rows[0].cells[0]
    assert cell.n == 3 and cell.center == pytest.approx(0.01)
    assert (cell.low, cell.high) == (pytest.approx(0.01 - half), pytest.approx(0.01 + half))
    assert diff.rows[0].cells[1].n == 1 and diff.rows[0].cells[1].low is None  # one pair: no interval
    text = report_markdown([table, diff])
    assert f"+1.00 [{(0.01 - half) * 100:+.2f}, {(0.01 + half) * 100:+.2f}] (n=3)" in text
    assert "+2.00 (n=1, no interval)" in text


def _checkpoint(run: Path, weight: list[float], bits: int, bias: float = 0.0) -> None:
    import torch

    state = {"fc.weight": torch.tensor([weight]), "fc.bias": torch.tensor([bias]),
             "fc.weight_inq_mask": torch.ones(1, len(weight), dtype=torch.bool),
             "fc.weight_inq_n1": torch.tensor(0), "fc.weight_inq_bits": torch.tensor(bits)}
    torch.save({"state_dict": state, "epoch": 3}, run / "last.ckpt")


def test_bit_widths_with_identical_final_weights_are_marked(tmp_path: Path) -> None:
    for seed in (0, 1):
        for bits in (6, 7, 8, 9):
            run = write_run(tmp_path / f"b{bits}-{seed}", [0.5, 0.6, 0.7, 0.9], bits=bits, seed=seed)
            weight = [0.5, -0.25] if bits == 6 else [0.5, -0.125]
            if bits == 9 and seed == 1:
                weight = [0.5, -0.0625]
            _checkpoint(run, weight, bits, bias=0.01 * bits)  # float biases do not count
    (table,) = build_tables(records(tmp_path), ["val/acc"], hashes=weights_hasher())
    cells = table.rows[0].cells[-4:]
    assert [c.same for c in cells] == [None, (0, 2), (2, 2), (1, 2)]
    row = report_markdown([table]).splitlines()[4]
    assert row.endswith("| 90.00 ± 0.00 (n=2) | 90.00 ± 0.00 (n=2) = | 90.00 ± 0.00 (n=2) =1/2 |")
    assert any(n.startswith("=: the final quantized weights are bit-identical") for n in table.notes)
    (plain,) = build_tables(records(tmp_path), ["val/acc"])  # without hashes nothing is marked
    assert all(c is None or c.same is None for c in plain.rows[0].cells)


def test_weights_hash_covers_quantized_tensors_only() -> None:
    import torch

    base = {"a.weight": torch.tensor([1.0, 0.5]), "a.weight_inq_mask": torch.ones(2, dtype=torch.bool),
            "a.bias": torch.tensor([0.1])}
    same = {**base, "a.bias": torch.tensor([0.2])}
    other = {**base, "a.weight": torch.tensor([1.0, 0.25])}
    assert quantized_weights_hash(base) == quantized_weights_hash(same)
    assert quantized_weights_hash(base) != quantized_weights_hash(other)
    assert quantized_weights_hash({"a.weight": torch.tensor([1.0])}) is None


def test_ensemble_table_shows_members_mean_best_member_and_ensemble(tmp_path: Path) -> None:
    write_run(tmp_path / "single", [0.5, 0.6, 0.7, 0.86], bits=4)
    write_run(tmp_path / "ens", [0.5, 0.6, 0.7, 0.88], bits=4,
              members=[[0.5, 0.6, 0.7, 0.85], [0.5, 0.6, 0.7, 0.83]])
    tables = build_tables(records(tmp_path), ["val/acc"])
    parallel = tables[-1]
    assert parallel.columns == ["single model", "2: members' mean", "2: best member", "2: ensemble"]
    (row,) = parallel.rows
    assert row.label == "vgg, 4 bits"
    assert [c.center for c in row.cells] == [pytest.approx(v) for v in (0.86, 0.84, 0.85, 0.88)]


def test_report_cli_writes_markdown_csv_and_png(tmp_path: Path, call_main) -> None:
    for seed in (0, 1):
        for bits in (3, 4):
            write_run(tmp_path / "runs" / f"b{bits}-{seed}", [0.5, 0.6, 0.7, 0.8 + bits / 100], bits=bits,
                      seed=seed, float_val=0.9)
            write_run(tmp_path / "runs" / f"b{bits}-{seed}" / "control", [0.5, 0.6, 0.7, 0.85], seed=seed,
                      control=True)
    out = tmp_path / "report"
    result = call_main("report", str(tmp_path / "runs"), "--out", str(out))
    assert result.code == 0, result.err
    md = (out / "report.md").read_text()
    assert "Table 1. val/acc (%) by quantization bit width, mean ± sd over n seeds." in md
    assert "| Configurations | float (equal budget) | 3 bits | 4 bits |" in md
    assert "| vgg | 85.00 ± 0.00 (n=2) | 83.00 ± 0.00 (n=2) | 84.00 ± 0.00 (n=2) |" in md
    assert "Table 2. val/acc INQ − float (equal budget) (percentage points), paired by seed" in md
    with (out / "val_acc_by_bits.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:5] == ["Configurations", CONTROL, f"{CONTROL} sd", f"{CONTROL} n", f"{CONTROL} same weights"]
    assert rows[1][:4] == ["vgg", "85.000000", "0.000000", "2"]
    with (out / "val_acc_by_bits_vs_control.csv").open() as handle:
        assert list(csv.reader(handle))[1][:5] == ["vgg", "-2.000000", "-2.000000", "-2.000000", "2"]
    with Image.open(out / "val_acc_by_bits.png") as image:
        assert image.format == "PNG" and image.size[0] > 300
    raw = call_main("report", str(tmp_path / "runs"), "--fraction", "--digits", "3", "--out", str(out))
    assert raw.code == 0 and "| vgg | 0.850 ± 0.000 (n=2) |" in raw.out


def test_bad_inputs_are_one_line_errors(tmp_path: Path, call_main) -> None:
    with pytest.raises(InqError, match="no such run folder"):
        find_run_dirs([tmp_path / "missing"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "resolved.yaml").write_text("model: [unclosed\n")
    with pytest.raises(InqError, match="resolved.yaml: unreadable"):
        load_run(broken)
    runs = tmp_path / "runs"
    write_run(runs / "b4", [0.5, 0.6, 0.7, 0.8], bits=4)
    result = call_main("report", str(runs), "--metric", "val_f1")
    assert result.code == 2 and result.err.startswith("error: --metric val_f1: no run logged it")
    assert "Traceback" not in result.err
    result = call_main("report", str(runs), "--repeats", "median")
    assert result.code == 2 and "--repeats 'median': expected one of mean, best" in result.err
    single = tmp_path / "single"
    write_run(single / "only", [0.5, 0.6], bits=None)
    result = call_main("report", str(single), "--out", str(tmp_path / "r2"))
    assert result.code == 2 and "give no table" in result.err
    assert not (tmp_path / "r2").exists()
    (runs / "b4" / "summary.json").write_text("{broken")
    result = call_main("report", str(runs), "--out", str(tmp_path / "r3"))
    assert result.code == 2 and "summary.json: unreadable" in result.err and not (tmp_path / "r3").exists()
