"""Errors for bad user input found inside `modules` (config, data files, checkpoints).

`modules` must stay usable from any Lightning project, so it cannot raise the CLI's error type;
the `inq` CLI prints an `InputError` as one `error: ...` line and exits with code 2.
`DataError` is the `InputError` for a dataset or weights file on disk: missing, empty or malformed.
"""
from __future__ import annotations

from pathlib import Path


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) squeezed to one space."""
    return " ".join(str(text).split())


class InputError(ValueError):
    """Bad input: the message is one line naming the thing (a key path, a file) and the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class DataError(InputError):
    """A data file or folder is missing, empty or malformed; the message names the file.

    Raised inside a DataLoader worker, torch re-raises it in the main process as
    ``DataError("Caught DataError in DataLoader worker process N. Original Traceback ...")``;
    the constructor keeps only the original one-line message.
    """

    def __init__(self, message: str) -> None:
        text = str(message)
        if text.startswith("Caught ") and "Original Traceback" in text:
            last = [line for line in text.strip().splitlines() if line.strip()][-1]
            text = last.split("DataError: ", 1)[-1]
        super().__init__(text)


def data_error(path: str | Path, problem: str) -> DataError:
    """The canonical ``<path>: <problem>`` one-line error."""
    return DataError(f"{path}: {problem}")


def first_line(err: BaseException) -> str:
    """An exception's message squeezed to its first line (for one-line user errors)."""
    lines = str(err).strip().splitlines()
    return one_line(lines[0]) if lines else type(err).__name__
