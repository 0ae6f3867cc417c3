"""`key=value` overrides on the command line: dotted key paths, YAML- or Python-typed values.

The one parser of `key=value` arguments and walker of dotted key paths: `inq train`, `inq eval`,
`inq sweep` (its grid values too) and `inq slurm` all read overrides here.

W&B sweeps render values Python-style through `${args_no_hyphens}` (`True`, `None`, `[1, 2]`),
so a value is read as a Python literal first and as YAML otherwise (`true`, `null`, `1e-4`,
`[a, b]`, bare strings).
"""
from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from inqnet.cli.config.safe_yaml import check_depth, check_size, load_yaml, short
from inqnet.cli.errors import InqError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_PLAIN = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class Override:
    """One parsed `key=value` argument."""

    key: str
    value: Any
    text: str


def _plain(value: Any) -> Any:
    """Tuples become lists; anything but plain data (sets, complex, bytes) is refused."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    raise ValueError(f"unsupported value type {type(value).__name__}")


def parse_value(raw: str) -> Any:
    """A Python literal if `raw` is one (True, None, [1, 2], 'x'), else its YAML reading; within the
    recipe limits of `safe_yaml` (size, nesting, no anchors), so a hostile value fails fast."""
    text = raw.strip()
    if text == "":
        return None
    check_size(len(text.encode("utf-8", "surrogatepass")), "the value")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = load_yaml(text)
    check_depth(value)
    return _plain(value)


def read_value(raw: str, where: str) -> Any:
    """`parse_value`, with an unreadable value an InqError that starts with ``where``."""
    try:
        return parse_value(raw)
    except (yaml.YAMLError, ValueError, RecursionError, MemoryError) as err:
        reason = " ".join(str(err).split())
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        raise InqError(f"{where}: cannot read the value {short(raw)} ({reason or type(err).__name__})") from None


def is_key(key: str) -> bool:
    """True for a dotted recipe key path such as `optimizer.lr` (each part an identifier)."""
    return bool(_KEY.match(key))


def parse_override(text: str) -> Override:
    """Parses one `key=value` argument; InqError naming the argument if it is malformed."""
    shown = short(text)
    if "=" not in text:
        raise InqError(f"override {shown}: expected key=value (e.g. optimizer.lr=0.01)")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not is_key(key):
        raise InqError(f"override {shown}: bad key {short(key)} (expected a dotted path such as optimizer.lr)")
    return Override(key=key, value=read_value(raw, f"override {shown}"), text=text)


def parse_overrides(texts: Iterable[str]) -> list[Override]:
    """Parses every argument; the first malformed one raises."""
    return [parse_override(t) for t in texts]


def override_map(texts: Iterable[str]) -> dict[str, Override]:
    """The parsed overrides by key; of a key given twice the last one wins, as in `apply_overrides`."""
    return {o.key: o for o in parse_overrides(texts)}


def split_overrides(args: Iterable[str], positional: Callable[[str], bool] = lambda arg: False,
                    ) -> tuple[list[str], list[Override]]:
    """Positional arguments and parsed overrides, given in any order.

    An argument is an override when it reads `key=...` with a key made of word characters, dots
    and dashes (a malformed key then fails in `parse_override`, naming it), unless ``positional``
    claims it (`inq eval`: an existing file named `a=b.ckpt` is a checkpoint). A ``positional`` that
    cannot look at the argument (a name too long for the file system, a NUL byte) does not claim it.
    """
    plain, overrides = [], []
    for arg in args:
        key, sep, _ = arg.partition("=")
        if sep and key.replace(".", "_").replace("-", "_").isidentifier() and not _claims(positional, arg):
            overrides.append(arg)
        else:
            plain.append(arg)
    return plain, parse_overrides(overrides)


def _claims(positional: Callable[[str], bool], arg: str) -> bool:
    try:
        return bool(positional(arg))
    except (OSError, ValueError):
        return False


def get_path(tree: Any, dotted: str, default: Any = None) -> Any:
    """`tree['a']['b']` for the key path `a.b`, or ``default`` when a level is missing."""
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[Override]) -> dict[str, Any]:
    """A copy of the recipe dict with each override set (missing sections are created)."""
    result = copy.deepcopy(dict(raw))
    for override in overrides:
        parts = override.key.split(".")
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise InqError(f"override {short(override.text)}: {where} is not a section (it holds {short(child)})")
            node = child
        node[parts[-1]] = override.value
    return result
