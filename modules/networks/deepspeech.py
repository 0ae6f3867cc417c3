"""Deep Speech (Hannun et al. 2014) as used in the paper, for CTC over phones or characters.

Per frame: a context window of ``context`` frames each side is stacked, then three fully
connected layers with ReLU clipped at ``clip`` (20), a bidirectional recurrent layer whose
forward and backward outputs are summed (and not clipped again: neither Deep Speech 1 nor
torchaudio clips the sum), a fourth clipped fully connected layer and a linear output layer with
log-softmax (the CTC posterior). The small variant drops the second and third fully connected
layers, as in the paper's Fig. 3.

``rnn_type`` "rnn" is Deep Speech's plain recurrent layer (ReLU); "gru" and "lstm" are offered for
small data where a plain ReLU recurrence trains poorly. ``rnn_clip`` (rnn only) clips the
recurrence as Deep Speech 1 does, ``h_t = min(max(W x_t + U h_{t-1} + b, 0), rnn_clip)``, per step
(:func:`clipped_birnn`); ``None`` runs torch's fused ReLU RNN, unclipped, as torchaudio does.

Weights are torchaudio's (``torchaudio.models.DeepSpeech``): its state dict (``fc1.fc.weight``,
``bi_rnn.*``, ...) loads into this model strictly, renamed on load (:data:`TORCHAUDIO_NAMES`), and
:func:`to_torchaudio` gives this model's weights under torchaudio's names. With ``context=0`` (or
torchaudio fed the stacked frames) and ``rnn_clip=None`` both compute the same function. This
model keeps its own names (``fc1.weight``, ``rnn.*``) so checkpoints and exports written before
stay loadable.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RnnType = Literal["rnn", "gru", "lstm"]

# torchaudio.models.DeepSpeech's module names -> this model's (the fully connected layers wrap
# their nn.Linear in `.fc` there; the recurrent layer is `bi_rnn`).
TORCHAUDIO_NAMES: dict[str, str] = {"fc1.fc.": "fc1.", "fc2.fc.": "fc2.", "fc3.fc.": "fc3.",
                                    "fc4.fc.": "fc4.", "bi_rnn.": "rnn."}


def _rename(key: str, prefix: str, table: Mapping[str, str]) -> str:
    """``key`` with the first matching table entry (below ``prefix``) renamed; unchanged otherwise."""
    if not key.startswith(prefix):
        return key
    rest = key[len(prefix):]
    for old, new in table.items():
        if rest.startswith(old):
            return prefix + new + rest[len(old):]
    return key


def from_torchaudio(state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """A torchaudio DeepSpeech state dict (keys below ``prefix``) under this model's names."""
    return {_rename(k, prefix, TORCHAUDIO_NAMES): v for k, v in state_dict.items()}


def to_torchaudio(state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """This model's state dict under torchaudio's names (loads into ``torchaudio.models.DeepSpeech``
    strictly for a full model with ``rnn_type="rnn"``; INQ buffers keep their suffixes)."""
    back = {new: old for old, new in TORCHAUDIO_NAMES.items()}
    return {_rename(k, prefix, back): v for k, v in state_dict.items()}


def clipped_relu(x: torch.Tensor, clip: float) -> torch.Tensor:
    """min(max(x, 0), clip): Deep Speech's activation."""
    return torch.clamp(x, min=0.0, max=clip)


def stack_context(features: torch.Tensor, context: int) -> torch.Tensor:
    """(B, T, F) -> (B, T, (2*context+1)*F): each frame with ``context`` neighbours each side.

    Frames beyond the ends are zeros (features are normalised, so zero is the mean).
    """
    if context == 0:
        return features
    b, t, f = features.shape
    padded = F.pad(features, (0, 0, context, context))
    windows = padded.unfold(1, 2 * context + 1, 1)  # (B, T, F, 2C+1)
    return windows.transpose(2, 3).reshape(b, t, (2 * context + 1) * f)


def _within_length_reversal(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B, T) time indices that reverse each utterance inside its length, padding left in place
    (an involution: applying it twice is the identity)."""
    steps = torch.arange(t, device=lengths.device)[None, :]
    lengths = lengths[:, None]
    return torch.where(steps < lengths, lengths - 1 - steps, steps)


def clipped_birnn(x: torch.Tensor, rnn: nn.RNN, clip: float, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Deep Speech 1's bidirectional recurrence with ``rnn``'s weights, clipped per step:
    ``h_t = min(max(W x_t + U h_{t-1} + b, 0), clip)`` forward in time and, separately, backward
    from each utterance's last valid frame. (B, T, H) -> (B, T, 2H), forward then backward halves
    (nn.RNN's layout); frames past ``lengths`` are zeros, as ``pad_packed_sequence`` leaves them."""
    b, t, _ = x.shape
    lengths = torch.full((b,), t, device=x.device) if lengths is None else lengths.to(x.device)
    order = _within_length_reversal(lengths, t)
    halves = []
    for suffix, reverse in (("", False), ("_reverse", True)):
        w_ih, w_hh = getattr(rnn, "weight_ih_l0" + suffix), getattr(rnn, "weight_hh_l0" + suffix)
        bias = getattr(rnn, "bias_ih_l0" + suffix) + getattr(rnn, "bias_hh_l0" + suffix) if rnn.bias else 0.0
        src = torch.gather(x, 1, order[..., None].expand_as(x)) if reverse else x
        drive = F.linear(src, w_ih) + bias  # the input's part of every step at once
        h = x.new_zeros(b, w_hh.shape[0])
        steps = []
        for k in range(t):
            h = torch.clamp(drive[:, k] + F.linear(h, w_hh), min=0.0, max=clip)
            steps.append(h)
        y = torch.stack(steps, dim=1)
        if reverse:
            y = torch.gather(y, 1, order[..., None].expand_as(y))
        halves.append(y)
    valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]
    return torch.cat(halves, dim=-1) * valid[..., None].to(x.dtype)


class DeepSpeech(nn.Module):
    """Deep Speech acoustic model: ``forward(features, lengths)`` -> (B, T, classes) log-probs."""

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        hidden: int = 2048,
        context: int = 9,
        rnn_type: RnnType = "rnn",
        small: bool = False,
        clip: float = 20.0,
        dropout: float = 0.0,
        rnn_clip: float | None = None,
    ) -> None:
        super().__init__()
        if rnn_type not in ("rnn", "gru", "lstm"):
            raise ValueError(f"rnn_type must be 'rnn', 'gru' or 'lstm', got {rnn_type!r}")
        if rnn_clip is not None and (rnn_type != "rnn" or not rnn_clip > 0):
            raise ValueError(f"rnn_clip (got {rnn_clip!r}) needs rnn_type 'rnn' (got {rnn_type!r}) and a value > 0")
        self.context, self.clip, self.small, self.rnn_clip = context, clip, small, rnn_clip
        self.fc1 = nn.Linear((2 * context + 1) * n_features, hidden)
        if not small:
            self.fc2 = nn.Linear(hidden, hidden)
            self.fc3 = nn.Linear(hidden, hidden)
        if rnn_type == "rnn":
            self.rnn: nn.RNNBase = nn.RNN(hidden, hidden, nonlinearity="relu", bidirectional=True, batch_first=True)
        elif rnn_type == "gru":
            self.rnn = nn.GRU(hidden, hidden, bidirectional=True, batch_first=True)
        else:
            self.rnn = nn.LSTM(hidden, hidden, bidirectional=True, batch_first=True)
        self.fc4 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_classes)
        self.drop = nn.Dropout(dropout)
        self.hidden = hidden
        self.register_load_state_dict_pre_hook(_accept_torchaudio_names)

    def _dense(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        return self.drop(clipped_relu(layer(x), self.clip))

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``features`` (B, T, F) normalised frames, ``lengths`` (B,) valid frames per utterance."""
        if lengths is not None:  # frames past an utterance's end must not enter its context windows
            valid = torch.arange(features.shape[1], device=features.device)[None, :] < lengths.to(features.device)[:, None]
            features = features * valid.unsqueeze(-1).to(features.dtype)
        x = self._dense(self.fc1, stack_context(features, self.context))
        if not self.small:
            x = self._dense(self.fc3, self._dense(self.fc2, x))
        t = x.shape[1]
        if self.rnn_clip is not None:
            y = clipped_birnn(x, self.rnn, self.rnn_clip, lengths)  # type: ignore[arg-type]
        elif lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.rnn(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=t)
        else:
            y, _ = self.rnn(x)
        y = y[..., : self.hidden] + y[..., self.hidden :]  # the two directions are summed
        y = self._dense(self.fc4, y)
        return F.log_softmax(self.out(y), dim=-1)


def _accept_torchaudio_names(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """load_state_dict pre-hook: torchaudio's key names (below ``prefix``) become this model's,
    in place, so ``load_state_dict(torchaudio_model.state_dict(), strict=True)`` works."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = _rename(key, prefix, TORCHAUDIO_NAMES)
        if new != key:
            state_dict[new] = state_dict.pop(key)
