"""Turns a pydantic ValidationError into one (key path, message) pair a person can act on."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from inqnet.cli.config.safe_yaml import short

# Validators raise ValueError("sub.key: message") to point below the field they validate.
_SUBPATH = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*(?: \+ [A-Za-z_][A-Za-z0-9_.]*)?): (.+)$")
_LOC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_KINDS = {
    ("int_type", "int_parsing", "int_from_float"): "must be an integer",
    ("finite_number",): "must be a finite number",
    ("float_type", "float_parsing"): "must be a number",
    ("bool_type", "bool_parsing"): "must be true or false",
    ("string_type",): "must be a string",
    ("list_type", "tuple_type", "iterable_type"): "must be a list",
    ("dict_type", "model_type", "model_attributes_type"): "must be a mapping",
}


_short = short  # bounded in size and time, however large the input
MAX_MESSAGE = 300  # characters of one problem's message


def _path(loc: Sequence[Any]) -> str:
    """`('inq', 'portions', 1)` -> `inq.portions[1]`; union member tags are dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _LOC_NAME.match(str(part)):
            out += f".{part}" if out else str(part)
    return out


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    got = f" (got {_short(error.get('input'))})"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing (required)"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {_BOUNDS[kind]} {bound}{got}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}{got}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s){got}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s){got}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    for kinds, text in _KINDS.items():
        if kind in kinds:
            return text + got
    return f"{error['msg']}{got}"


def describe_validation_error(err: ValidationError, prefix: Sequence[str] = ()) -> tuple[str, str]:
    """The first problem as (key path, message); union alternatives at one path are joined by 'or'."""
    errors = err.errors(include_url=False)
    first_path = _path([*prefix, *errors[0]["loc"]])
    messages: list[str] = []
    for error in errors:
        if _path([*prefix, *error["loc"]]) != first_path:
            continue
        message = _message(error)
        if message not in messages:
            messages.append(message)
    # alternatives of a union: say what the input was once, at the end
    got = re.compile(r" \(got .*\)$")
    message = " or ".join([got.sub("", m) for m in messages[:-1]] + messages[-1:])
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    match = _SUBPATH.match(message)
    if match and error_is_value_error(errors[0]):
        sub, message = match.groups()
        first_path = f"{first_path}.{sub}" if first_path else sub
    return first_path, message


def error_is_value_error(error: Any) -> bool:
    """True for errors raised by our own validators (their text may name a sub-key)."""
    return error["type"] in ("value_error", "assertion_error")
