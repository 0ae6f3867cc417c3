"""The `inq` Typer application: collects one file per subcommand and maps user errors to exit 2."""
from __future__ import annotations

import importlib
import sys

import typer

from inq_cli.errors import InqError

# Each name is a module in inq_cli/commands/ with a ``register(app)`` function.
COMMANDS: list[str] = ["sweep", "report", "slurm"]

app = typer.Typer(
    name="inq",
    help="Incremental Network Quantization: train networks whose weights are zero or ±2^k.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _name in COMMANDS:
    importlib.import_module(f"inq_cli.commands.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one line on stderr and exit with code 2."""
    try:
        app(args=argv, standalone_mode=True)
    except InqError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(InqError.exit_code)


if __name__ == "__main__":
    main()
