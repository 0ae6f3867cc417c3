"""`inq train` / `inq eval` with ensembles: refusals, JSON shape, ensemble = offline average."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.inq_cli.clirunner import run_cli

TINY = ["model.layers=[8, M, 8, M]", "model.hidden=[16]", "inq.float_epochs=1", "inq.epochs_per_stage=1",
        "inq.portions=[0.5, 1.0]", "trainer.max_epochs=3", "trainer.enable_progress_bar=false"]


def test_refused_combination_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("train", "recipes/quickstart.yaml", "ensemble.members=3", "trainer.devices=2",
                   f"output_dir={tmp_path}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ensemble.members=3 does not fit 2 ranks" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "quickstart").exists()


@pytest.mark.slow
def test_ensemble_metric_is_the_offline_average_of_members(tmp_path: Path) -> None:
    proc = run_cli("train", "recipes/quickstart.yaml", "ensemble.members=2", f"output_dir={tmp_path}", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = (tmp_path / "quickstart").iterdir()
    ckpt = run_dir / "last.ckpt"
    proc = run_cli("eval", str(ckpt), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["members"]) == 2 and "test/acc" in out["ensemble"]

    from inqnet.cli.config.load import recipe_from_checkpoint
    from inqnet.cli.run.train import build_datamodule
    from inqnet.modules.checkpoints import load_model, read_checkpoint

    module = load_model(ckpt)
    recipe = recipe_from_checkpoint(read_checkpoint(ckpt)["hyper_parameters"]["recipe"], "ckpt")
    dm = build_datamodule(recipe)
    dm.setup("test")
    probs, labels = [[], []], []
    with torch.no_grad():
        for images, y in dm.test_dataloader():
            for m in range(2):
                probs[m].append(torch.softmax(module.members[m].net(images), dim=-1))
            labels.append(y)
    y = torch.cat(labels)
    member_acc = [float((torch.cat(p).argmax(-1) == y).float().mean()) for p in probs]
    mean = (torch.cat(probs[0]) + torch.cat(probs[1])) / 2
    ensemble_acc = float((mean.argmax(-1) == y).float().mean())
    assert ensemble_acc == pytest.approx(out["ensemble"]["test/acc"], abs=1e-6)
    assert member_acc == pytest.approx([m["test/acc"] for m in out["members"]], abs=1e-6)
    # the weights of the two members differ (own seeds), and both are fully quantized
    w0, w1 = module.members[0].net.state_dict(), module.members[1].net.state_dict()
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if k.endswith("weight"))
    proc = run_cli("verify", str(ckpt))
    assert proc.returncode == 0, proc.stdout[-2000:]

    # two separately trained checkpoints assemble into an ensemble too
    proc = run_cli("eval", str(ckpt), str(run_dir / "best.ckpt"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads(proc.stdout.strip().splitlines()[-1])["members"]) == 4
