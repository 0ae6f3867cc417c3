"""W&B: the `logger.wandb` section, offline fallback, rank-zero detection, and INQ's logged numbers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from inqnet.modules.inq.monitor import compression_ratio, frozen_fraction
from inqnet.cli.errors import InqError
from inqnet.cli.run.loggers import WandbChoice, env_is_rank_zero, has_credentials, resolve_mode, wandb_choice
from inqnet.cli.run.wandb_logger import sync_hint

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Layer:
    name: str
    bits: int
    numel: int
    frozen_fraction: float


def test_logger_wandb_section_in_recipes() -> None:
    from inqnet.cli.config.load import load_recipe

    quickstart = ROOT / "recipes" / "quickstart.yaml"
    recipe = load_recipe(quickstart, ["logger.wandb.project=inq", "logger.wandb.entity=lab",
                                      "logger.wandb.tags=[vgg, 8bit]", "logger.wandb.mode=offline"])
    choice = wandb_choice(recipe.logger, {})
    assert choice == WandbChoice(project="inq", entity="lab", tags=("vgg", "8bit"), mode="offline")
    with pytest.raises(InqError, match="logger.wandb.mode"):
        load_recipe(quickstart, ["logger.wandb.mode=sometimes"])
    with pytest.raises(InqError, match="logger.wandb.projct"):
        load_recipe(quickstart, ["logger.wandb.projct=typo"])


def test_offline_without_credentials_or_network(tmp_path: Path) -> None:
    no_netrc = {"NETRC": str(tmp_path / "absent")}
    assert resolve_mode(WandbChoice(), no_netrc) == (
        "offline", "no W&B credentials (WANDB_API_KEY or `wandb login`)")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    assert has_credentials({"NETRC": str(netrc)})
    assert not has_credentials({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.org"})
    # Credentials but a server that does not answer: offline, naming the host.
    env = {"WANDB_API_KEY": "k" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}
    mode, reason = resolve_mode(WandbChoice(), env)
    assert mode == "offline" and reason == "127.0.0.1 is not reachable"
    assert resolve_mode(WandbChoice(), {**env, "WANDB_MODE": "offline"}) == ("offline", "WANDB_MODE=offline")
    assert resolve_mode(WandbChoice(mode="disabled"), env) == ("disabled", None)
    assert resolve_mode(WandbChoice(mode="offline"), env)[0] == "offline"
    line = sync_hint("runs/x/wandb/offline-run-1", "no W&B credentials")
    assert "\n" not in line and line.endswith("wandb sync runs/x/wandb/offline-run-1")


def test_rank_zero_from_launcher_environment() -> None:
    assert env_is_rank_zero({})
    assert env_is_rank_zero({"SLURM_PROCID": "0", "LOCAL_RANK": "0", "NODE_RANK": "0"})
    for var in ("LOCAL_RANK", "SLURM_PROCID", "NODE_RANK", "RANK"):
        assert not env_is_rank_zero({var: "1"})


def test_sweep_agent_runs_log_without_a_section() -> None:
    assert wandb_choice(None, {}) is None
    assert wandb_choice({"wandb": None}, {}) is None
    assert wandb_choice(None, {"WANDB_SWEEP_ID": "abc", "WANDB_PROJECT": "p"}).project == "p"
    assert wandb_choice(None, {"WANDB_SWEEP_ID": "abc"}).project == "inq"
    assert wandb_choice({"wandb": {"project": "q", "tags": ["a"]}}, {}) == WandbChoice(project="q", tags=("a",))


def test_frozen_fraction_and_compression_ratio() -> None:
    layers = [Layer("a", 5, 300, 1.0), Layer("b", 5, 100, 1.0)]
    assert frozen_fraction(layers) == 1.0
    assert compression_ratio(layers) == pytest.approx(6.4)  # 32 / 5, the paper's 5-bit figure
    half = [Layer("a", 4, 100, 0.5), Layer("b", 4, 300, 0.0)]
    assert frozen_fraction(half) == pytest.approx(0.125)
    assert compression_ratio(half) == pytest.approx(32 * 400 / (50 * 4 + 350 * 32))
    assert compression_ratio([]) == 1.0 and frozen_fraction([]) == 0.0


# --- a real offline W&B run: its folder holds the logged keys -------------------------------------

def _wandb_records(path: Path):
    """The records of a `.wandb` file (LevelDB-style log of protobuf `Record`s), as W&B writes them."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            break
        chunk, pos = data[pos:pos + length], pos + length
        if kind in (1, 2):
            pending = chunk
        else:
            pending += chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def _history_keys(run_dir: Path, wait_s: float = 60.0) -> tuple[set[str], dict]:
    """History keys and config of a finished offline run (W&B's writer may still be flushing it)."""
    import time

    path = next(run_dir.glob("run-*.wandb"))
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if any(r.WhichOneof("record_type") == "exit" for r in _wandb_records(path)):
                break
        except Exception:  # noqa: BLE001 - a record still being written
            pass
        assert time.monotonic() < deadline, f"{path}: the run never wrote its exit record"
        time.sleep(0.2)
    keys: set[str] = set()
    config: dict = {}
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            keys |= {item.key or "/".join(item.nested_key) for item in record.history.item}
        elif kind == "run":
            config = {item.key: item.value_json for item in record.run.config.update}
    return keys, config


@pytest.mark.slow
def test_offline_run_folder_holds_the_logged_keys(tmp_path: Path, monkeypatch, capsys) -> None:
    import lightning.pytorch as pl
    import torch
    import wandb
    from lightning.pytorch.loggers import CSVLogger

    from inqnet.modules.inq.monitor import InqTracker
    from inqnet.cli.run.loggers import build_wandb_logger
    from inqnet.modules.inq import INQCallback

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val/acc", (self.net(x).argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    gen = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(48, 6, generator=gen), torch.randint(0, 3, (48,), generator=gen))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    run_dir = tmp_path / "runs" / "tiny" / "20260101-000000"
    wb = build_wandb_logger({"wandb": {"project": "inq-tests", "tags": ["t"]}}, run_dir, run_dir.name,
                            config={"inq": {"bits": 4}})
    csv_logger = CSVLogger(save_dir=str(run_dir), name="", version="")
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", devices=1, logger=[csv_logger, wb], enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, default_root_dir=str(run_dir),
        callbacks=[INQCallback(bits=4, portions=(0.5, 1.0), epochs_per_stage=1, float_epochs=1), InqTracker()],
    )
    try:
        trainer.fit(Tiny(), train_dataloaders=loader, val_dataloaders=loader)
    finally:
        wandb.finish()
    out = capsys.readouterr().out
    hints = [line for line in out.splitlines() if line.startswith("wandb: offline")]
    assert len(hints) == 1 and "sync later with: wandb sync" in hints[0] and "no W&B credentials" in hints[0]
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and hints[0].endswith(str(offline[0]))
    keys, config = _history_keys(offline[0])
    for key in ["val/acc", "inq/frozen_fraction", "inq/compression_ratio", "inq/stage", "stage/val/acc",
                "stage/frozen_fraction", "stage/compression_ratio", "stage/stage", "trainer/global_step"]:
        assert key in keys, (key, sorted(keys))
    histograms = {k.split("/_type")[0] for k in keys if k.startswith("weights/") and k.endswith("/_type")}
    assert histograms == {"weights/net.0.weight", "weights/net.2.weight"}
    assert "inq/stages/_type" in keys  # the per-stage table at the end
    assert config.get("inq") == '{"bits":4}' or '"bits": 4' in config.get("inq", "")
    # The CSV log stays, with the same INQ numbers.
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"inq/compression_ratio", "inq/frozen_fraction", "stage/val/acc", "val/acc"} <= set(header)
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    ratios = [r.split(",")[header.index("inq/compression_ratio")] for r in rows[1:]]
    assert float([r for r in ratios if r][-1]) == pytest.approx(8.0)  # fully frozen at 4 bits: 32/4
