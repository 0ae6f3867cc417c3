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


class InqInterrupted(KeyboardInterrupt):
    """Ctrl+C, said as one line (where the run stopped, how to go on); exit code 130.

    A KeyboardInterrupt, so code that cleans up on Ctrl+C (and no `except Exception`) sees it as one.
    """

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str = "") -> None:
        super().__init__(one_line(message))


def show_interrupt(err: BaseException | None = None) -> int:
    """Prints ``interrupted[: message]`` as one line on stderr; returns exit code 130."""
    text = one_line(str(err)) if err is not None and str(err) else ""
    typer.echo(f"interrupted: {text}" if text else "interrupted", err=True)
    return EXIT_INTERRUPTED
