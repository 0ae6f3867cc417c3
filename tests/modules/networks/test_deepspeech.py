"""Deep Speech as published: torchaudio's weights and function, and Deep Speech 1's clipped recurrence."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchaudio.models import DeepSpeech as TorchaudioDeepSpeech

from inqnet.modules.networks.deepspeech import DeepSpeech, clipped_birnn, stack_context, to_torchaudio

F_IN, CONTEXT, HIDDEN, CLASSES = 5, 2, 16, 7


def _pair(seed: int = 0) -> tuple[DeepSpeech, TorchaudioDeepSpeech]:
    torch.manual_seed(seed)
    reference = TorchaudioDeepSpeech(n_feature=(2 * CONTEXT + 1) * F_IN, n_hidden=HIDDEN, n_class=CLASSES).eval()
    ours = DeepSpeech(F_IN, CLASSES, hidden=HIDDEN, context=CONTEXT).eval()
    return ours, reference


def test_torchaudio_weights_load_strictly_and_compute_the_same() -> None:
    ours, reference = _pair()
    ours.load_state_dict(reference.state_dict(), strict=True)
    for name, value in reference.state_dict().items():  # every tensor arrived, none left at its init
        mine = name.replace("bi_rnn.", "rnn.").replace(".fc.", ".")
        assert torch.equal(ours.state_dict()[mine], value), name
    x = 3.0 * torch.randn(3, 11, F_IN)  # large enough that the FC clip at 20 and ReLU both act
    with torch.no_grad():
        got = ours(x)
        expected = reference(stack_context(x, CONTEXT).unsqueeze(1))  # torchaudio takes stacked frames
    assert got.shape == expected.shape == (3, 11, CLASSES)
    # Same weights, same operations; only the RNN's batch-first vs time-first layout differs, which
    # may change float summation order by an ulp or so.
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_our_weights_load_into_torchaudio_strictly() -> None:
    ours, _ = _pair(1)
    _, reference = _pair(2)
    reference.load_state_dict(to_torchaudio(ours.state_dict()), strict=True)
    x = torch.randn(2, 6, F_IN)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(stack_context(x, CONTEXT).unsqueeze(1)), rtol=0, atol=1e-5)


def test_summed_directions_are_not_clipped_again() -> None:
    ours, _ = _pair()
    seen: dict[str, torch.Tensor] = {}
    ours.rnn.register_forward_hook(lambda m, i, o: seen.update(rnn=o[0]))  # update returns None: output kept
    ours.fc4.register_forward_hook(lambda m, i, o: seen.update(fc4=i[0]))
    with torch.no_grad():
        ours.rnn.weight_hh_l0.mul_(3.0)  # outputs well past the FC clip of 20
        ours(30.0 * torch.randn(2, 10, F_IN))
    summed = seen["rnn"][..., :HIDDEN] + seen["rnn"][..., HIDDEN:]
    assert summed.max() > 20.0
    assert torch.equal(seen["fc4"], summed)  # fc4 sees the sum itself, no clip at 20


def _reference_clipped_rnn(x: torch.Tensor, rnn: nn.RNN, clip: float, lengths: list[int]) -> torch.Tensor:
    """Deep Speech 1's recurrence written out: one utterance, one direction, one frame at a time."""
    b, t, _ = x.shape
    out = torch.zeros(b, t, 2 * rnn.hidden_size)
    for i, n in enumerate(lengths):
        for half, suffix, frames in ((0, "", range(n)), (1, "_reverse", reversed(range(n)))):
            w, u = getattr(rnn, "weight_ih_l0" + suffix), getattr(rnn, "weight_hh_l0" + suffix)
            bias = getattr(rnn, "bias_ih_l0" + suffix) + getattr(rnn, "bias_hh_l0" + suffix)
            h = torch.zeros(rnn.hidden_size)
            for k in frames:
                h = torch.clamp(w @ x[i, k] + u @ h + bias, min=0.0, max=clip)
                out[i, k, half * rnn.hidden_size:(half + 1) * rnn.hidden_size] = h
    return out


def test_rnn_clip_is_deep_speech_1s_recurrence() -> None:
    torch.manual_seed(0)
    rnn = nn.RNN(4, 6, nonlinearity="relu", bidirectional=True, batch_first=True)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(4.0)  # a growing recurrence, so the clip at 2 is reached
        rnn.weight_hh_l0_reverse.mul_(4.0)
    x = 3.0 * torch.randn(3, 9, 4)
    lengths = [9, 4, 7]
    with torch.no_grad():
        got = clipped_birnn(x, rnn, 2.0, torch.tensor(lengths))
        expected = _reference_clipped_rnn(x, rnn, 2.0, lengths)
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        assert (got == 2.0).any() and got.max() <= 2.0  # the clip acted
        # with a clip no value reaches, the per-step loop is torch's ReLU RNN
        fused, _ = rnn(x)
        torch.testing.assert_close(clipped_birnn(x, rnn, 1e9), fused, rtol=1e-5, atol=1e-5)


def test_rnn_clip_in_the_network() -> None:
    torch.manual_seed(0)
    net = DeepSpeech(F_IN, CLASSES, hidden=8, context=1, rnn_clip=0.5).eval()
    x, lengths = 4.0 * torch.randn(2, 8, F_IN), torch.tensor([8, 5])
    seen: dict[str, torch.Tensor] = {}
    net.fc4.register_forward_hook(lambda m, i, o: seen.update(fc4=i[0]))
    with torch.no_grad():
        lp = net(x, lengths)
    assert seen["fc4"].max() <= 1.0  # two directions, each clipped at 0.5
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(2, 8))
    with torch.no_grad():  # padding does not leak into the shorter utterance
        torch.testing.assert_close(net(x[1:2, :5], lengths[1:2])[0], lp[1, :5], atol=1e-5, rtol=1e-5)
    for bad in ({"rnn_type": "gru", "rnn_clip": 20.0}, {"rnn_clip": 0.0}):
        with pytest.raises(ValueError, match="rnn_clip"):
            DeepSpeech(F_IN, CLASSES, hidden=8, **bad)  # type: ignore[arg-type]
