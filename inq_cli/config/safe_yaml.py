"""What a recipe may hold, and the one YAML reader and writer for recipes and override values.

A recipe comes from a file or a command line someone else may have written, so reading it must
stay bounded in time and memory and every problem must be one short line:

- size: a recipe file, or one override value, is at most `MAX_RECIPE_BYTES`;
- nesting: mappings and lists nest at most `MAX_NESTING` deep (checked while composing, before
  any recursion could run out of stack);
- no YAML anchors or aliases: an alias bomb (`&a [*b, *b, ...]`) expands exponentially, and a
  recipe never needs one (write the value out);
- numbers are finite wherever they appear (`.inf`, `.nan`, `1e999` train to NaN).

Shown values are cut to `MAX_SHOWN` characters by `short`, which never builds the full repr of a
large structure.
"""
from __future__ import annotations

import math
import reprlib
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent

MAX_RECIPE_BYTES = 1 << 20   # a recipe file, or one override value (1 MiB)
MAX_NESTING = 64             # levels of mappings/lists
MAX_SHOWN = 60               # characters of a value quoted in an error line


class RecipeDataError(ValueError):
    """A recipe (file or value) that breaks one of the limits above; the text says where."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, MAX_SHOWN, MAX_SHOWN
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def short(value: Any, limit: int = MAX_SHOWN) -> str:
    """repr(value) cut to ``limit`` characters, built without walking a large value whole."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value) if isinstance(value, (bool, int, float, type(None))) else _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_size(size: int, what: str) -> None:
    """RecipeDataError when ``size`` bytes exceed `MAX_RECIPE_BYTES`."""
    if size > MAX_RECIPE_BYTES:
        raise RecipeDataError(f"{what} is {size} bytes; at most {MAX_RECIPE_BYTES} are allowed")


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors and aliases and nesting deeper than `MAX_NESTING`."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark is not None else "?"
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise RecipeDataError(f"line {line}: YAML anchors and aliases (&name, *name) are not allowed in a "
                                  "recipe; write the value out")
        nested = isinstance(event, CollectionStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_NESTING:
                raise RecipeDataError(f"line {line}: nested more than {MAX_NESTING} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1


class _RecipeDumper(yaml.SafeDumper):
    """Writes every value out (no anchors), so what inq writes it can read back."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def load_yaml(text: str) -> Any:
    """The YAML reading of ``text`` within the limits; RecipeDataError or yaml.YAMLError otherwise."""
    check_size(len(text.encode("utf-8", "surrogatepass")), "the text")
    loader = _RecipeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def dump_yaml(data: Any) -> str:
    """``data`` as block YAML, keys in their order, no anchors or aliases."""
    return yaml.dump(data, Dumper=_RecipeDumper, sort_keys=False, allow_unicode=True)


def check_depth(value: Any) -> None:
    """RecipeDataError when dicts/lists in ``value`` nest deeper than `MAX_NESTING` (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list, tuple)):
            if depth >= MAX_NESTING:
                raise RecipeDataError(f"nested more than {MAX_NESTING} levels deep")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)


def _key_path(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def non_finite(value: Any) -> tuple[str, float] | None:
    """(key path, number) of the first float in ``value`` that is not finite, or None."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return _key_path(path), node
        if isinstance(node, dict):
            stack.extend((child, (*path, key)) for key, child in reversed(list(node.items())))
        elif isinstance(node, (list, tuple)):
            stack.extend((child, (*path, i)) for i, child in reversed(list(enumerate(node))))
    return None
