"""What a user error is and how `inq` shows it: one line naming what is wrong and where, exit
code 2, no traceback. The CLI's own type is `InqError`; `modules` raises `InputError` (it must stay
usable without the CLI), and both print the same way."""
from __future__ import annotations

import typer

from inqnet.modules.errors import InputError, one_line

EXIT_BAD_INPUT = 2  # bad recipe, data, checkpoint, export or CLI argument
EXIT_INTERRUPTED = 130  # Ctrl+C, as a shell reports SIGINT


class InqError(InputError):
    """Bad input from the user (recipe, override, data, checkpoint, CLI argument).

    The message must be one line that names the thing (a key path, a file) and the problem.
    `inqnet.cli.app.main` prints it as ``error: <message>`` on stderr and exits with code 2.
    """

    exit_code = EXIT_BAD_INPUT


def show_error(message: object, where: str = "") -> int:
    """Prints ``error: [where: ]message`` as one line on stderr; returns the exit code to use."""
    prefix = f"{where}: " if where else ""
    typer.echo(f"error: {prefix}{one_line(str(message))}", err=True)
    return EXIT_BAD_INPUT
