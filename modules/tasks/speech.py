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
from pydantic import Field, PositiveInt, model_validator
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.text import CharErrorRate, WordErrorRate

from inqnet.modules.tasks.base import BaseModule
from inqnet.modules.tasks.ctc_decoding import beam_search_decode, greedy_decode
from inqnet.modules.datamodules.timit import Vocabulary
from inqnet.modules.networks.deepspeech import DeepSpeech
from inqnet.modules.registry import ModelConfig, register_model

EVAL_STAGES = ("val", "test")


class SpeechModule(BaseModule):
    """Trains ``self.net`` (features, lengths -> per-frame log-probabilities) with CTC.

    Implements the ensemble protocol (``predict_probs`` = per-frame posteriors), so ensembles of
    Deep Speech models decode the mean of the members' posteriors.
    """

    monitor = "val/per"
    monitor_mode = "min"

    def __init__(self, model: Mapping[str, Any], data_info: Mapping[str, Any], optimizer: Mapping[str, Any],
                 scheduler: Mapping[str, Any] | None = None, recipe: Mapping[str, Any] | None = None) -> None:
        super().__init__(model, data_info, optimizer, scheduler, recipe)
        self.vocab = Vocabulary(self.data_info.get("target", "phones"), str(self.data_info.get("phone_set", "61")))
        self.error_name = "per" if self.vocab.target == "phones" else "wer"
        self.monitor = f"val/{self.error_name}"
        self.stage_metrics = nn.ModuleDict({stage: self.make_metrics() for stage in EVAL_STAGES})

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

    # ------------------------------------------------------------------ ensemble protocol
    def training_loss(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.ctc_loss(self.net(batch["features"], batch["lengths"]), batch)

    def predict_probs(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Per-frame posteriors (B, T, classes)."""
        return self.net(batch["features"], batch["lengths"]).float().exp()

    def make_metrics(self) -> MetricCollection:
        metrics = {self.error_name: WordErrorRate()}
        if self.vocab.target == "chars":
            metrics["cer"] = CharErrorRate()
        return MetricCollection(metrics)

    def update_metrics(self, metrics: torch.nn.Module, probs: torch.Tensor, batch: Mapping[str, Any]) -> None:
        log_probs = probs.clamp_min(1e-30).log()
        hypotheses = [self.vocab.scoring_units(tokens) for tokens in self.decode(log_probs, batch["lengths"])]
        metrics.update([" ".join(h) for h in hypotheses], [" ".join(r) for r in batch["references"]])

    def compute_metrics(self, metrics: torch.nn.Module) -> dict[str, torch.Tensor]:
        return dict(metrics.compute())

    # ------------------------------------------------------------------ Lightning hooks
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.training_loss(batch)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch["features"].shape[0])
        return loss

    def _eval_step(self, batch: Mapping[str, Any], stage: str) -> None:
        log_probs = self.net(batch["features"], batch["lengths"])
        self.log(f"{stage}/loss", self.ctc_loss(log_probs, batch), batch_size=batch["features"].shape[0],
                 sync_dist=True)
        self.update_metrics(self.stage_metrics[stage], log_probs.float().exp(), batch)

    def _eval_epoch_end(self, stage: str) -> None:
        metrics = self.stage_metrics[stage]
        if not any(m.update_called for m in metrics.values()):
            return
        self.log_dict({f"{stage}/{k}": v for k, v in self.compute_metrics(metrics).items()}, prog_bar=True)
        metrics.reset()


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
    rnn_clip: float | None = Field(None, gt=0.0)  # Deep Speech 1's clip of the recurrence (20 in the paper recipes)

    @model_validator(mode="after")
    def _rnn_clip_needs_rnn(self) -> "DeepSpeechConfig":
        if self.rnn_clip is not None and self.rnn_type != "rnn":
            raise ValueError(f"rnn_clip needs rnn_type 'rnn' (got {self.rnn_type!r})")
        return self


@register_model("deepspeech", DeepSpeechConfig, module=SpeechModule)
def build_deepspeech(cfg: DeepSpeechConfig, data_info: Mapping[str, Any]) -> nn.Module:
    """Deep Speech sized for the data's feature dimension and output symbols."""
    return DeepSpeech(n_features=int(data_info["n_features"]), n_classes=int(data_info["num_classes"]),
                      hidden=cfg.hidden, context=cfg.context, rnn_type=cfg.rnn_type, small=cfg.small,
                      clip=cfg.clip, dropout=cfg.dropout, rnn_clip=cfg.rnn_clip)
