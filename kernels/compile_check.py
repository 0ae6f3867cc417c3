"""Compile the quantized kernels for a GPU target without a GPU (Triton ships ptxas).

A kernel that runs under the interpreter can still fail to compile (a dot smaller than 16, a
layout the backend rejects, too much shared memory). This builds the cubin for H100 (sm_90)
with the same specialisation a launch would use, so CI on CPU catches those errors.

    python -m inqnet.kernels.compile_check            # a representative set, one line per kernel
    python -m inqnet.kernels.compile_check --all      # every autotune config (slow)
"""
from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass
from typing import Any

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from inqnet.kernels._jit import Kernel
from inqnet.kernels.packing import slice_widths

H100_SHARED_BYTES = 232448  # per-block shared memory limit of sm_90
_FLOAT = {"fp16": "*fp16", "bf16": "*bf16", "fp32": "*fp32"}


@dataclass
class Compiled:
    name: str
    shared_bytes: int
    registers: int
    uses_tensor_cores: bool


def compile_kernel(kernel: Kernel, types: dict[str, str], constexprs: dict[str, Any],
                   num_warps: int, num_stages: int, capability: int = 90,
                   divisible: tuple[str, ...] = (), runtime: dict[str, Any] | None = None) -> Any:
    """Compile `kernel` to a cubin; `types` gives non-constexpr argument types ("*fp16", "i32",
    "fp32"); ints default to i32; `divisible` names arguments specialised as multiples of 16;
    `runtime` holds example values of runtime arguments that the kernel's heuristics read."""
    names = list(inspect.signature(kernel.fn).parameters)
    constexpr_params = {p.name for p in kernel.compiled.params if p.is_constexpr}
    consts = {k: v for k, v in constexprs.items() if k in constexpr_params}
    if kernel.heuristics:
        named = {**(runtime or {}), **constexprs}
        consts.update({k: f(named) for k, f in kernel.heuristics.items()})
    signature = {n: "constexpr" if n in consts else types.get(n, "i32") for n in names}
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in divisible if n in names}
    src = ASTSource(fn=kernel.compiled, signature=signature, constexprs=consts, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", capability, 32),
                          options={"num_warps": num_warps, "num_stages": num_stages})


def _precision(act: str, dot_dtype: object) -> str:
    """What inqnet.kernels.ops passes with torch's default allow_tf32 = False."""
    import torch

    return "ieee" if act == "fp32" and dot_dtype == torch.float32 else "tf32"


def _dec(dtype: object) -> int:
    import torch

    return {torch.float16: 0, torch.bfloat16: 1, torch.float32: 2}[dtype]


def _weight_consts(bits: int) -> dict[str, Any]:
    widths = slice_widths(bits) + (0,) * (3 - len(slice_widths(bits)))
    return {"BITS": bits, "W0": widths[0], "W1": widths[1], "W2": widths[2]}


def _summary(name: str, compiled: Any) -> Compiled:
    ptx = compiled.asm["ptx"]
    return Compiled(name, int(compiled.metadata.shared), int(getattr(compiled, "n_regs", 0) or 0),
                    "mma" in ptx)


def check_linear(kind: str, bits: int, act: str, config: triton.Config, shift_add: bool = False,
                 n: int = 4096, k: int = 4096) -> Compiled:
    """Compile one linear kernel (kind: gemv, gemm_split, gemm) for sm_90."""
    from inqnet.kernels import triton_linear
    from inqnet.kernels.floatbits import decode_plan
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[act]
    atomic = kind != "gemm"
    types = {"X": _FLOAT[act], "Wq": "*i32", "Bias": _FLOAT[act],
             "Out": "*fp32" if atomic else _FLOAT[act], "scale": "fp32"}
    consts: dict[str, Any] = {**_weight_consts(bits), "HAS_BIAS": True, "SHIFT_ADD": shift_add,
                              "ATOMIC": atomic, "stride_xk": 1, "stride_on": 1, **config.kwargs}
    if kind == "gemv":
        kernel = triton_linear.qgemv
        plan = decode_plan(torch.float16 if bits <= 6 else torch.float32, bits, 0)
        consts["EOFF"] = plan.exponent_offset
    else:
        kernel = triton_linear.qgemm_direct if kind == "gemm" else triton_linear.qgemm_split
        plan = decode_plan(dtype, bits, 0)
        consts.update(DEC=_dec(plan.decode_dtype), EOFF=plan.exponent_offset,
                      DOT=_dec(plan.dot_dtype), PRECISION=_precision(act, plan.dot_dtype))
    compiled = compile_kernel(kernel, types, consts, config.num_warps, config.num_stages,
                              divisible=("X", "Wq", "Bias", "Out", "N", "K", "stride_xm",
                                         "stride_om"), runtime={"N": n, "K": k})
    return _summary(f"{kind} b={bits} {act}{' shift-add' if shift_add else ''} {config.kwargs}",
                    compiled)


def check_conv(split: bool, bits: int, act: str, config: triton.Config,
               shift_add: bool = False) -> Compiled:
    """Compile one conv2d kernel (3x3) for sm_90."""
    from inqnet.kernels import triton_conv
    from inqnet.kernels.floatbits import decode_plan
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[act]
    plan = decode_plan(dtype, bits, 0)
    types = {"X": _FLOAT[act], "Wq": "*i32", "Bias": _FLOAT[act],
             "Out": "*fp32" if split else _FLOAT[act], "scale": "fp32"}
    consts = {**_weight_consts(bits), "KH": 3, "KW": 3, "HAS_BIAS": True, "SHIFT_ADD": shift_add,
              "ATOMIC": split, "DEC": _dec(plan.decode_dtype), "EOFF": plan.exponent_offset,
              "DOT": _dec(plan.dot_dtype), "PRECISION": _precision(act, plan.dot_dtype),
              **config.kwargs}
    kernel = triton_conv.qconv2d_split if split else triton_conv.qconv2d_direct
    compiled = compile_kernel(kernel, types, consts, config.num_warps, config.num_stages,
                              divisible=("X", "Wq", "Bias", "Out"))
    name = f"conv{'_split' if split else ''} b={bits} {act}{' shift-add' if shift_add else ''}"
    return _summary(f"{name} {config.kwargs}", compiled)


def _shift_add_config() -> triton.Config:
    from inqnet.kernels.ops import SHIFT_ADD_GEMM_CONFIG

    return triton.Config(dict(SHIFT_ADD_GEMM_CONFIG), num_warps=4, num_stages=2)


def _shift_add_gemv_config() -> triton.Config:
    from inqnet.kernels.ops import SHIFT_ADD_GEMV_CONFIG

    return triton.Config(dict(SHIFT_ADD_GEMV_CONFIG), num_warps=4, num_stages=2)


def representative() -> list[tuple[str, tuple]]:
    """A small set covering every kernel, slice count, decode type and variant."""
    from inqnet.kernels import triton_conv, triton_linear

    gemv = triton_linear.qgemv.configs
    split = triton_linear.qgemm_split.configs
    direct = triton_linear.qgemm_direct.configs
    return [
        ("linear", ("gemv", 4, "bf16", gemv[0])),
        ("linear", ("gemv", 5, "fp16", gemv[-1])),
        ("linear", ("gemv", 9, "fp32", gemv[0])),
        ("linear", ("gemv", 3, "fp16", _shift_add_gemv_config(), True)),
        ("linear", ("gemm_split", 4, "bf16", split[0])),
        ("linear", ("gemm_split", 7, "fp16", split[-1])),
        ("linear", ("gemm", 4, "bf16", direct[0])),
        ("linear", ("gemm", 5, "fp16", direct[1])),
        ("linear", ("gemm", 6, "fp32", direct[2])),
        ("linear", ("gemm", 8, "bf16", direct[0])),
        ("linear", ("gemm_split", 5, "fp32", _shift_add_config(), True)),
        ("conv", (False, 4, "bf16", triton_conv.qconv2d_direct.configs[0])),
        ("conv", (True, 5, "fp16", triton_conv.qconv2d_split.configs[0])),
        ("conv", (True, 2, "fp32", _shift_add_config(), True)),
    ]


def every_config() -> list[tuple[str, tuple]]:
    from inqnet.kernels import triton_conv, triton_linear

    jobs: list[tuple[str, tuple]] = []
    for cfg in triton_linear.qgemv.configs:
        jobs.append(("linear", ("gemv", 4, "bf16", cfg)))
    for cfg in triton_linear.qgemm_split.configs:
        jobs.append(("linear", ("gemm_split", 4, "bf16", cfg)))
    for cfg in triton_linear.qgemm_direct.configs:
        jobs.append(("linear", ("gemm", 4, "bf16", cfg)))
    for cfg in triton_conv.qconv2d_direct.configs:
        jobs.append(("conv", (False, 4, "bf16", cfg)))
    return jobs


def run(jobs: list[tuple[str, tuple]]) -> list[Compiled]:
    results = []
    for family, args in jobs:
        results.append(check_linear(*args) if family == "linear" else check_conv(*args))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every autotune config")
    args = parser.parse_args(argv)
    failures = 0
    for family, job in (every_config() if args.all else representative()):
        try:
            r = run([(family, job)])[0]
        except Exception as err:  # report every failing config, not just the first
            failures += 1
            print(f"FAIL {family} {job}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            continue
        over = " OVER SHARED LIMIT" if r.shared_bytes > H100_SHARED_BYTES else ""
        failures += bool(over)
        print(f"ok   {r.name}: shared {r.shared_bytes} B, tensor cores {r.uses_tensor_cores}{over}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
