"""Kernel benchmark: quantized Triton kernels against torch dense bf16, same GPU, same run.

Shapes: VGG-16's FC layers and distinct conv layers, Deep Speech's FC layers (hidden 2048,
19 frames x 26 features in, 61 phones + blank out). M (rows of x; output pixels for conv,
realised as one image of 1x1, 4x4, 8x16 or 32x32 pixels) in {1, 16, 128, 1024}. For each
problem: median time, effective bandwidth (codes + activations + outputs moved once), its share
of the GPU's peak, and the speed-up over dense bf16. Results go to JSON and Markdown; goals
are reported, never asserted. Without CUDA it says so, or times the torch reference on CPU
(`cpu_reference=True`), labelled as such.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

import torch
import torch.nn.functional as F

from inqnet.kernels import ops, reference
from inqnet.kernels.packing import PackedWeight, magnitude_count, pack

M_VALUES = (1, 16, 128, 1024)
CONV_SPATIAL = {1: (1, 1), 16: (4, 4), 128: (8, 16), 1024: (32, 32)}
VGG16_FC = [("fc6", 4096, 25088), ("fc7", 4096, 4096), ("fc8", 1000, 4096)]
VGG16_CONV = [("conv1_1", 64, 3), ("conv1_2", 64, 64), ("conv2_1", 128, 64),
              ("conv2_2", 128, 128), ("conv3_1", 256, 128), ("conv3_2", 256, 256),
              ("conv4_1", 512, 256), ("conv4_2", 512, 512)]  # (out, in); 3x3, pad 1
DEEPSPEECH_FC = [("fc1", 2048, 19 * 26), ("fc2", 2048, 2048), ("out", 62, 2048)]
PEAK_BANDWIDTH_GBPS = {"H200": 4800.0, "H100 NVL": 3900.0, "H100 PCIe": 2000.0,
                       "H100": 3350.0, "A100-SXM4-80GB": 2039.0, "A100": 1555.0}
GOALS = {1: 3.0, 16: 2.5}  # minimum speed-up over dense bf16 for 4-bit codes; M >= 128: 0.9
GOAL_LARGE_M, GOAL_PEAK_SHARE_M1 = 0.9, 0.75


@dataclass
class Problem:
    family: str
    layer: str
    op: str  # "linear" or "conv2d"
    n: int  # output features / channels
    k: int  # input features / channels
    m: int

    @property
    def reduction(self) -> int:
        """K of the GEMM (in x 3 x 3 for conv)."""
        return self.k * 9 if self.op == "conv2d" else self.k


@dataclass
class Row:
    family: str
    layer: str
    op: str
    n: int
    k: int
    m: int
    kernel: str
    time_us: float
    bytes_moved: int
    bandwidth_gbps: float
    peak_share: float | None
    speedup_vs_dense: float | None
    max_rel_error: float | None


@dataclass
class BenchResult:
    device: str
    backend: str  # "cuda" or "cpu (torch reference)"
    bits: int
    activation_dtype: str
    timing: str
    peak_bandwidth_gbps: float | None
    torch_version: str
    triton_version: str | None
    created: str
    rows: list[Row] = field(default_factory=list)
    goals: list[dict] = field(default_factory=list)


def problems(families: tuple[str, ...] = ("vgg16", "deepspeech"), conv: bool = True,
             m_values: tuple[int, ...] = M_VALUES) -> list[Problem]:
    """Layers in order, each at every M."""
    layers: list[tuple[str, str, str, int, int]] = []
    if "vgg16" in families:
        layers += [("vgg16", name, "linear", n, k) for name, n, k in VGG16_FC]
        if conv:
            layers += [("vgg16", name, "conv2d", n, k) for name, n, k in VGG16_CONV]
    if "deepspeech" in families:
        layers += [("deepspeech", name, "linear", n, k) for name, n, k in DEEPSPEECH_FC]
    return [Problem(*layer, m) for layer in layers for m in m_values]


def peak_bandwidth(device_name: str) -> float | None:
    for key, value in PEAK_BANDWIDTH_GBPS.items():
        if key in device_name:
            return value
    return None


def random_packed(shape: tuple[int, ...], bits: int, n1: int = -1, seed: int = 0) -> PackedWeight:
    """Random valid codes (timings do not depend on the values)."""
    g = torch.Generator().manual_seed(seed)
    n, k = shape[0], int(torch.tensor(shape[1:]).prod())
    v = torch.randint(0, magnitude_count(bits) + 1, (n, k), generator=g)
    s = torch.randint(0, 2, (n, k), generator=g) * (v > 0)
    return PackedWeight(pack((s << (bits - 1)) | v, bits), bits, n1, tuple(shape))


def time_us(fn: Callable[[], object], cuda: bool) -> tuple[float, str]:
    """Median time of fn in microseconds; CUDA graphs remove launch overhead when possible."""
    fn()  # autotune / warm up outside any capture
    if cuda:
        import triton.testing

        torch.cuda.synchronize()
        try:
            return 1e3 * float(triton.testing.do_bench_cudagraph(fn, rep=50)), "cuda-graph"
        except Exception:
            return 1e3 * float(triton.testing.do_bench(fn, warmup=10, rep=50)), "cuda-events"
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return 1e6 * sorted(samples)[len(samples) // 2], "wall-clock"


def _inputs(p: Problem, dtype: torch.dtype, device: str) -> torch.Tensor:
    if p.op == "linear":
        return torch.randn(p.m, p.k, device=device).to(dtype)
    h, w = CONV_SPATIAL[p.m]
    return torch.randn(1, p.k, h, w, device=device).to(dtype).contiguous(
        memory_format=torch.channels_last)


def _bytes(p: Problem, weight_bytes: int, elem: int) -> int:
    return weight_bytes + elem * (p.m * p.reduction // (9 if p.op == "conv2d" else 1) + p.m * p.n)


def _quantized_fns(p: Problem, x: torch.Tensor, packed: PackedWeight, all_kernels: bool,
                   shift_add: bool, mode: str) -> dict[str, Callable[[], torch.Tensor]]:
    if mode == "cpu-reference":
        if p.op == "linear":
            return {"torch_reference": lambda: reference.linear(x, packed)}
        return {"torch_reference": lambda: reference.conv2d(x, packed, padding=1)}
    backend = "triton"  # on CUDA tensors: compiled; on CPU ("interpreter" mode): interpreted
    if p.op == "conv2d":
        fns = {"auto": lambda: ops.quant_conv2d(x, packed, padding=1, backend=backend)}
        if all_kernels:
            for name in ("gemm_split", "gemm"):
                fns[name] = lambda name=name: ops.quant_conv2d(x, packed, padding=1,
                                                               backend=backend, kernel=name)
        return fns
    fns = {"auto": lambda: ops.quant_linear(x, packed, backend=backend)}
    if all_kernels:
        for name in ("gemv", "gemm_split", "gemm"):
            if (name == "gemv" and p.m > 16) or (name == "gemm_split" and p.m > 128):
                continue
            fns[name] = lambda name=name: ops.quant_linear(x, packed, backend=backend, kernel=name)
    if shift_add and p.m == 1:
        fns["shift_add"] = lambda: ops.quant_linear(x, packed, backend=backend, shift_add=True)
    return fns


MODES = {"gpu": "cuda", "cpu-reference": "cpu (torch reference)",
         "interpreter": "cpu (Triton interpreter; checks the plumbing, times mean nothing)"}


def run(bits: int = 4, problem_list: list[Problem] | None = None, all_kernels: bool = False,
        shift_add: bool = False, mode: str | None = None,
        log: Callable[[str], None] = print) -> BenchResult | None:
    """Benchmark every problem (default: `problems()`).

    mode "gpu" (the default when CUDA is there) times the Triton kernels against dense bf16;
    "cpu-reference" times the torch reference against dense fp32 on CPU; "interpreter" runs the
    GPU code path through the Triton interpreter (tests). Without CUDA and without a mode it
    says so and returns None.
    """
    cuda = torch.cuda.is_available()
    if mode is None:
        if not cuda:
            log("no CUDA GPU found: the Triton kernels were not measured (nothing written). "
                "Run on a GPU machine, or pass --cpu-reference to time the torch reference on CPU.")
            return None
        mode = "gpu"
    if mode not in MODES or (mode == "gpu" and not cuda):
        raise ValueError(f"benchmark mode {mode!r} is not available here")
    gpu = mode == "gpu"
    device = "cuda" if gpu else "cpu"
    dtype = torch.bfloat16 if gpu else torch.float32
    name = torch.cuda.get_device_name(0) if gpu else f"CPU ({platform.processor() or 'unknown'})"
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    peak = peak_bandwidth(name) if gpu else None
    result = BenchResult(name, MODES[mode], bits, str(dtype), "", peak, torch.__version__,
                         triton_version, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    elem = torch.tensor([], dtype=dtype).element_size()
    dense_name = "dense_bf16" if gpu else "dense_fp32"
    weights: dict[str, tuple[PackedWeight, torch.Tensor]] = {}
    for p in problems() if problem_list is None else problem_list:
        key = f"{p.family}/{p.layer}"
        if key not in weights:
            weights.clear()  # one layer's weights at a time
            shape = (p.n, p.k, 3, 3) if p.op == "conv2d" else (p.n, p.k)
            packed = random_packed(shape, bits, seed=len(result.rows)).to(device)
            weights[key] = (packed, reference.decode_weight(packed, dtype, device))
        packed, dense_w = weights[key]
        x = _inputs(p, dtype, device)
        dense = ((lambda: F.linear(x, dense_w)) if p.op == "linear"
                 else (lambda: F.conv2d(x, dense_w, padding=1)))
        expected = dense().float()
        dense_us, result.timing = time_us(dense, gpu)
        rows = [_row(p, dense_name, dense_us, _bytes(p, dense_w.numel() * elem, elem), peak,
                     None, None)]
        for kname, fn in _quantized_fns(p, x, packed, all_kernels, shift_add, mode).items():
            scale = expected.abs().max().clamp(min=1e-30)
            err = float((fn().float() - expected).abs().max() / scale)
            us, _ = time_us(fn, gpu)
            rows.append(_row(p, kname, us, _bytes(p, packed.nbytes, elem), peak,
                             dense_us / us, err))
        result.rows += rows
        log("  ".join(f"{r.family}/{r.layer} m={r.m} {r.kernel}: {r.time_us:.1f} us"
                      + (f" x{r.speedup_vs_dense:.2f}" if r.speedup_vs_dense else "")
                      for r in rows))
    if gpu:
        result.goals = evaluate_goals(result)
    return result


def _row(p: Problem, kernel: str, us: float, moved: int, peak: float | None,
         speedup: float | None, err: float | None) -> Row:
    gbps = moved / (us * 1e-6) / 1e9
    return Row(p.family, p.layer, p.op, p.n, p.k, p.m, kernel, us, moved, gbps,
               gbps / peak if peak else None, speedup, err)


def evaluate_goals(result: BenchResult) -> list[dict]:
    """The issue's goals for 4-bit codes, checked on the dispatcher's ("auto") rows."""
    goals = []
    if result.bits != 4:
        return goals
    for r in result.rows:
        if r.kernel != "auto" or r.speedup_vs_dense is None:
            continue
        need = GOALS.get(r.m, GOAL_LARGE_M if r.m >= 128 else None)
        if need is None:
            continue
        ok = r.speedup_vs_dense >= need
        text = f"speed-up >= {need}x"
        if r.m == 1 and r.op == "linear":
            share_ok = r.peak_share is not None and r.peak_share >= GOAL_PEAK_SHARE_M1
            ok = ok and share_ok
            text += f" and >= {GOAL_PEAK_SHARE_M1:.0%} of peak bandwidth"
        goals.append({"family": r.family, "layer": r.layer, "op": r.op, "m": r.m,
                      "goal": text, "speedup": round(r.speedup_vs_dense, 3),
                      "peak_share": None if r.peak_share is None else round(r.peak_share, 3),
                      "met": ok})
    return goals


def to_markdown(result: BenchResult) -> str:
    lines = [f"# Kernel benchmark — {result.device}", "",
             f"- backend: {result.backend}; codes: {result.bits}-bit; activations: "
             f"{result.activation_dtype}; timing: {result.timing}",
             f"- peak bandwidth: {result.peak_bandwidth_gbps or 'unknown'} GB/s; torch "
             f"{result.torch_version}; triton {result.triton_version}; {result.created}", "",
             "| family | layer | op | N | K | M | kernel | time (us) | GB/s | % peak | x dense | max rel err |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        lines.append(
            f"| {r.family} | {r.layer} | {r.op} | {r.n} | {r.k} | {r.m} | {r.kernel} | "
            f"{r.time_us:.1f} | {r.bandwidth_gbps:.0f} | "
            f"{'' if r.peak_share is None else f'{100 * r.peak_share:.0f}%'} | "
            f"{'' if r.speedup_vs_dense is None else f'{r.speedup_vs_dense:.2f}'} | "
            f"{'' if r.max_rel_error is None else f'{r.max_rel_error:.1e}'} |")
    if result.goals:
        met = sum(g["met"] for g in result.goals)
        lines += ["", f"## Goals (4-bit codes): {met} of {len(result.goals)} met", "",
                  "| family | layer | M | goal | speed-up | % peak | met |", "|---|---|---|---|---|---|---|"]
        for g in result.goals:
            share = "" if g["peak_share"] is None else f"{100 * g['peak_share']:.0f}%"
            lines.append(f"| {g['family']} | {g['layer']} | {g['m']} | {g['goal']} | "
                         f"{g['speedup']:.2f} | {share} | {'yes' if g['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def result_files(result: BenchResult) -> dict[str, str]:
    """File name -> text of one run's results: kernels_<device>_<time>.{json,md} (the CLI writes them)."""
    slug = "".join(c if c.isalnum() else "-" for c in result.device).strip("-").lower()
    stem = f"kernels_{slug}_{result.created.replace(':', '').replace('+0000', 'Z')}"
    return {f"{stem}.json": json.dumps(asdict(result), indent=1) + "\n", f"{stem}.md": to_markdown(result)}
