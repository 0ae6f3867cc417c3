"""`inq bench kernels`: time the quantized Triton kernels against torch dense bf16 on this GPU."""
from __future__ import annotations

from pathlib import Path

import typer

from inqnet.cli.errors import InqError
from inqnet.modules.atomic import write_atomic

bench_app = typer.Typer(help="Benchmarks (measured, never asserted).", no_args_is_help=True)
FAMILIES = ("vgg16", "deepspeech")


def _parse_m(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InqError(f"--m: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise InqError(f"--m: expected positive integers, got {text!r}")
    return values


KERNELS_HELP = """Time the quantized Triton kernels against torch dense bf16 on this GPU.

VGG-16 FC and conv shapes and Deep Speech FC shapes, M in {1, 16, 128, 1024}: time, effective
bandwidth, share of peak and speed-up per kernel, written as JSON and Markdown (--out). The
4-bit goals (M=1: >= 3x and >= 75% of peak bandwidth; M=16: >= 2.5x; M >= 128: >= 0.9x) are
reported, not asserted. Without a GPU it says so and writes nothing, or with --cpu-reference
times the torch reference on CPU (labelled so).

Examples:

  inq bench kernels

  inq bench kernels --family vgg16 --no-conv --m 1,16 --all-kernels --shift-add
"""


@bench_app.command("kernels", help=KERNELS_HELP)
def kernels(
    bits: int = typer.Option(4, "--bits", help="code width b (2..9); the goals are for 4"),
    m: str = typer.Option("1,16,128,1024", "--m", help="rows of x (output pixels for conv)"),
    family: list[str] = typer.Option(list(FAMILIES), "--family", help="vgg16 and/or deepspeech"),
    conv: bool = typer.Option(True, "--conv/--no-conv", help="include VGG-16 conv layers"),
    all_kernels: bool = typer.Option(False, "--all-kernels",
                                     help="also time gemv / gemm_split / gemm forced"),
    shift_add: bool = typer.Option(False, "--shift-add", help="also time shift-add at M=1"),
    cpu_reference: bool = typer.Option(False, "--cpu-reference",
                                       help="without a GPU, time the torch reference on CPU"),
    out: Path = typer.Option(Path("benchmarks/results"), "--out", "-o",
                             help="folder for the JSON and Markdown results"),
) -> None:
    """VGG-16 / Deep Speech shapes, M in {1, 16, 128, 1024}: time, GB/s, x dense bf16."""
    import torch

    from inqnet.kernels import bench
    from inqnet.kernels.packing import bits_problem

    if bits_problem(bits) is not None:
        raise InqError(f"--bits: {bits_problem(bits)}")
    unknown = sorted(set(family) - set(FAMILIES))
    if unknown:
        raise InqError(f"--family: unknown {unknown}; choose from {list(FAMILIES)}")
    m_values = _parse_m(m)
    if not torch.cuda.is_available() and cpu_reference and m == "1,16,128,1024":
        m_values = (1, 16)  # the CPU reference on every VGG shape would take many minutes
    mode = "cpu-reference" if cpu_reference and not torch.cuda.is_available() else None
    result = bench.run(bits, bench.problems(tuple(family), conv, m_values), all_kernels,
                       shift_add, mode=mode, log=typer.echo)
    if result is None:
        return
    json_path, md_path = (write_atomic(Path(out) / name, text) for name, text in bench.result_files(result).items())
    if result.goals:
        met = sum(g["met"] for g in result.goals)
        typer.echo(f"goals met: {met} of {len(result.goals)}")
    if not torch.cuda.is_available():
        typer.echo("note: CPU run of the torch reference, not the Triton kernels; no GPU goals")
    typer.echo(f"wrote {json_path} and {md_path}")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
