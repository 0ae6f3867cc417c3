"""What happens around one run once its folder exists: where Lightning's chatter goes, what Ctrl+C
does, and what a failure leaves behind.

- Lightning's info lines, model summary and warnings ("GPU available", "LOCAL_RANK", hints) go to
  `<run_dir>/train.log` (`train.rank<N>.log` on other ranks), so an error is the one line on
  stderr; the progress bar (stdout) stays.
- Ctrl+C stops the run (not Lightning's "graceful shutdown" and exit 1): one line naming the last
  checkpoint and the exact `inq train ... --resume PATH`, exit 130. A Ctrl+C while a checkpoint is
  being saved waits for the save to finish (`InterruptGate.saving`); later presses are ignored.
- A failure leaves no folder holding only `resolved.yaml`: without a checkpoint a fresh run's folder
  is removed, with one `summary.json` says `"status": "failed"` and the error's line.
"""
from __future__ import annotations

import contextlib
import json
import logging
import shlex
import shutil
import signal
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from inqnet.cli.errors import InqInterrupted
from inqnet.modules.atomic import write_atomic
from inqnet.modules.errors import InputError, first_line, one_line

LOG_NAME = "train.log"
SUMMARY = "summary.json"
# The loggers Lightning writes its info lines to (each has its own stderr handler).
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")


class RunInterrupted(BaseException):
    """Ctrl+C inside a run. Not a KeyboardInterrupt, which Lightning turns into exit 1 and noise;
    not an Exception, so no `except Exception` swallows it."""


class InterruptGate:
    """The SIGINT handler of a run: raises `RunInterrupted` at once, except inside a checkpoint save,
    where it waits for the save to end; once stopping, further presses are ignored."""

    def __init__(self) -> None:
        self.saving_depth = 0
        self.pending = False
        self.stopping = False
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        self.pending = self.stopping = False
        if threading.current_thread() is threading.main_thread():  # signal handlers live there only
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _stop(self) -> None:
        self.pending, self.stopping = False, True
        raise RunInterrupted()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        if self.saving_depth:
            self.pending = True
            return
        self._stop()

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Defers Ctrl+C until the block (a checkpoint save) is over, then stops the run."""
        self.saving_depth += 1
        try:
            yield
        finally:
            self.saving_depth -= 1
        if self.pending and not self.saving_depth and not self.stopping and self._installed:
            self._stop()


GATE = InterruptGate()


class InqTrainer(pl.Trainer):
    """A Trainer whose checkpoint saves are never cut short by Ctrl+C."""

    def save_checkpoint(self, filepath: Any, weights_only: bool | None = None,
                        storage_options: Any | None = None) -> None:
        with GATE.saving():
            super().save_checkpoint(filepath, weights_only=weights_only, storage_options=storage_options)


class RunLog:
    """Sends Lightning's loggers and Python warnings to a file for a while, then puts them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # An append-only log, not a document: written as it happens (no atomic rename), created
        # only when something is logged.
        self.handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._saved: dict[str, tuple[list[logging.Handler], bool]] = {}
        self._warnings: warnings.catch_warnings | None = None  # type: ignore[type-arg]

    def _show_warning(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
        self.handler.handle(logging.LogRecord("py.warnings", logging.WARNING, filename, lineno, text, None, None))

    def start(self) -> None:
        for name in LIGHTNING_LOGGERS:
            logger = logging.getLogger(name)
            self._saved[name] = (list(logger.handlers), logger.propagate)
            logger.handlers, logger.propagate = [self.handler], False
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.showwarning = self._show_warning

    def stop(self) -> None:
        if self._warnings is not None:
            self._warnings.__exit__(None, None, None)
            self._warnings = None
        for name, (handlers, propagate) in self._saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate
        self._saved.clear()
        self.handler.close()


def quiet_callbacks(trainer_kwargs: dict[str, Any]) -> list[pl.Callback]:
    """Lightning's model summary as log lines (to train.log) instead of a rich table on the screen."""
    from lightning.pytorch.callbacks import ModelSummary

    return [ModelSummary()] if trainer_kwargs.get("enable_model_summary", True) is not False else []


def log_path(run_dir: Path) -> Path:
    """This rank's log file in the run folder."""
    rank = rank_zero_only.rank
    return run_dir / (LOG_NAME if rank == 0 else f"train.rank{rank}.log")


def checkpoints_in(run_dir: Path) -> list[Path]:
    """The non-empty checkpoints a run folder holds (atomic writes' temporaries excluded)."""
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.glob("*.ckpt") if not p.name.startswith(".") and p.is_file()
                  and p.stat().st_size > 0)


def resume_command(command: Sequence[str], checkpoint: Path) -> str:
    """`inq train <recipe> <overrides...> --resume <checkpoint>`, quoted for a shell."""
    return shlex.join(["inq", "train", *command, "--resume", str(checkpoint)])


class RunLifecycle:
    """Context for the part of a run after its folder exists (see the module docstring).

    `fresh`: this process made the folder (so it may remove it); `command`: the recipe argument and
    overrides as typed, for the resume hint (default: the run's `resolved.yaml`). Set `trainer` once
    there is one and `training` when fitting starts.
    """

    def __init__(self, run_dir: Path, *, fresh: bool, recipe_name: str,
                 command: Sequence[str] | None = None) -> None:
        self.run_dir, self.fresh, self.recipe_name = run_dir, fresh, recipe_name
        self.command = list(command) if command is not None else [str(run_dir / "resolved.yaml")]
        self.trainer: pl.Trainer | None = None
        self.training = False
        self.log = RunLog(log_path(run_dir))

    def __enter__(self) -> RunLifecycle:
        self.log.start()
        GATE.install()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        GATE.stopping = True  # presses during the clean-up are ignored
        try:
            self.log.stop()
            if exc is None:
                return False
            if isinstance(exc, (RunInterrupted, KeyboardInterrupt)) and not isinstance(exc, InqInterrupted):
                raise self._interrupted() from None
            if rank_zero_only.rank == 0:
                self._failed(exc)
            return False
        finally:
            GATE.restore()

    # ------------------------------------------------------------------ outcomes
    def _where(self) -> tuple[int | None, int | None]:
        if self.trainer is None:
            return None, None
        return self.trainer.current_epoch, self.trainer.global_step

    def _summary(self, status: str, **extra: Any) -> None:
        epoch, step = self._where()
        record = {"status": status, **extra, "run_dir": str(self.run_dir), "recipe": self.recipe_name,
                  "epoch": epoch, "step": step,
                  "checkpoints": {p.stem: str(p) for p in checkpoints_in(self.run_dir)}}
        with contextlib.suppress(OSError):  # a full disk must not hide the error that stopped the run
            write_atomic(self.run_dir / SUMMARY, json.dumps(record, indent=2) + "\n")

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.run_dir)

    def _stop_other_ranks(self) -> None:
        """Ranks Lightning launched as processes would wait for rank 0 forever: end them (they save nothing)."""
        if self.trainer is None:
            return
        from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
        from lightning.pytorch.trainer.connectors.signal_connector import _get_sigkill_signal

        launcher = getattr(self.trainer.strategy, "launcher", None)
        if isinstance(launcher, _SubprocessScriptLauncher):
            launcher.kill(_get_sigkill_signal())

    def _interrupted(self) -> BaseException:
        self._stop_other_ranks()
        if rank_zero_only.rank != 0:
            return SystemExit(InqInterrupted.exit_code)  # rank 0 says what happened
        epoch, step = self._where()
        at = f" at epoch {epoch}, step {step}" if epoch is not None else ""
        from inqnet.cli.slurm.requeue import resume_checkpoint

        last = resume_checkpoint(self.run_dir)
        if last is not None:
            command = resume_command(self.command, last)
            self._summary("interrupted", resume=command)
            return InqInterrupted(f"stopped{at}; last checkpoint: {last}; resume with: {command}")
        if self.fresh:
            self._remove()
            return InqInterrupted(f"stopped{at}, before the first checkpoint: nothing to resume "
                                  f"(removed {self.run_dir})")
        return InqInterrupted(f"stopped{at}, before the first checkpoint: nothing to resume")

    def _failed(self, exc: BaseException) -> None:
        if not (self.fresh or self.training):  # a resumed run that failed in set-up: left as it was
            return
        if checkpoints_in(self.run_dir):
            shown = one_line(str(exc)) if isinstance(exc, InputError) else first_line(exc)  # the line the user sees
            self._summary("failed", error=shown[:500])
        elif self.fresh:
            self._remove()
