"""The benchmark's bookkeeping: problems, bandwidth, goals and the Markdown table."""
from __future__ import annotations

import pytest

from inqnet.kernels import bench


def _result(rows):
    return bench.BenchResult("NVIDIA H100 80GB HBM3", "cuda", 4, "torch.bfloat16", "cuda-graph",
                             3350.0, "x", "y", "2025-01-01T00:00:00+00:00", rows)


def _row(m, kernel, speedup, share, op="linear"):
    return bench.Row("vgg16", "fc6", op, 4096, 25088, m, kernel, 10.0, 1, 1.0, share, speedup,
                     0.0)


def test_problem_set_covers_shapes_and_m() -> None:
    ps = bench.problems()
    assert {p.m for p in ps} == set(bench.M_VALUES)
    assert {(p.layer, p.n, p.k) for p in ps if p.op == "linear" and p.family == "vgg16"} == {
        ("fc6", 4096, 25088), ("fc7", 4096, 4096), ("fc8", 1000, 4096)}
    assert sum(p.op == "conv2d" for p in ps) == len(bench.VGG16_CONV) * 4
    assert bench.peak_bandwidth("NVIDIA H200") == 4800.0
    assert bench.peak_bandwidth("NVIDIA H100 80GB HBM3") == 3350.0
    assert bench.peak_bandwidth("Some GPU") is None


def test_goals_follow_the_issue() -> None:
    rows = [_row(1, "auto", 3.2, 0.80), _row(1, "gemv", 9.0, 0.99), _row(16, "auto", 2.4, 0.5),
            _row(128, "auto", 0.95, 0.2), _row(1024, "auto", 0.85, 0.1),
            _row(1, "auto", 3.5, 0.7), _row(1, "dense_bf16", None, 0.9)]
    result = _result(rows)
    result.goals = bench.evaluate_goals(result)
    assert [g["met"] for g in result.goals] == [True, False, True, False, False]
    md = bench.to_markdown(result)
    assert "2 of 5 met" in md and "| vgg16 | fc6 | linear | 4096 | 25088 | 1 | auto |" in md


def test_random_codes_are_valid() -> None:
    from inqnet.kernels.packing import invalid_code_count

    packed = bench.random_packed((7, 40), 5)
    assert invalid_code_count(packed.codes(), 5) == 0


@pytest.mark.slow
def test_gpu_code_path_through_the_interpreter() -> None:
    """The GPU mode's plumbing (every kernel variant, errors, rows) on tiny shapes, on CPU."""
    problem_list = [bench.Problem("tiny", "fc", "linear", 24, 70, 1),
                    bench.Problem("tiny", "fc", "linear", 24, 70, 16),
                    bench.Problem("tiny", "conv", "conv2d", 8, 5, 16)]
    result = bench.run(4, problem_list, all_kernels=True, shift_add=True, mode="interpreter",
                       log=lambda line: None)
    kernels = [(r.layer, r.m, r.kernel) for r in result.rows]
    assert ("fc", 1, "gemv") in kernels and ("fc", 1, "shift_add") in kernels
    assert ("fc", 16, "gemm_split") in kernels and ("conv", 16, "gemm") in kernels
    assert all(r.max_rel_error < 1e-5 for r in result.rows if r.max_rel_error is not None)
    assert all(r.speedup_vs_dense is not None for r in result.rows if r.kernel != "dense_fp32")
