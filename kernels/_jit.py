"""One Triton kernel source, two ways to run it: compiled on CUDA, interpreted on CPU.

`triton.jit` decides at import time (from TRITON_INTERPRET) whether a function is compiled or
interpreted, which makes one process unable to run both and ties tests to the environment.
Here each kernel keeps a compiled `JITFunction` (autotuned) and an `InterpretedFunction`;
`launch` picks the interpreter for CPU tensors or when TRITON_INTERPRET=1 is set. Device
helpers are `JITFunction`s (so the compiler inlines them) whose Python call — which only the
interpreter makes — runs their interpreted twin.

triton.language's own jitted helpers (tl.sum, tl.cdiv, ...) get the same treatment the first
time a kernel is interpreted (`_interpretable_language`), which is what TRITON_INTERPRET=1 set
before importing triton would have done; compiling is unaffected, as the compiler never calls a
helper from Python.

Triton's interpreter patches triton.language (its builtins, `tl.core`, `tl.tensor`, `tl.dtype`)
while a kernel runs, and a device-function call patches again without undoing it. A later
compile in the same process then builds IR with the interpreter's semantics ("'ir.value' has no
attribute 'dtype'", only on a cold Triton cache). `_language_restored` puts every such attribute
back after each interpreted launch.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Iterator, Sequence

import torch
import triton
import triton.testing
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction


def interpreter_requested() -> bool:
    """True when the user asked Triton to interpret kernels (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


class DeviceFunction(JITFunction):
    """A `@triton.jit` helper that also works when called from an interpreted kernel."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        interpreted = self.__dict__.get("_interpreted")
        if interpreted is None:
            interpreted = self.__dict__["_interpreted"] = InterpretedFunction(self.fn)
        return interpreted(*args, **kwargs)


_language_patched = False


def _interpretable_language() -> None:
    """Make triton.language's jitted helpers callable by the interpreter (idempotent)."""
    global _language_patched
    if _language_patched:
        return
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("triton.language"):
            continue
        for value in list(vars(module).values()):
            if type(value) is JITFunction:
                value.__class__ = DeviceFunction
    _language_patched = True


def _patched_namespaces() -> list[object]:
    """The objects Triton's interpreter patches attributes of (modules and classes)."""
    import triton.language as tl

    found = [tl, tl.core, getattr(tl, "math", None), tl.core.tensor, tl.core.dtype,
             getattr(tl.core, "tensor_descriptor_base", None)]
    return [obj for obj in found if obj is not None]


@contextlib.contextmanager
def _language_restored() -> Iterator[None]:
    """Run a block, then restore every triton.language attribute it changed, added or removed."""
    saved = [(obj, dict(vars(obj))) for obj in _patched_namespaces()]
    try:
        yield
    finally:
        for obj, before in saved:
            now = vars(obj)
            for name in [n for n in now if n not in before]:
                delattr(obj, name)
            for name, value in before.items():
                if now.get(name, _MISSING) is not value:
                    setattr(obj, name, value)


_MISSING = object()


def device_function(fn: Callable) -> DeviceFunction:
    """Decorator for helpers called from kernels (replaces `@triton.jit` on helpers)."""
    return DeviceFunction(fn)


class Kernel:
    """A kernel with a compiled (optionally autotuned) and an interpreted variant."""

    def __init__(self, fn: Callable, configs: Sequence[triton.Config] | None = None,
                 key: Sequence[str] = (), reset_to_zero: Sequence[str] | None = None,
                 heuristics: dict[str, Callable[[dict], Any]] | None = None,
                 prune: Callable[[list, dict], list] | None = None,
                 do_not_specialize: Sequence[str] = ()) -> None:
        """`heuristics` maps constexpr names to functions of the named arguments and the
        chosen config (e.g. whether every block is full), as `triton.heuristics`; `prune(configs,
        args)` drops configs that cannot suit a problem before autotuning times them;
        `do_not_specialize` names integer arguments compiled as plain runtime values."""
        self.fn = fn
        self.heuristics = heuristics
        self.compiled = JITFunction(fn, do_not_specialize=list(do_not_specialize))
        self.interpreted = InterpretedFunction(fn)
        self.configs = list(configs or [])
        self.autotuned = None
        if self.configs:
            inner = self.compiled
            if heuristics:
                inner = triton.heuristics(heuristics)(inner)
            pruning = None
            if prune is not None:
                pruning = {"early_config_prune":
                           lambda configs, named, **kw: prune(configs, {**named, **kw})}
            self.autotuned = triton.autotune(configs=self.configs, key=list(key),
                                             reset_to_zero=list(reset_to_zero or []),
                                             prune_configs_by=pruning, do_bench=_quick_bench)(inner)

    def launch(self, grid: Callable[[dict], tuple[int, ...]], *args: Any,
               config: dict[str, Any] | None = None, device: torch.device | None = None,
               **kwargs: Any) -> None:
        """Run the kernel. `config` (tile sizes etc.) skips autotuning; it is required when the
        kernel has no autotune configs and always used by the interpreter."""
        interpret = interpreter_requested() or device is None or device.type != "cuda"
        if interpret:
            _interpretable_language()
            chosen = dict(config) if config is not None else _smallest(self.configs)
            with _language_restored():
                self.interpreted[grid](*args, **kwargs, **self._with_heuristics(kwargs, chosen))
        elif config is not None or self.autotuned is None:
            if config is None:
                raise ValueError(f"{self.fn.__name__}: no autotune configs, pass config=")
            self.compiled[grid](*args, **kwargs, **self._with_heuristics(kwargs, dict(config)))
        else:
            self.autotuned[grid](*args, **kwargs)

    def _with_heuristics(self, kwargs: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
        """Config plus the heuristic constexprs for it."""
        named = {**kwargs, **config}
        return {**config, **{name: f(named) for name, f in (self.heuristics or {}).items()}}


def _quick_bench(fn: Callable[[], Any], quantiles: Any = None) -> Any:
    """Autotuning timer: short runs, so tuning dozens of configs per shape stays in seconds."""
    return triton.testing.do_bench(fn, warmup=5, rep=25, quantiles=quantiles)


def _smallest(configs: Sequence[triton.Config]) -> dict[str, Any]:
    """The config with the fewest tile elements: the interpreter's cost grows with tile size."""
    if not configs:
        raise ValueError("no config for the interpreter; pass config=")
    best = min(configs, key=lambda c: _tile_elements(c.kwargs))
    return dict(best.kwargs)


def _tile_elements(kwargs: dict[str, Any]) -> int:
    size = 1
    for name, value in kwargs.items():
        if name.startswith("BLOCK_"):
            size *= int(value)
    return size
