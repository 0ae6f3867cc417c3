"""Checkpoints are written atomically in their own folder and read with weights_only=True, always:
a full disk (a real tmpfs, or ENOSPC mid-file) leaves the last good checkpoint whole and resumable,
no temporary behind, and one line naming the path, the checkpoint's size and the free space."""
from __future__ import annotations

import contextlib
import errno
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from inqnet.cli.run import checkpoint_io
from inqnet.cli.run.checkpoint_io import AtomicCheckpointIO, CheckpointWriteError, human_size, with_checkpoint_io
from inqnet.modules.errors import InputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "pre_layout"
# The overrides the fixtures were trained with (tests/fixtures/pre_layout/README.md), but scheduler.t_max=1
# (not 2): the cosine must fit one INQ stage, a check made after they were written; a resume may change it.
TINY = ["model.layers=[8,M,16,M]", "model.hidden=[16]", "inq.float_epochs=2", "inq.epochs_per_stage=1",
        "scheduler.t_max=1"]


def _payload(size: int) -> dict[str, torch.Tensor]:
    return {"state_dict": {"w": torch.arange(size // 4, dtype=torch.float32)}}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_enospc_mid_file_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint(_payload(4000), path)
    good = path.read_bytes()

    def half_then_full(handle, data) -> None:  # type: ignore[no-untyped-def]
        handle.write(data[: len(data) // 2])
        handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io, "_write_bytes", half_then_full)
    with pytest.raises(CheckpointWriteError) as info:
        io.save_checkpoint(_payload(40_000), path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: disk full: the checkpoint needs ")
    assert "free in" in message and "the previous file is intact" in message
    assert isinstance(info.value, InputError)  # the CLI prints it as one line, exit 2
    assert path.read_bytes() == good and _leftovers(tmp_path) == []


def test_other_write_errors_are_one_line_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(handle, data) -> None:  # type: ignore[no-untyped-def]
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(checkpoint_io, "_write_bytes", refuse)
    with pytest.raises(CheckpointWriteError, match=r"new\.ckpt: cannot write the checkpoint \(Permission denied\)$"):
        AtomicCheckpointIO().save_checkpoint(_payload(400), tmp_path / "new.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_loads_are_weights_only_whatever_the_caller_or_environment_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, evil)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    before = sorted(tmp_path.iterdir())
    with pytest.raises(InputError, match="evil.ckpt: not a readable checkpoint"):
        AtomicCheckpointIO().load_checkpoint(evil, weights_only=False)
    assert not marker.exists() and sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize("name", ["last", "float", "midrun"])
def test_checkpoints_from_before_the_layout_load(name: str) -> None:
    ckpt = AtomicCheckpointIO().load_checkpoint(FIXTURES / f"{name}.ckpt")
    assert ckpt["state_dict"] and ckpt["hyper_parameters"]["recipe"]["inq"]["bits"] == 5


def test_the_plugin_joins_the_recipe_plugins_unless_one_does_io() -> None:
    plugins = with_checkpoint_io({"max_epochs": 1, "plugins": "bf16-mixed"})["plugins"]
    assert plugins[0] == "bf16-mixed" and isinstance(plugins[1], AtomicCheckpointIO)
    own = checkpoint_io.TorchCheckpointIO()
    assert with_checkpoint_io({"plugins": [own]})["plugins"] == [own]
    assert human_size(999) == "999 B" and human_size(38_409) == "38.4 kB" and human_size(2_500_000) == "2.5 MB"


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path, leave: int) -> Path:
    """A file that leaves about `leave` bytes free in `folder`'s file system."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with filler.open("wb") as handle:
        handle.truncate(0)
        handle.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_tmpfs_keeps_the_good_checkpoint(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "512k") as disk:
        path = disk / "last.ckpt"
        AtomicCheckpointIO().save_checkpoint(_payload(40_000), path)
        good = path.read_bytes()
        _fill(disk, leave=20_000)
        needs = re.escape(f"disk full: the checkpoint needs {human_size(len(good))}, ")  # the same size again
        with pytest.raises(CheckpointWriteError, match=needs + r"\d+\.\d kB free in"):
            AtomicCheckpointIO().save_checkpoint(_payload(40_000), path)
        assert path.read_bytes() == good and _leftovers(disk) == []
        loaded = AtomicCheckpointIO().load_checkpoint(path)["state_dict"]["w"]
        assert torch.equal(loaded, _payload(40_000)["state_dict"]["w"])


def test_inq_train_on_a_full_disk_ends_in_one_line_and_still_resumes(  # type: ignore[no-untyped-def]
        tmp_path: Path, call_main) -> None:
    with _tmpfs(tmp_path / "disk", "2m") as disk:
        run = disk / "quickstart" / "run"
        run.mkdir(parents=True)
        shutil.copy(FIXTURES / "midrun.ckpt", run / "last.ckpt")  # a good checkpoint, mid-run
        shutil.copy(FIXTURES / "resolved.yaml", run / "resolved.yaml")
        good = (run / "last.ckpt").read_bytes()
        filler = _fill(disk, leave=24_000)  # room for the logs, not for a 38 kB checkpoint
        argv = ["train", "recipes/quickstart.yaml", f"output_dir={disk}", *TINY, "--resume", str(run / "last.ckpt")]
        result = call_main(*argv)
        assert result.code == 2, result.err
        lines = [line for line in result.err.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in result.err, result.err
        assert lines[0].startswith(f"error: {run / 'last.ckpt'}: disk full: the checkpoint needs ")
        assert "free in" in lines[0]
        assert (run / "last.ckpt").read_bytes() == good
        assert not [p.name for p in run.iterdir() if p.name.startswith(".") and p.suffix == ".tmp"]
        filler.unlink()  # space again: the last good checkpoint resumes to the end
        resumed = call_main(*argv)
        assert resumed.code == 0, resumed.err
        assert torch.load(run / "last.ckpt", weights_only=True)["epoch"] == 5


def test_every_checkpoint_of_a_run_goes_through_the_plugin(tmp_path: Path, call_main,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    save = checkpoint_io.save_atomic
    def spy(ckpt: dict, path: Path) -> Path:  # type: ignore[type-arg]
        written.append(Path(path).name)
        return save(ckpt, path)

    monkeypatch.setattr(checkpoint_io, "save_atomic", spy)
    result = call_main("train", "recipes/quickstart.yaml", f"output_dir={tmp_path}", "model.layers=[4,M]",
                       "model.hidden=[8]", "inq.float_epochs=1", "inq.epochs_per_stage=1", "inq.portions=[0.5,1.0]",
                       "scheduler.t_max=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                       "trainer.limit_test_batches=1")
    assert result.code == 0, result.err
    assert {"float.ckpt", "best.ckpt", "last.ckpt"} <= set(written), written
    run = next((tmp_path / "quickstart").iterdir())
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
