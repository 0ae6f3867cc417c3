"""Errors that modules raise for bad user input, importable without the CLI.

`DataError` is a ``ValueError`` so plain Python callers can catch it generically; the `inq` CLI
maps it to a one-line ``error: ...`` message and exit code 2 (like ``inq_cli.errors.InqError``).
"""
from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A dataset on disk is missing, empty or malformed. The message is one line naming the file."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def data_error(path: str | Path, problem: str) -> DataError:
    """Build the canonical ``<path>: <problem>`` one-line error."""
    return DataError(f"{path}: {problem}")
