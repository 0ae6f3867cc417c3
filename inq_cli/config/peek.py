"""A recipe validated with its overrides, as plain data, for commands that hand the recipe on to
`inq train` elsewhere (a SLURM job, a sweep's points) and must refuse a bad one before that."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from inqnet.cli.config.overrides import parse_overrides


def resolved_recipe(path: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The recipe as `resolved.yaml` would hold it; InqError (one line) when file or override is bad."""
    parse_overrides(overrides or [])  # a malformed override is named before the (slower) validation
    from inqnet.cli.config.schema import load_recipe

    return load_recipe(path, list(overrides or [])).resolved()
