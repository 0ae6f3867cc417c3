"""W&B: the `logger.wandb` section, offline fallback, rank-zero detection, and INQ's logged numbers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from inq_cli.inq_tracker import compression_ratio, frozen_fraction
from inq_cli.tracking import (
    LoggerSettings,
    WandbSettings,
    env_is_rank_zero,
    has_credentials,
    resolve_mode,
    sync_hint,
    wandb_settings_for,
)


@dataclass
class Layer:
    name: str
    bits: int
    numel: int
    frozen_fraction: float


def test_section_schema() -> None:
    section = LoggerSettings(wandb={"project": "inq", "entity": "lab", "tags": ["vgg"], "mode": "offline"})
    assert section.wandb.tags == ["vgg"] and section.wandb.mode == "offline"
    with pytest.raises(ValidationError):
        WandbSettings(mode="sometimes")
    with pytest.raises(ValidationError):
        WandbSettings(projct="typo")


def test_offline_without_credentials_or_network(tmp_path: Path) -> None:
    no_netrc = {"NETRC": str(tmp_path / "absent")}
    assert resolve_mode(WandbSettings(), no_netrc) == (
        "offline", "no W&B credentials (WANDB_API_KEY or `wandb login`)")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    assert has_credentials({"NETRC": str(netrc)})
    assert not has_credentials({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.org"})
    # Credentials but a server that does not answer: offline, naming the host.
    env = {"WANDB_API_KEY": "k" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}
    mode, reason = resolve_mode(WandbSettings(), env)
    assert mode == "offline" and reason == "127.0.0.1 is not reachable"
    assert resolve_mode(WandbSettings(), {**env, "WANDB_MODE": "offline"}) == ("offline", "WANDB_MODE=offline")
    assert resolve_mode(WandbSettings(mode="disabled"), env) == ("disabled", None)
    assert resolve_mode(WandbSettings(mode="offline"), env)[0] == "offline"
    line = sync_hint("runs/x/wandb/offline-run-1", "no W&B credentials")
    assert "\n" not in line and line.endswith("wandb sync runs/x/wandb/offline-run-1")


def test_rank_zero_from_launcher_environment() -> None:
    assert env_is_rank_zero({})
    assert env_is_rank_zero({"SLURM_PROCID": "0", "LOCAL_RANK": "0", "NODE_RANK": "0"})
    for var in ("LOCAL_RANK", "SLURM_PROCID", "NODE_RANK", "RANK"):
        assert not env_is_rank_zero({var: "1"})


def test_sweep_agent_runs_log_without_a_section() -> None:
    assert wandb_settings_for(None, {}) is None
    assert wandb_settings_for(None, {"WANDB_SWEEP_ID": "abc", "WANDB_PROJECT": "p"}).project == "p"
    assert wandb_settings_for({"wandb": {"project": "q"}}, {}).project == "q"


def test_frozen_fraction_and_compression_ratio() -> None:
    layers = [Layer("a", 5, 300, 1.0), Layer("b", 5, 100, 1.0)]
    assert frozen_fraction(layers) == 1.0
    assert compression_ratio(layers) == pytest.approx(6.4)  # 32 / 5, the paper's 5-bit figure
    half = [Layer("a", 4, 100, 0.5), Layer("b", 4, 300, 0.0)]
    assert frozen_fraction(half) == pytest.approx(0.125)
    assert compression_ratio(half) == pytest.approx(32 * 400 / (50 * 4 + 350 * 32))
    assert compression_ratio([]) == 1.0 and frozen_fraction([]) == 0.0
