"""Errors for bad user input found inside `modules` (config, data files, checkpoints).

`modules` must stay usable from any Lightning project, so it cannot raise the CLI's error type;
the `inq` CLI prints an `InputError` as one `error: ...` line and exits with code 2.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message is one line naming the thing (a key path, a file) and the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def first_line(err: BaseException) -> str:
    """An exception's message squeezed to its first line (for one-line user errors)."""
    lines = str(err).strip().splitlines()
    return " ".join(lines[0].split()) if lines else type(err).__name__
