"""Lightning's WandbLogger, plus the one line an offline run prints on how to sync it later."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only


def sync_hint(run_path: str | Path, reason: str | None) -> str:
    """The one line an offline run prints."""
    return f"wandb: offline ({reason or 'offline mode'}); sync later with: wandb sync {run_path}"


class InqWandbLogger(WandbLogger):
    """A WandbLogger that stays quiet offline except for one `wandb sync` line (rank zero only)."""

    def __init__(self, *, offline_reason: str | None = None, **kwargs: Any) -> None:
        if kwargs.get("offline"):
            import wandb

            kwargs.setdefault("settings", wandb.Settings(silent=True))
        super().__init__(**kwargs)
        init = getattr(self, "_wandb_init", None)
        if isinstance(init, dict) and init.get("anonymous") is None:
            init.pop("anonymous", None)  # W&B warns about the setting even when it is unset
        self.offline_reason = offline_reason
        self._hint_shown = False

    @property
    def experiment(self) -> Any:
        run = WandbLogger.experiment.fget(self)  # type: ignore[attr-defined]
        if self._offline and not self._hint_shown and rank_zero_only.rank == 0 and getattr(run, "dir", None):
            self._hint_shown = True
            print(sync_hint(Path(run.dir).parent, self.offline_reason), flush=True)
        return run

    @property
    def run_path(self) -> Path | None:
        """The W&B run folder (`.../wandb/offline-run-*`) on rank zero once started, else None."""
        run = self._experiment
        return Path(run.dir).parent if run is not None and getattr(run, "dir", None) else None
