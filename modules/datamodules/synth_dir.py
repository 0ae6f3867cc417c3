"""Write a generated dataset folder all at once: into a temporary sibling, then rename into place.

So an interrupted `inq data synth` or first-use generation never leaves a half-written dataset
that a later run would take for a complete one.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from inqnet.modules.errors import data_error


def is_empty_or_missing(root: Path) -> bool:
    """True when ``root`` does not exist or is an empty folder."""
    return not root.exists() or (root.is_dir() and not any(root.iterdir()))


def write_dataset_dir(root: str | Path, write: Callable[[Path], object]) -> Path:
    """Run ``write(tmp)`` on a fresh temporary folder next to ``root``, then move it to ``root``.

    ``root`` must be missing or empty (DataError otherwise).
    """
    root = Path(root)
    if not is_empty_or_missing(root):
        raise data_error(root, "exists and is not empty; refusing to write a dataset over it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".partial", dir=root.parent))
    try:
        write(tmp)
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_empty_or_missing(root):
            raise
        # another process (a DDP rank started at the same time) put the same dataset there first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
