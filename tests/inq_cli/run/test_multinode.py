"""Multi-node rendezvous: two `inq train` processes started as two nodes on 127.0.0.1
(`trainer.num_nodes=2`, one device each, NODE_RANK 0 and 1) finish a tiny recipe together."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "threads=1", "model.layers=[8, M]", "model.hidden=[16]", "data.batch_size=64",
    "inq.float_epochs=1", "inq.epochs_per_stage=1", "inq.portions=[0.5, 1.0]", "trainer.max_epochs=3",
    "trainer.accelerator=cpu", "trainer.strategy=ddp", "trainer.enable_progress_bar=false",
    "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
    "trainer.num_nodes=2", "trainer.devices=1",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_on_localhost_train_together(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLURM_", "WANDB_")) and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    # The nodes share the run folder (a shared file system, as on clusters) and agree on its name.
    base.update(PYTHONPATH=str(ROOT), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
                INQ_RUN_NAME="two-nodes")
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "inqnet.cli.app", "train", "recipes/quickstart.yaml", *TINY,
               f"output_dir={tmp_path / 'runs'}"]
        log = (tmp_path / f"node{node}.log").open("w")
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env={**base, "NODE_RANK": str(node)},
                                       stdout=log, stderr=subprocess.STDOUT), log))
    try:
        codes = [proc.wait(timeout=400) for proc, _ in procs]
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = [(tmp_path / f"node{n}.log").read_text() for n in (0, 1)]
    assert codes == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    runs = list((tmp_path / "runs" / "quickstart").iterdir())
    # Lightning's info lines go to the run's log (stderr keeps only errors)
    lightning = "".join(p.read_text(errors="replace") for p in runs[0].glob("train*.log"))
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in lightning and "GLOBAL_RANK: 1, MEMBER: 2/2" in lightning
    assert [r.name for r in runs] == ["two-nodes"]
    ckpt = torch.load(runs[0] / "last.ckpt", map_location="cpu", weights_only=False)
    # 2 batches of the training set per rank and epoch, 3 epochs: the ranks stepped together.
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 6
    masks = [v for k, v in ckpt["state_dict"].items() if k.endswith("_inq_mask")]
    assert masks and all(bool(m.all()) for m in masks)
