"""User-facing errors: one line naming what is wrong and where, exit code 2, no traceback."""
from __future__ import annotations


class InqError(Exception):
    """Bad input from the user (recipe, override, data, checkpoint, CLI argument).

    The message must be one line that names the thing (a key path, a file) and the problem.
    `inqnet.cli.app.main` prints it as ``error: <message>`` on stderr and exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
