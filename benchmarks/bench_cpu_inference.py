"""CPU inference of a deployed INQ model against the float network it came from, one thread.

Run: python benchmarks/bench_cpu_inference.py [--vgg-input 32] [--repeats 5] [--onnx]
Goal: `load_quantized` (keep="dense") within 1.1x of the float model's time at batch 1 and 64;
keep="packed" (only the codes in memory, decoded per layer into a reused buffer) within 1.5x.
Printed, not asserted; written to benchmarks/results/cpu_inference.txt.

Models: the quickstart export of tests/fixtures/pre_layout (and its float checkpoint), and a
VGG-16-shaped network (benchmarks/vgg16_shapes.py: 13 conv + 3 FC, 138M weights) with random
5-bit INQ weights, at a small input (default 32x32: the adaptive pool keeps FC6 at 25088 inputs,
so all 138M weights are used while batch 64 stays seconds). The float side is the fake-quantized
network (float weights that are exactly the INQ values); outputs are checked bit-identical.
With --onnx, ONNX Runtime (one thread) is timed too when `inqnet.modules.export.onnx.export_onnx`
and onnxruntime exist.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.vgg16_shapes import vgg16_weight_shapes  # noqa: E402
from inqnet.modules.atomic import write_atomic  # noqa: E402
from inqnet.modules.export import export_model, load_quantized  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "pre_layout"
RESULTS = ROOT / "benchmarks" / "results" / "cpu_inference.txt"


def best_time(fn: Callable[[], object], repeats: int, budget_s: float = 20.0,
              min_s: float = 0.5) -> float:
    """Fastest call after one warm-up: at least `repeats` calls and `min_s` seconds (fast models
    get many calls), stopping early past `budget_s`."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return min(times)


def quantize_random(net: nn.Module, bits: int, seed: int = 0) -> nn.Module:
    """Every Conv2d/Linear weight rounded into P(bits, n1) and fully frozen (INQ buffers set)."""
    from inqnet.modules.inq import Target, attach_buffers
    from inqnet.modules.inq.math import exponent_range, freeze_stage_, max_abs

    torch.manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                attach_buffers(Target("weight", module, "weight"), bits)
                n1, _ = exponent_range(max_abs(module.weight), bits)
                freeze_stage_(module.weight, module.weight_inq_mask, 1.0, bits, n1)
                module.weight_inq_n1.fill_(n1)
    return net


def quickstart(tmp: Path) -> tuple[str, nn.Module, Path, tuple[int, ...]]:
    from inqnet.modules import load_model

    float_model = load_model(FIXTURES / "last.ckpt").eval()
    return "quickstart (5-bit)", float_model, FIXTURES / "quickstart.inq.safetensors", (1, 8, 8)


POOL_AFTER = {1, 3, 6, 9, 12}  # VGG-16's max-pools follow these conv layers (0-based)


def vgg16_network(input_size: int = 224) -> nn.Module:
    """torchvision's VGG-16 layout from benchmarks/vgg16_shapes.py: 13 conv (3x3, pad 1), five
    max-pools, a 7x7 adaptive average pool (FC6 keeps 25088 inputs at any input size), 3 FC.
    Where the last map is 1x1 (inputs of 32-63 px) the pool is a 7x nearest upsampling: the
    same values (the average of one element), in a form torch's ONNX exporter accepts."""
    from benchmarks.vgg16_shapes import CONV, FC

    layers: list[nn.Module] = []
    for i, (out_ch, in_ch) in enumerate(CONV):
        layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU()]
        if i in POOL_AFTER:
            layers.append(nn.MaxPool2d(2))
    pool = nn.Upsample(scale_factor=7, mode="nearest") if input_size // 32 == 1 else nn.AdaptiveAvgPool2d(7)
    layers += [pool, nn.Flatten()]
    for j, (out_f, in_f) in enumerate(FC):
        layers.append(nn.Linear(in_f, out_f))
        if j < len(FC) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def vgg16(tmp: Path, input_size: int, bits: int) -> tuple[str, nn.Module, Path, tuple[int, ...]]:
    net = quantize_random(vgg16_network(input_size), bits).eval()
    shapes = [tuple(m.weight.shape) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert shapes == vgg16_weight_shapes(), shapes
    path = tmp / "vgg16.inq.safetensors"
    export_model(net, path)
    return f"VGG-16 ({bits}-bit, {input_size}px)", net, path, (3, input_size, input_size)


def onnx_runner(model: nn.Module, x: torch.Tensor, tmp: Path) -> tuple[Callable[[], object] | None, str]:
    """A one-thread ONNX Runtime session of `model`, or None and the reason it is skipped."""
    try:
        from inqnet.modules.export.onnx import export_onnx  # provided by the ONNX export
    except ImportError as err:
        return None, f"skipped: no inqnet.modules.export.onnx.export_onnx ({err})"
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "skipped: onnxruntime is not installed"
    path = tmp / "model.onnx"
    export_onnx(model, path, x)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = {name: x.numpy()}
    return (lambda: session.run(None, feed)), "ok"


def bench_model(name: str, float_model: nn.Module, export: Path, shape: tuple[int, ...],
                batches: list[int], repeats: int, onnx: bool, tmp: Path) -> list[str]:
    """Float, keep="dense" and keep="packed" side by side (a network without a record is
    filled into a fresh copy of the float one)."""
    import copy

    def fresh() -> nn.Module | None:
        return None if hasattr(float_model, "hparams") else copy.deepcopy(float_model)

    dense = load_quantized(export, network=fresh())
    packed = load_quantized(export, network=fresh(), keep="packed")
    lines = [f"{name}: float / dense / packed ms per batch, ratios to float"]
    for batch in batches:
        x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
        with torch.inference_mode():
            reference = float_model(x)
            for label, model in (("dense", dense), ("packed", packed)):
                if not torch.equal(model(x), reference):
                    raise SystemExit(f"{name}: {label} output differs from the float model")
            t_float = best_time(lambda: float_model(x), repeats)
            t_dense = best_time(lambda: dense(x), repeats)
            t_packed = best_time(lambda: packed(x), repeats)
            t_float = min(t_float, best_time(lambda: float_model(x), repeats))  # interleaved
        line = (f"  batch {batch:3d}: float {1e3 * t_float:9.2f}  dense {1e3 * t_dense:9.2f} "
                f"({t_dense / t_float:.2f}x, goal 1.1)  packed {1e3 * t_packed:9.2f} "
                f"({t_packed / t_float:.2f}x, goal 1.5)")
        if onnx:
            run, why = onnx_runner(float_model, x, tmp)
            line += (f"  onnxruntime {1e3 * best_time(run, repeats):9.2f} "
                     f"({best_time(run, repeats) / t_float:.2f}x)" if run else f"  onnx {why}")
        print(line, flush=True)
        lines.append(line)
    return lines


def cpu_name() -> str:
    """The CPU's model name (ratios depend on it: cache sizes, vector units)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vgg-input", type=int, default=32, help="VGG-16 input side in pixels")
    parser.add_argument("--bits", type=int, default=5, help="bits of the VGG-16's random INQ weights")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-vgg", action="store_true")
    parser.add_argument("--onnx", action="store_true", help="also time ONNX Runtime")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from inqnet.modules.export.cpu_decode import backend

    header = (f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
              f"best of {args.repeats}, ms per forward of the whole batch, "
              f"packed decoder: {backend()}")
    print(header, flush=True)
    lines = [header]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        models = [quickstart(tmp)]
        if not args.skip_vgg:
            models.append(vgg16(tmp, args.vgg_input, args.bits))
        for name, float_model, export, shape in models:
            lines += bench_model(name, float_model, export, shape, args.batches, args.repeats,
                                 args.onnx, tmp)
    write_atomic(RESULTS, "\n".join(lines) + "\n")
    print(f"written: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
