"""Which runs a report puts in one row: those whose WHOLE resolved recipe agrees, apart from the
table's axis (bit width or ensemble members), the seed, and keys that say where or how a run was
written rather than what it trained (paths, loggers, progress bars, threads). Anything else that
differs (width, data split, epochs, schedule, optimizer, device...) makes another row, labelled by
the keys that differ between rows. Nothing is pooled silently.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from inqnet.cli.config.load import RESUMED_KEY

# Not part of a configuration: the seed (repeats), where files go or come from, and what is only shown.
NOT_CONFIGURATION = frozenset({
    "seed", "description", "output_dir", "threads", "model.init_from", "data.root", "data.cache",
    "data.synthesize", "data.num_workers", "trainer.enable_progress_bar", "trainer.log_every_n_steps",
})
NOT_CONFIGURATION_SECTIONS = ("logger", RESUMED_KEY)  # RESUMED_KEY: when and from where a run went on
# The axis of each table: what its columns vary (a control is a column of the bit-width table).
BITS_AXIS = frozenset({"inq.bits", "inq.control", "inq.enabled"})
MEMBERS_AXIS = frozenset({"ensemble.members"})

Config = tuple[tuple[str, str], ...]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def is_configuration_key(key: str) -> bool:
    """False for the seed, paths and display settings (see NOT_CONFIGURATION)."""
    return key not in NOT_CONFIGURATION and not key.startswith(tuple(s + "." for s in NOT_CONFIGURATION_SECTIONS)) \
        and key not in NOT_CONFIGURATION_SECTIONS


def config_of(recipe: dict[str, Any], axis: frozenset[str]) -> Config:
    """The configuration a run belongs to: its recipe minus the axis, the seed and paths, as a key.

    A key set to null counts as absent (a run written before the key existed reads the same)."""
    items = flatten(recipe)
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in items.items()
                        if v is not None and is_configuration_key(k) and k not in axis))


def differing_keys(configs: Iterable[Config]) -> list[str]:
    """The keys whose values are not the same in every configuration (a key one lacks counts)."""
    maps = [dict(c) for c in configs]
    keys = sorted({k for m in maps for k in m})
    return [k for k in keys if len({m.get(k, "<unset>") for m in maps}) > 1]


def _shown(text: str | None) -> str:
    if text is None:
        return "unset"
    value = json.loads(text)
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def config_label(model: str, config: Config, keys: list[str]) -> str:
    """A row label: the model, then `key=value` for each key that tells this row from the others."""
    values = dict(config)
    extra = ", ".join(f"{k}={_shown(values.get(k))}" for k in keys if k != "model.name")
    return f"{model} ({extra})" if extra else model
