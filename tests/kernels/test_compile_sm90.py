"""The kernels compile for H100 (sm_90) on a machine without a GPU (Triton bundles ptxas).

Each compile uses an empty Triton cache, so code generation really runs (a warm cache hid a
failure that only a cold one showed), and one compile follows an interpreted launch in the same
process: Triton's interpreter patches triton.language while it runs, and `_jit` must undo it.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inqnet.kernels import compile_check, ops
from inqnet.kernels.packing import pack_weight
from tests.kernels.quantized_weights import random_quantized


@pytest.fixture()
def cold_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton-cache"))


def _interpret_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """An interpreted gemv with a reduction (tl.sum), as the interpreter tests run."""
    w, n1 = random_quantized((8, 40), 5, seed=1)
    with monkeypatch.context() as m:
        m.setenv("TRITON_INTERPRET", "1")
        y = ops.quant_linear(torch.randn(1, 40), pack_weight(w, 5, n1), None, backend="triton")
    assert y.shape == (1, 8)


def test_interpreted_launch_leaves_triton_language_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    import triton.language as tl

    from inqnet.kernels._jit import _patched_namespaces

    before = [dict(vars(obj)) for obj in _patched_namespaces()]
    _interpret_once(monkeypatch)
    after = [dict(vars(obj)) for obj in _patched_namespaces()]
    for b, a in zip(before, after):
        assert set(a) == set(b)
        assert all(a[k] is b[k] for k in b)
    assert tl.core.where.__name__ == "where"


@pytest.mark.slow
def test_kernels_compile_after_an_interpreted_launch(cold_cache: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _interpret_once(monkeypatch)
    jobs = [job for job in compile_check.representative() if job[1][0] == "gemv"]
    assert len(compile_check.run(jobs)) == len(jobs)


@pytest.mark.slow
def test_representative_kernels_compile_for_sm90(cold_cache: None) -> None:
    results = compile_check.run(compile_check.representative())
    assert len(results) == len(compile_check.representative())
    for r in results:
        assert r.shared_bytes <= compile_check.H100_SHARED_BYTES, r.name
        if "shift-add" not in r.name and "fp32" not in r.name and not r.name.startswith("gemv"):
            assert r.uses_tensor_cores, r.name  # fp16 / bf16 decode + tl.dot on tensor cores
