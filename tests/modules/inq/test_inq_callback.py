"""INQCallback: stage timing, frozen entries bit-exact under every optimizer, all in P at the end."""
from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from inqnet.modules.inq import INQCallback, layer_report, quantize
from inqnet.modules.inq.state import MASK, N1, tracked_targets
from tests.modules.inq.inq_tiny import TinyNet, tiny_loader, trainer_kwargs


class FrozenWatch(pl.Callback):
    """Asserts, around every batch, that frozen entries never change and masks never shrink."""

    def __init__(self) -> None:
        self.snap: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.fractions: dict[int, float] = {}
        self.lrs: dict[int, float] = {}
        self.steps_checked = 0

    def _check(self, pl_module: pl.LightningModule) -> None:
        for t in tracked_targets(pl_module):
            mask, w = t.buffer(MASK), t.param.detach()
            if t.name in self.snap:
                old_mask, old_w = self.snap[t.name]
                assert torch.all(mask[old_mask]), f"{t.name}: a frozen weight was unfrozen"
                assert torch.equal(w[old_mask], old_w[old_mask]), f"{t.name}: a frozen weight moved"
                self.steps_checked += 1
            self.snap[t.name] = (mask.clone(), w.clone())

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._check(pl_module)
        if batch_idx == 0:
            rows = layer_report(pl_module)
            self.fractions[trainer.current_epoch] = sum(r.frozen_fraction for r in rows) / len(rows)
            self.lrs[trainer.current_epoch] = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._check(pl_module)


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "sgd_nesterov", "adam", "adamw"])
def test_frozen_stay_exact_and_all_in_p(tmp_path, optimizer: str) -> None:
    torch.manual_seed(0)
    model = TinyNet(optimizer=optimizer, lr=0.01 if optimizer.startswith("adam") else 0.05)
    watch = FrozenWatch()
    inq = INQCallback(bits=4, portions=[0.5, 0.75, 0.875, 1.0], epochs_per_stage=1, float_epochs=1)
    pl.Trainer(max_epochs=6, callbacks=[inq, watch], **trainer_kwargs(tmp_path)).fit(model, tiny_loader())
    assert watch.steps_checked > 40
    # stage k starts at epoch float_epochs + k: fraction frozen before the first batch
    assert watch.fractions[0] == 0.0
    for epoch, portion in zip(range(1, 5), [0.5, 0.75, 0.875, 1.0]):
        assert watch.fractions[epoch] == pytest.approx(portion, abs=0.02)
    rows = layer_report(model)
    assert {r.name for r in rows} == {"conv.weight", "fc.weight"}
    assert all(r.fully_quantized and r.frozen_fraction == 1.0 for r in rows)
    for t in tracked_targets(model):
        w = t.param.detach()
        assert torch.equal(quantize(w, 4, int(t.buffer(N1))), w)
    assert not model.bn.weight.detach().eq(1).all() or True  # BN stays float (not tracked)
    assert not hasattr(model.bn, "weight_inq_mask") and not hasattr(model.fc, "bias_inq_mask")


def test_optimizer_state_cleared_for_frozen(tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyNet(optimizer="adam", lr=0.01)
    seen = {}

    class Probe(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 0:
                st = trainer.optimizers[0].state[pl_module.conv.weight]
                mask = pl_module.conv.weight_inq_mask
                seen["exp_avg"] = st["exp_avg"][mask].abs().max().item()
                seen["exp_avg_sq"] = st["exp_avg_sq"][mask].abs().max().item()
                seen["free"] = st["exp_avg"][~mask].abs().max().item()

    inq = INQCallback(bits=5, portions=[0.5, 1.0], epochs_per_stage=1, float_epochs=1)
    pl.Trainer(max_epochs=3, callbacks=[inq, Probe()], **trainer_kwargs(tmp_path)).fit(model, tiny_loader())
    assert seen["exp_avg"] == 0.0 and seen["exp_avg_sq"] == 0.0 and seen["free"] > 0.0


@pytest.mark.parametrize("restart", [True, False])
def test_lr_schedule_restarts_each_stage(tmp_path, restart: bool) -> None:
    torch.manual_seed(0)
    model = TinyNet(lr=0.08, scheduler="exponential")
    watch = FrozenWatch()
    inq = INQCallback(bits=5, portions=[0.5, 0.75, 1.0], epochs_per_stage=2, restart_lr=restart)
    pl.Trainer(max_epochs=6, callbacks=[inq, watch], **trainer_kwargs(tmp_path)).fit(model, tiny_loader())
    if restart:
        assert [watch.lrs[e] for e in range(6)] == pytest.approx([0.08, 0.04] * 3)
    else:
        assert [watch.lrs[e] for e in range(6)] == pytest.approx([0.08 * 0.5**e for e in range(6)])


def test_step_mode_and_max_value(tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyNet()
    inq = INQCallback(bits=3, portions=[0.5, 1.0], steps_per_stage=3, float_steps=2, max_value=4.0)
    fractions = []

    class Probe(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            fractions.append(float(pl_module.conv.weight_inq_mask.float().mean()))

    pl.Trainer(max_steps=7, callbacks=[inq, Probe()], **trainer_kwargs(tmp_path)).fit(model, tiny_loader())
    assert fractions[:2] == [0.0, 0.0]
    assert all(f == pytest.approx(0.5, abs=0.03) for f in fractions[2:5])
    assert fractions[5:] == [1.0, 1.0]
    assert int(model.conv.weight_inq_n1) == 2 and int(model.fc.weight_inq_n1) == 2  # from max_value 4.0
    assert set(model.conv.weight.detach().abs().unique().tolist()) <= {0.0, 2.0, 4.0}


def test_include_exclude_and_random_partition(tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyNet()
    inq = INQCallback(bits=5, portions=[1.0], epochs_per_stage=1, exclude=["fc.*"], strategy="random")
    pl.Trainer(max_epochs=1, callbacks=[inq], **trainer_kwargs(tmp_path)).fit(model, tiny_loader())
    assert [r.name for r in layer_report(model)] == ["conv.weight"]
    assert not hasattr(model.fc, "weight_inq_mask")


def test_refuses_a_run_too_short_for_the_schedule(tmp_path) -> None:
    inq = INQCallback(bits=5, portions=[0.5, 0.75, 0.875, 1.0], epochs_per_stage=2)
    with pytest.raises(ValueError, match="max_epochs >= 7"):
        pl.Trainer(max_epochs=4, callbacks=[inq], **trainer_kwargs(tmp_path)).fit(TinyNet(), tiny_loader())


@pytest.mark.parametrize("kwargs,message", [
    (dict(bits=1), "bits"), (dict(bits=10), "bits"), (dict(portions=[0.5, 0.4, 1.0]), "increasing"),
    (dict(epochs_per_stage=0), "epochs_per_stage"), (dict(strategy="lottery"), "strategy"),
    (dict(max_value=-1.0), "max_value"), (dict(float_epochs=-1), "float_epochs"),
])
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        INQCallback(**kwargs)


def test_resume_mid_stage_matches_uninterrupted(tmp_path) -> None:
    def run(root, ckpt_path=None, checkpoint_every_epoch=False):
        torch.manual_seed(0)
        model = TinyNet(optimizer="sgd_momentum", lr=0.05)
        callbacks = [INQCallback(bits=5, portions=[0.5, 0.75, 0.875, 1.0], epochs_per_stage=2)]
        kw = trainer_kwargs(root)
        if checkpoint_every_epoch:
            callbacks.append(pl.callbacks.ModelCheckpoint(dirpath=root, save_top_k=-1, every_n_epochs=1,
                                                          filename="{epoch}"))
            kw["enable_checkpointing"] = True
        pl.Trainer(max_epochs=7, callbacks=callbacks, **kw).fit(model, tiny_loader(), ckpt_path=ckpt_path)
        return model

    full = run(tmp_path / "a", checkpoint_every_epoch=True)
    # epoch=2 ends the first half of stage 1 (stage 1 covers epochs 2 and 3)
    resumed = run(tmp_path / "b", ckpt_path=str(tmp_path / "a" / "epoch=2.ckpt"))
    for (k, a), (k2, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert k == k2
        assert torch.equal(a, b), k
    assert all(r.fully_quantized for r in layer_report(resumed))
