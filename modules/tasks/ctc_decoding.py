"""CTC decoding without a language model: greedy (best path) and prefix beam search.

Both take per-frame log-probabilities (T, C) with the blank at index ``blank`` and return label
indices with blanks removed and repeats merged, as CTC defines.
"""
from __future__ import annotations

import math
from collections import defaultdict

import torch


def greedy_decode(log_probs: torch.Tensor, length: int | None = None, blank: int = 0) -> list[int]:
    """Best path: the most likely symbol per frame, repeats merged, blanks dropped."""
    best = log_probs[: length if length is not None else log_probs.shape[0]].argmax(dim=-1).tolist()
    out: list[int] = []
    previous = blank
    for s in best:
        if s != blank and s != previous:
            out.append(s)
        previous = s
    return out


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_search_decode(
    log_probs: torch.Tensor, length: int | None = None, beam_width: int = 8, blank: int = 0, prune: float = -12.0
) -> list[int]:
    """CTC prefix beam search: keeps the ``beam_width`` most probable label prefixes per frame,
    summing over the alignments of each prefix (blank- and non-blank-ending, in log space).
    Symbols whose frame log-probability is below ``prune`` are skipped for speed."""
    lp = log_probs[: length if length is not None else log_probs.shape[0]].detach().float().cpu()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}  # (p_blank, p_nonblank)
    for frame in lp:
        candidates = [s for s in range(frame.shape[0]) if frame[s] >= prune or s == blank]
        values = frame.tolist()
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            for s in candidates:
                p = values[s]
                if s == blank:
                    entry = nxt[prefix]
                    entry[0] = _logsumexp(entry[0], total + p)
                    continue
                extended = prefix + (s,)
                entry = nxt[extended]
                if prefix and prefix[-1] == s:
                    # a repeat needs a blank in between to extend; otherwise it stays the same prefix
                    entry[1] = _logsumexp(entry[1], pb + p)
                    same = nxt[prefix]
                    same[1] = _logsumexp(same[1], pnb + p)
                else:
                    entry[1] = _logsumexp(entry[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    best = max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))
    return list(best[0])
