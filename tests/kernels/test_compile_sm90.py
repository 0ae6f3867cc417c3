"""The kernels compile for H100 (sm_90) on a machine without a GPU (Triton bundles ptxas)."""
from __future__ import annotations

import pytest

from inqnet.kernels import compile_check


@pytest.mark.slow
def test_representative_kernels_compile_for_sm90() -> None:
    results = compile_check.run(compile_check.representative())
    assert len(results) == len(compile_check.representative())
    for r in results:
        assert r.shared_bytes <= compile_check.H100_SHARED_BYTES, r.name
        if "shift-add" not in r.name and "fp32" not in r.name and not r.name.startswith("gemv"):
            assert r.uses_tensor_cores, r.name  # fp16 / bf16 decode + tl.dot on tensor cores
