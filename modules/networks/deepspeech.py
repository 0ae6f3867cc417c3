"""Deep Speech (Hannun et al. 2014) as used in the paper, for CTC over phones or characters.

Per frame: a context window of ``context`` frames each side is stacked, then three fully
connected layers with ReLU clipped at ``clip`` (20), a bidirectional recurrent layer whose
forward and backward outputs are summed, a fourth clipped fully connected layer and a linear
output layer with log-softmax (the CTC posterior). The small variant drops the second and third
fully connected layers, as in the paper's Fig. 3.

``rnn_type`` "rnn" is Deep Speech's plain recurrent layer (ReLU, torch's fused nn.RNN); "gru" and
"lstm" are offered for small data where a plain ReLU recurrence trains poorly.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RnnType = Literal["rnn", "gru", "lstm"]


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
    ) -> None:
        super().__init__()
        if rnn_type not in ("rnn", "gru", "lstm"):
            raise ValueError(f"rnn_type must be 'rnn', 'gru' or 'lstm', got {rnn_type!r}")
        self.context, self.clip, self.small = context, clip, small
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
        if lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.rnn(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=t)
        else:
            y, _ = self.rnn(x)
        y = y[..., : self.hidden] + y[..., self.hidden :]  # the two directions are summed
        y = self._dense(self.fc4, clipped_relu(y, self.clip))
        return F.log_softmax(self.out(y), dim=-1)
