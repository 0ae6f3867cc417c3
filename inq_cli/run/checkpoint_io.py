"""How an `inq train` run writes and reads its checkpoints (Lightning's CheckpointIO plugin).

Lightning writes a checkpoint to a temporary file and moves it onto the destination; when the two
lie on different file systems the move copies, truncating the old file first, so a disk that fills
during a save leaves no good `last.ckpt`. Here every checkpoint (`last`, `best`, `float`,
`preempted`, `hpc_ckpt_*`: all go through `trainer.save_checkpoint`, hence through this plugin) is
serialized in memory, written through `inqnet.modules.atomic` (a temporary file in the destination
folder, flushed, fsynced, renamed over the old one): a failure leaves the old file whole and no
temporary behind. A full disk is one line naming the path, the checkpoint's size and the free
space. Loads use `weights_only=True` always, Lightning's own resume included, whatever the
caller or the environment asks for.
"""
from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from inqnet.modules.atomic import atomic_path
from inqnet.modules.checkpoints import safe_load
from inqnet.modules.errors import InputError

# errno values that mean "no room": the device, the user's quota, or the largest file allowed.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class CheckpointWriteError(InputError):
    """A checkpoint could not be written (full disk, quota, permissions); the old file is intact."""


def human_size(size: int) -> str:
    """Bytes as a short human-readable size (``38.4 kB``, ``1.2 GB``)."""
    if size < 1000:
        return f"{size} B"
    value, unit = float(size), "B"
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000:
            break
    return f"{value:.1f} {unit}"


def free_space(folder: Path) -> int | None:
    """Bytes free for this user in `folder`'s file system, None when it cannot be asked."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _write_bytes(handle: io.BufferedWriter, data: memoryview) -> None:
    """Writes all of `data` and flushes it to the OS (a full disk raises OSError here)."""
    handle.write(data)
    handle.flush()


def _write_error(path: Path, size: int, err: OSError) -> CheckpointWriteError:
    kept = " (the previous file is intact)" if path.is_file() else ""
    if err.errno in NO_ROOM:
        free = free_space(path.parent)
        room = f"{human_size(free)} free" if free is not None else "free space unknown"
        return CheckpointWriteError(f"{path}: disk full: the checkpoint needs {human_size(size)}, {room} in "
                                    f"{path.parent}{kept}; free some space, then resume from the last good checkpoint")
    reason = err.strerror or type(err).__name__
    return CheckpointWriteError(f"{path}: cannot write the checkpoint ({reason}){kept}")


def save_atomic(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Writes `checkpoint` with `torch.save` to `path` through a fsynced temporary file in its folder
    and a rename; `CheckpointWriteError` (the old file intact, no temporary left) when it fails."""
    target = Path(path)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)  # serialize first: the size is known and nothing is half-written
    data = buffer.getbuffer()
    try:
        with atomic_path(target) as tmp, tmp.open("wb") as handle:
            _write_bytes(handle, data)
    except OSError as err:
        raise _write_error(target, data.nbytes, err) from None
    finally:
        data.release()
    return target


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO that writes atomically in the destination folder and loads safely."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or not _is_local(path):
            super().save_checkpoint(checkpoint, path, storage_options)  # remote stores: Lightning's own way
            return
        save_atomic(checkpoint, path)

    def load_checkpoint(self, path: _PATH, map_location: Optional[Callable] = lambda storage, loc: storage,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        """Lightning's resume, `trainer.test(ckpt_path=...)` and friends: `weights_only=True`
        whatever `weights_only` says (a checkpoint never runs code)."""
        if not _is_local(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return safe_load(path, map_location=map_location)


def _is_local(path: _PATH) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(get_filesystem(path), LocalFileSystem)


def with_checkpoint_io(trainer_kwargs: dict[str, Any]) -> dict[str, Any]:
    """`trainer_kwargs` with `AtomicCheckpointIO` added to its plugins (unless the recipe or the
    strategy brings its own CheckpointIO, which then stays in charge)."""
    from lightning.fabric.plugins import CheckpointIO
    from lightning.pytorch.strategies import Strategy

    plugins = trainer_kwargs.get("plugins")
    plugins = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    strategy = trainer_kwargs.get("strategy")
    if any(isinstance(p, CheckpointIO) for p in plugins) or (
            isinstance(strategy, Strategy) and getattr(strategy, "_checkpoint_io", None) is not None):
        return trainer_kwargs
    return {**trainer_kwargs, "plugins": [*plugins, AtomicCheckpointIO()]}
