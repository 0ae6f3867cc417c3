"""Generated dataset folders appear complete or not at all."""
from __future__ import annotations

from pathlib import Path

import pytest

from inqnet.modules.datamodules.synth_dir import write_dataset_dir
from inqnet.modules.errors import DataError


def test_complete_or_nothing(tmp_path: Path) -> None:
    def ok(tmp: Path) -> None:
        (tmp / "a.txt").write_text("a")

    def crash(tmp: Path) -> None:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_dataset_dir(tmp_path / "d", crash)
    assert list(tmp_path.iterdir()) == []
    write_dataset_dir(tmp_path / "d", ok)
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["a.txt"]
    with pytest.raises(DataError, match="not empty"):
        write_dataset_dir(tmp_path / "d", ok)


def test_a_concurrent_writer_that_finished_first_wins(tmp_path: Path) -> None:
    root = tmp_path / "d"

    def racing(tmp: Path) -> None:
        (tmp / "mine.txt").write_text("late")
        root.mkdir()
        (root / "theirs.txt").write_text("first")  # another rank finished meanwhile

    write_dataset_dir(root, racing)
    assert [p.name for p in root.iterdir()] == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # our temporary folder is gone
