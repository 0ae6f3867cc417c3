"""`inq data synth glas|timit DIR`: writes data the real loaders read; refuses to overwrite."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inqnet.modules.datamodules.glas import scan_glas
from inqnet.modules.datamodules.timit_corpus import scan_timit, split_timit

REPO = Path(__file__).resolve().parents[3]


def inq(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "inqnet.cli.app", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


@pytest.mark.slow
def test_synth_glas_and_timit(tmp_path: Path) -> None:
    done = inq("data", "synth", "glas", str(tmp_path / "glas"))
    assert done.returncode == 0, done.stderr
    assert [len(v) for v in scan_glas(tmp_path / "glas").values()] == [20, 6, 4]
    done = inq("data", "synth", "timit", str(tmp_path / "timit"), "--seed", "3")
    assert done.returncode == 0, done.stderr
    splits = split_timit(scan_timit(tmp_path / "timit"))
    assert all(len(v) > 0 for v in splits.values())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_refuses_a_non_empty_folder_and_unknown_kind(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    done = inq("data", "synth", "glas", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path}: exists and is not empty; refusing to write a dataset over it"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    done = inq("data", "synth", "imagenet", str(tmp_path / "x"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
