"""W&B tracking for runs: the recipe's `logger.wandb` section and the W&B logger built from it.

Only rank zero talks to W&B (Lightning's WandbLogger does nothing on other ranks, and the mode is
decided on rank zero only). Without credentials or without network the run is kept offline in the
run folder, and one line says how to sync it later. A grid point started by a W&B sweep agent
(`WANDB_SWEEP_ID` set) logs to W&B even when its recipe has no `logger.wandb` section.
"""
from __future__ import annotations

import netrc
import os
import socket
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

if TYPE_CHECKING:
    from inqnet.cli.config.schema import Recipe


DEFAULT_HOST = "https://api.wandb.ai"
_RANK_VARS = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "JSM_NAMESPACE_RANK")


@dataclass(frozen=True)
class WandbChoice:
    """What a run asks of W&B: the recipe's `logger.wandb` section, normalised."""

    project: str = "inq"
    entity: str | None = None
    tags: tuple[str, ...] = ()
    mode: str = "online"  # online | offline | disabled
    name: str | None = None
    group: str | None = None
    log_model: bool = False


def env_is_rank_zero(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process is global rank zero, from the launchers' environment variables.

    Valid before the Trainer exists (srun, torchrun, Lightning's subprocess launcher, multi-node by
    hand with NODE_RANK all set one of these on the other ranks).
    """
    env = os.environ if env is None else env
    return all(env.get(var, "0") in ("", "0") for var in _RANK_VARS)


def api_host(env: Mapping[str, str] | None = None) -> str:
    """The W&B server's host name (WANDB_BASE_URL, else api.wandb.ai)."""
    env = os.environ if env is None else env
    return urlparse(env.get("WANDB_BASE_URL") or DEFAULT_HOST).hostname or "api.wandb.ai"


def has_credentials(env: Mapping[str, str] | None = None) -> bool:
    """An API key in WANDB_API_KEY or in the netrc file `wandb login` writes."""
    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY"):
        return True
    path = Path(env.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        auth = netrc.netrc(str(path)).authenticators(api_host(env))
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the W&B server opens within `timeout` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_mode(
    settings: WandbChoice, env: Mapping[str, str] | None = None, probe: bool = True
) -> tuple[str, str | None]:
    """(mode, reason it is offline or None): WANDB_MODE wins, then the recipe, then the fallbacks."""
    env = os.environ if env is None else env
    forced = (env.get("WANDB_MODE") or "").lower()
    if forced in ("offline", "dryrun"):
        return "offline", "WANDB_MODE=offline"
    if forced == "disabled":
        return "disabled", None
    if settings.mode == "offline":
        return "offline", "logger.wandb.mode=offline"
    if settings.mode == "disabled":
        return "disabled", None
    if not has_credentials(env):
        return "offline", "no W&B credentials (WANDB_API_KEY or `wandb login`)"
    if probe and not reachable(api_host(env)):
        return "offline", f"{api_host(env)} is not reachable"
    return "online", None


def wandb_choice(logger_section: Any, env: Mapping[str, str] | None = None) -> WandbChoice | None:
    """The run's W&B wishes from the recipe's `logger` section (a model or a mapping), or defaults
    when a sweep agent started the run; None when the run does not use W&B."""
    env = os.environ if env is None else env
    section = getattr(logger_section, "wandb", None)
    if section is None and isinstance(logger_section, Mapping):
        section = logger_section.get("wandb")
    if section is None:
        if not env.get("WANDB_SWEEP_ID"):
            return None
        section = {"project": env.get("WANDB_PROJECT")}
    if hasattr(section, "model_dump"):
        section = section.model_dump()
    known = {f.name for f in fields(WandbChoice)}
    values = {k: v for k, v in dict(section).items() if k in known and v is not None}
    values["tags"] = tuple(values.get("tags", ()))
    return WandbChoice(**values)


def build_wandb_logger(
    logger_section: Any,
    run_dir: str | Path,
    run_name: str,
    config: dict[str, Any] | None = None,
    group: str | None = None,
) -> Any | None:
    """A Lightning WandbLogger writing under `run_dir/wandb`, or None when W&B is not wanted.

    `config` (the resolved recipe) becomes the W&B run's config on rank zero.
    """
    settings = wandb_choice(logger_section)
    if settings is None:
        return None
    if env_is_rank_zero():
        mode, reason = resolve_mode(settings)
    else:  # other ranks never initialise W&B; do not probe the network from them
        mode, reason = "offline", "not rank zero"
    if mode == "disabled":
        return None
    from inqnet.cli.run.wandb_logger import InqWandbLogger

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return InqWandbLogger(
        offline_reason=reason if mode == "offline" else None,
        project=settings.project,
        entity=settings.entity,
        tags=list(settings.tags) or None,
        name=settings.name or run_name,
        group=settings.group or group,
        log_model=settings.log_model and mode == "online",  # nothing to upload offline
        save_dir=str(run_dir),
        offline=mode == "offline",
        config=config,
    )


def csv_logger(run_dir: Path) -> CSVLogger:
    """Lightning's CSVLogger writing `metrics.csv` in the run folder; a resumed run appends to the
    rows already there (Lightning alone would delete them)."""
    path = run_dir / "metrics.csv"
    earlier = path.read_text(encoding="utf-8") if path.is_file() and rank_zero_only.rank == 0 else ""
    logger = CSVLogger(save_dir=str(run_dir), name="", version="")
    if earlier:
        writer = logger.experiment  # created now; it has just removed the old file
        path.write_text(earlier, encoding="utf-8")
        writer.metrics_keys = sorted(earlier.splitlines()[0].split(","))
    return logger


def build_loggers(recipe: Recipe, run_dir: Path) -> list[Logger]:
    """CSV metrics in the run folder, plus W&B when the recipe's logger section asks for it."""
    loggers: list[Logger] = []
    if recipe.logger.csv:
        loggers.append(csv_logger(run_dir))
    # W&B: rank zero only, offline without credentials or network, also for sweep agents' runs.
    wandb_logger = build_wandb_logger(recipe.logger, run_dir, run_dir.name, config=recipe.resolved())
    if wandb_logger is not None:
        loggers.append(wandb_logger)
    return loggers
