"""The `inq` Typer application: collects one file per subcommand and maps user errors to exit 2."""
from __future__ import annotations

import sys

import typer

from inqnet.cli.commands import (
    annotate, bench, data, eval, export, inspect, recipes, report, slurm, sweep, train, validate,
    verify,
)
from inqnet.cli.errors import show_error, show_interrupt
from inqnet.modules.errors import InputError

try:  # typer >= 0.2x carries its own click; earlier versions use click itself
    from typer import TyperException as UsageProblem
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import ClickException as UsageProblem

app = typer.Typer(
    name="inq",
    help="Incremental Network Quantization: train networks whose weights are zero or ±2^k.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The command graph, in the order `inq --help` lists it: each module has a ``register(app)``.
COMMANDS = (train, eval, validate, recipes, verify, data, export, inspect, bench, sweep, report, slurm, annotate)
for _command in COMMANDS:
    _command.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one line on stderr and exit with code 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    command = typer.main.get_command(app)
    if not args:
        args = ["--help"]
    try:
        code = command.main(args=args, prog_name="inq", standalone_mode=False)
    except UsageProblem as err:
        ctx = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError":  # `inq train` alone: its help
            text = err.format_message()  # (typer's rich help has printed itself already)
            if text.strip():
                typer.echo(text)
            code = 0
        else:  # bad arguments or options: one line
            code = show_error(err.format_message(), ctx.command_path if ctx is not None else "")
    except InputError as err:  # InqError included
        code = show_error(err)
    except typer.Abort:  # Ctrl+C outside a run (click has closed the ^C line)
        code = show_interrupt()
    except KeyboardInterrupt as err:  # raised outside click's own handling
        code = show_interrupt(err)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
