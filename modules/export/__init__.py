"""Deployable models: the `.inq.safetensors` format, writing it from a trained model, running it."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inqnet.modules.export.runtime import load_quantized
    from inqnet.modules.export.writer import export_model

# Imported on first use, so reading an export does not import the INQ training code the writer needs.
_HOMES = {"export_model": "inqnet.modules.export.writer", "load_quantized": "inqnet.modules.export.runtime"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'inqnet.modules.export' has no attribute {name!r}")
