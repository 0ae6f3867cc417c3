"""LightningModules, networks, datamodules and the INQ core: usable from any Lightning project."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inqnet.modules.checkpoints import load_model
    from inqnet.modules.export.runtime import load_quantized

__all__ = ["load_model", "load_quantized"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import inqnet.modules.registry` stays light (no torch import for recipe validation).
    if name == "load_model":
        from inqnet.modules.checkpoints import load_model

        return load_model
    if name == "load_quantized":
        from inqnet.modules.export.runtime import load_quantized

        return load_quantized
    raise AttributeError(f"module 'modules' has no attribute {name!r}")
