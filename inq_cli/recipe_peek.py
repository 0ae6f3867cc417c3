"""A recipe as a plain dict with `key=value` overrides applied, for tools that only read a few keys
(the sweep's W&B project, the SLURM job's accelerator) and must refuse a missing or broken file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from inq_cli.errors import InqError
from inq_cli.grid import parse_value
from inq_cli.slurm import override_map


def read_recipe_dict(path: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The recipe file's mapping with overrides set at their dotted keys."""
    if not path.is_file():
        raise InqError(f"{path}: no such recipe file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise InqError(f"{path}: not readable YAML ({' '.join(str(err).split())[:160]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InqError(f"{path}: a recipe must be a mapping of sections")
    for key, text in override_map(list(overrides or [])).items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = parse_value(text)
    return data
