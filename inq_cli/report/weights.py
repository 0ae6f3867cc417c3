"""Which cells of a bit-width table hold the very same model as the previous bit width.

On small models several bit widths give bit-identical weights (each layer spans few octaves, so
the extra levels are never used); the flat part of such a curve is a property of the model, and the
report marks it. A run's final quantized weights (`last.ckpt`, else `best.ckpt`; the tensors that
carry an INQ mask) are compared by a hash.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Mapping

from inqnet.cli.errors import InqError
from inqnet.cli.run.folder import RunRecord
from inqnet.modules.errors import InputError
from inqnet.modules.inq.state import MASK

CHECKPOINTS = ("last.ckpt", "best.ckpt")


def quantized_weights_hash(state_dict: Mapping[str, Any]) -> str | None:
    """A hash of every INQ-quantized tensor (name, dtype, shape, bytes); None when there is none."""
    names = sorted(key[: -len(MASK)] for key in state_dict if key.endswith(MASK))
    names = [n for n in names if n in state_dict]
    if not names:
        return None
    digest = hashlib.sha256()
    for name in names:
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return digest.hexdigest()


def _byte_dtype() -> Any:
    import torch

    return torch.uint8


def final_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint holding the run's final weights (None when it kept none)."""
    return next((run_dir / name for name in CHECKPOINTS if (run_dir / name).is_file()), None)


def run_weights_hash(run_dir: Path) -> str | None:
    """The hash of a run's final quantized weights; None without a checkpoint or INQ state."""
    path = final_checkpoint(run_dir)
    if path is None:
        return None
    from inqnet.modules.checkpoints import read_checkpoint

    try:
        checkpoint = read_checkpoint(path)
    except InputError as err:
        raise InqError(str(err)) from None
    return quantized_weights_hash(checkpoint["state_dict"])


def weights_hasher() -> Callable[[RunRecord], str | None]:
    """`run_weights_hash` by run, each checkpoint read once (a report asks for a run per metric)."""
    cache: dict[Path, str | None] = {}

    def hashes(run: RunRecord) -> str | None:
        path = Path(run.path)
        if path not in cache:
            cache[path] = run_weights_hash(path)
        return cache[path]

    return hashes
