"""Speech recognition: Deep Speech trained with CTC on TIMIT, scored as phone / word error rates.

Targets come from the datamodule (``data_info``): TIMIT phones (61 or 39) scored as PER on the 39
folded phones, or characters scored as WER and CER. Decoding is greedy (best path) by default;
``decoder: beam`` runs a CTC prefix beam search of width ``beam_width`` (no language model).
Logged: ``<stage>/loss`` (CTC), ``<stage>/per`` or ``<stage>/wer`` and ``<stage>/cer``; the error
rate is the checkpoint monitor (lower is better). Error-rate states are summed across processes.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.text import CharErrorRate, WordErrorRate

from modules.base import BaseModule
from modules.ctc_decoding import beam_search_decode, greedy_decode
from modules.datamodules.timit import Vocabulary
from modules.networks.deepspeech import DeepSpeech
from modules.registry import ModelConfig, register_model

EVAL_STAGES = ("val", "test")


class SpeechModule(BaseModule):
    """Trains ``self.net`` (features, lengths -> per-frame log-probabilities) with CTC."""

    monitor = "val/per"
    monitor_mode = "min"

    def __init__(self, model: Mapping[str, Any], data_info: Mapping[str, Any], optimizer: Mapping[str, Any],
                 scheduler: Mapping[str, Any] | None = None, recipe: Mapping[str, Any] | None = None) -> None:
        super().__init__(model, data_info, optimizer, scheduler, recipe)
        self.vocab = Vocabulary(self.data_info.get("target", "phones"), str(self.data_info.get("phone_set", "61")))
        self.error_name = "per" if self.vocab.target == "phones" else "wer"
        self.monitor = f"val/{self.error_name}"
        self.error_rates = nn.ModuleDict({f"{stage}_{self.error_name}": WordErrorRate() for stage in EVAL_STAGES})
        if self.vocab.target == "chars":
            self.error_rates.update({f"{stage}_cer": CharErrorRate() for stage in EVAL_STAGES})

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(features, lengths)

    def ctc_loss(self, log_probs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return F.ctc_loss(log_probs.transpose(0, 1).float(), batch["targets"], batch["lengths"],
                          batch["target_lengths"], blank=0, zero_infinity=True)

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[str]]:
        """Token sequences of a batch (greedy or beam search, as configured)."""
        out = []
        for k in range(log_probs.shape[0]):
            n = int(lengths[k])
            if self.model_config.decoder == "beam":
                ids = beam_search_decode(log_probs[k], n, beam_width=self.model_config.beam_width)
            else:
                ids = greedy_decode(log_probs[k], n)
            out.append(self.vocab.decode(ids))
        return out

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.training_loss(batch)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch["features"].shape[0])
        return loss

    def _eval_step(self, batch: Mapping[str, Any], stage: str) -> None:
        log_probs = self.net(batch["features"], batch["lengths"])
        self.log(f"{stage}/loss", self.ctc_loss(log_probs, batch), batch_size=batch["features"].shape[0],
                 sync_dist=True)
        self._update_error_rates(self.error_rates, stage, log_probs, batch)

    def _update_error_rates(self, rates: nn.ModuleDict | MetricCollection, prefix: str, log_probs: torch.Tensor,
                            batch: Mapping[str, Any]) -> None:
        hypotheses = [self.vocab.scoring_units(tokens) for tokens in self.decode(log_probs, batch["lengths"])]
        preds = [" ".join(h) for h in hypotheses]
        refs = [" ".join(r) for r in batch["references"]]
        rates[f"{prefix}_{self.error_name}"].update(preds, refs)
        if self.vocab.target == "chars":
            rates[f"{prefix}_cer"].update(preds, refs)

    def _eval_epoch_end(self, stage: str) -> None:
        for name, metric in self.error_rates.items():
            if name.startswith(stage + "_") and metric.update_called:
                self.log(f"{stage}/{name.split('_', 1)[1]}", metric.compute(), prog_bar=True)
                metric.reset()

    # ensemble protocol (see BaseModule): members' per-frame posteriors are averaged, then decoded
    def training_loss(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.ctc_loss(self.net(batch["features"], batch["lengths"]), batch)

    def predict_probs(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.net(batch["features"], batch["lengths"]).float().exp()

    def make_metrics(self) -> MetricCollection:
        rates: dict[str, Metric] = {f"all_{self.error_name}": WordErrorRate()}
        if self.vocab.target == "chars":
            rates["all_cer"] = CharErrorRate()
        return MetricCollection(rates, compute_groups=False)  # WER and CER updated one by one

    def update_metrics(self, metrics: torch.nn.Module, probs: torch.Tensor, batch: Mapping[str, Any]) -> None:
        self._update_error_rates(metrics, "all", probs.clamp_min(1e-12).log(), batch)

    def compute_metrics(self, metrics: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {name.split("_", 1)[1]: value for name, value in metrics.compute().items()}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")


class DeepSpeechConfig(ModelConfig):
    """`model: {name: deepspeech, ...}`: Deep Speech; `small: true` drops FC2 and FC3 (the paper's small model)."""

    name: Literal["deepspeech"] = "deepspeech"
    hidden: PositiveInt = 2048
    context: int = Field(9, ge=0, le=32)
    rnn_type: Literal["rnn", "gru", "lstm"] = "rnn"
    small: bool = False
    clip: float = Field(20.0, gt=0.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    decoder: Literal["greedy", "beam"] = "greedy"
    beam_width: PositiveInt = 8


@register_model("deepspeech", DeepSpeechConfig, module=SpeechModule)
def build_deepspeech(cfg: DeepSpeechConfig, data_info: Mapping[str, Any]) -> nn.Module:
    """Deep Speech sized for the data's feature dimension and output symbols."""
    return DeepSpeech(n_features=int(data_info["n_features"]), n_classes=int(data_info["num_classes"]),
                      hidden=cfg.hidden, context=cfg.context, rnn_type=cfg.rnn_type, small=cfg.small,
                      clip=cfg.clip, dropout=cfg.dropout)
