"""A packed nn.Linear (or Conv2d) on a CPU that reads only its codes: decode a tile of output rows
into a small buffer that stays in cache, run the float network's own op on it, next tile.

Why: at small batches a big Linear (VGG-16's FC6: 103M weights) is bound by reading its weight.
Decoding the whole layer first writes and reads a float copy of it (3x the float network's
traffic); per tile, the only memory traffic is the b-bit codes.

Same outputs as the dense layer, checked rather than assumed: each output element's sum over K
is left to the same BLAS call on the same rows (tiles split the output rows, never K, and start
on 64-byte-aligned rows as the dense weight's do), but a BLAS may still pick a different kernel,
and so a different summation order, for a smaller output width (MKL does at batch 64, or with
several threads at batch 1). So the first call for each input shape, dtype and thread count
runs the whole-layer path and compares both paths on a random probe of that shape; tiles are
used from then on only if the outputs were bit-identical (`torch.equal`).
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch
import torch.nn.functional as F

from inqnet.modules.export.cpu_decode import RowDecoder

TILE_MIN_BYTES = 4 << 20  # smaller layers decode whole: their float copy stays in cache anyway
TILE_TARGET_BYTES = 2 << 20  # a tile of float rows this size: few tiles (each costs a BLAS call)
#                                and still cache-resident (L2, or L3 next to it)
CONV_TILE_BYTES = 2 << 20  # convolutions: fewer, bigger tiles (each conv call costs more)
ROW_ALIGN = 16  # rows per tile a multiple of 16: every tile row starts 64-byte aligned as in the
#                 dense weight (16 float32 rows of any K span a multiple of 64 bytes)
_MAX_VERDICTS = 64  # input shapes remembered per layer (variable-length inputs stay bounded)

Verdict = tuple[tuple[int, ...], torch.dtype, int]


def tile_rows(n: int, k: int, element_size: int = 4, target_bytes: int = TILE_TARGET_BYTES) -> int:
    """Output rows per tile: about `target_bytes` of floats, a multiple of ROW_ALIGN."""
    rows = target_bytes // max(1, k * element_size) // ROW_ALIGN * ROW_ALIGN
    return max(ROW_ALIGN, min(rows, -(-n // ROW_ALIGN) * ROW_ALIGN))


Op = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class TiledLinear:
    """The tiled forward of one packed layer, with its per-shape bit-identity verdicts. `op` is
    the layer's float op (F.linear by default, or a conv with its stride and padding bound),
    `channel_dim` the output dimension the tiles split (-1 for Linear, 1 for Conv2d), `shape`
    the weight's shape (a tile is rows of it)."""

    def __init__(self, decoder: RowDecoder, op: Op = F.linear, channel_dim: int = -1,
                 shape: tuple[int, ...] | None = None, target_bytes: int = TILE_TARGET_BYTES) -> None:
        self.decoder = decoder
        self.n, self.k = decoder.layout.n, decoder.layout.k
        self.op, self.channel_dim = op, channel_dim
        self.row_shape = tuple(shape[1:]) if shape is not None else (self.k,)
        self.rows = tile_rows(self.n, self.k, target_bytes=target_bytes)
        self.verdicts: dict[Verdict, bool] = {}
        self.big = self.n > self.rows and self.n * self.k * 4 >= TILE_MIN_BYTES  # float32 only
        self._decode: tuple[torch.Tensor, torch.Tensor, Callable[[int, int], torch.Tensor]] | None = None

    def worth_it(self, x: torch.Tensor) -> bool:
        """Tiles pay when the layer's float copy would not stay in cache and the kernel runs."""
        return (self.big and self.n * self.k * x.element_size() >= TILE_MIN_BYTES
                and self.decoder.kernel_runs(x.dtype)
                and not (x.requires_grad and torch.is_grad_enabled()))

    def __call__(self, x: torch.Tensor, words: torch.Tensor, bias: torch.Tensor | None,
                 scratch: "Scratch", whole: Callable[[], torch.Tensor]) -> torch.Tensor:
        """F.linear(x, W, bias) with W decoded from `words`; `whole()` decodes all of W."""
        key = (tuple(x.shape), x.dtype, torch.get_num_threads())
        verdict = self.verdicts.get(key)
        if verdict is None:
            weight = whole()
            result = self.op(x, weight, bias)
            probe = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(0))
            expected = self.op(probe, weight, bias)
            same = torch.equal(self.tiles(probe, words, bias, scratch), expected)
            if len(self.verdicts) >= _MAX_VERDICTS:
                self.verdicts.clear()
            self.verdicts[key] = same
            return result
        if not verdict:
            return self.op(x, whole(), bias)
        return self.tiles(x, words, bias, scratch)

    def _tile_decoder(self, words: torch.Tensor, buffer: torch.Tensor) -> Callable[[int, int], torch.Tensor]:
        """The decoder's per-tile call for this (words, buffer) pair, kept while both are the
        same tensors (a buffer shared by layers is the same tensor as long as it does not grow)."""
        cached = self._decode
        if cached is None or cached[0] is not words or cached[1].data_ptr() != buffer.data_ptr():
            cached = self._decode = (words, buffer, self.decoder.tile_decoder(words, buffer))
        return cached[2]

    def tiles(self, x: torch.Tensor, words: torch.Tensor, bias: torch.Tensor | None,
              scratch: "Scratch") -> torch.Tensor:
        """The tiled computation itself (one decode and one op per tile of rows)."""
        n, rows, op = self.n, self.rows, self.op
        decode, out = self._tile_decoder(words, scratch.get("tile", rows * self.k, x.dtype, x.device)), None
        for n0 in range(0, n, rows):
            n1 = min(n, n0 + rows)
            tile = decode(n0, n1)
            part = op(x, tile.view(n1 - n0, *self.row_shape), None if bias is None else bias[n0:n1])
            if out is None:
                shape = list(part.shape)
                shape[self.channel_dim] = n
                out = part.new_empty(shape)
            out.narrow(self.channel_dim, n0, n1 - n0).copy_(part)
        assert out is not None
        return out


class Scratch(Protocol):
    """What `runtime.DecodeScratch` offers (named here so this module does not import it)."""

    def get(self, name: str, numel: int, dtype: torch.dtype,
            device: torch.device) -> torch.Tensor: ...
