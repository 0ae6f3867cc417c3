"""keep="packed" on a CPU: the compiled row decoder, its torch fallback, and the tiled Linear give
exactly the dense layer's floats and outputs."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inqnet.kernels.packing import packed_from_codes
from inqnet.kernels.reference import decode_weight
from inqnet.modules.export import cpu_decode
from inqnet.modules.export.cpu_decode import RowDecoder
from inqnet.modules.export.packed_linear import TILE_MIN_BYTES, TiledLinear, tile_rows
from inqnet.modules.export.runtime import DecodeScratch, QuantLinear

HAS_CC = shutil.which("cc") is not None


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The kernel builds into a folder of this test session, never the user's cache."""
    folder = tmp_path_factory.getbasetemp() / "inq_cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cpu_decode.ENV_CACHE, str(folder))
        mp.delenv(cpu_decode.ENV_BACKEND, raising=False)
        cpu_decode._kernel.cache_clear()
        yield folder
    cpu_decode._kernel.cache_clear()


def random_packed(bits: int, n: int, k: int, n1: int = 0, seed: int = 0):
    """A packed weight of valid codes (zero, both signs, every magnitude)."""
    gen = torch.Generator().manual_seed(seed)
    m = 1 << (bits - 2)
    v = torch.randint(0, m + 1, (n, k), generator=gen)
    sign = torch.randint(0, 2, (n, k), generator=gen) * (v > 0)
    return packed_from_codes((sign << (bits - 1)) | v, bits, n1, (n, k))


@pytest.mark.parametrize("bits", range(2, 10))
def test_rows_equal_reference_decode(bits: int) -> None:
    for n, k in ((3, 1), (17, 33), (20, 100), (33, 64)):
        packed = random_packed(bits, n, k, n1=bits - 5, seed=n + k)
        reference = decode_weight(packed)
        decoder = RowDecoder(packed)
        for n0, n1 in ((0, n), (1, n - 1), (n - 1, n)):
            fast = torch.full((n1 - n0, k), 7.0)
            slow = torch.full((n1 - n0, k), 7.0)
            decoder.rows_into(packed.words, n0, n1, fast)
            decoder.torch_rows_into(packed.words, n0, n1, slow)
            assert torch.equal(fast, reference[n0:n1]), (bits, n, k, n0)
            assert torch.equal(slow, reference[n0:n1]), (bits, n, k, n0)


@pytest.mark.skipif(not HAS_CC, reason="no C compiler on this machine")
def test_kernel_builds_once_into_the_cache(private_cache: Path) -> None:
    assert cpu_decode.backend() == "c"
    built = sorted(private_cache.rglob("*.so"))
    assert len(built) == 1
    cpu_decode._kernel.cache_clear()
    assert cpu_decode.backend() == "c" and sorted(private_cache.rglob("*.so")) == built
    assert not [p for p in private_cache.rglob("*") if p.name.startswith(".")]  # no temp left


def test_fallback_without_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert cpu_decode.backend() == "torch"
    packed = random_packed(5, 40, 70)
    out = torch.empty(40, 70)
    assert torch.equal(RowDecoder(packed).rows_into(packed.words, 0, 40, out), decode_weight(packed))


def test_fallback_when_the_build_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", shutil.which("false") or "/bin/false")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu_decode.backend() == "torch"
    assert any("torch decoder" in str(w.message) for w in caught)


def test_fallback_forced_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cpu_decode.ENV_BACKEND, "torch")
    assert cpu_decode.backend() == "torch"
    assert not RowDecoder.kernel_runs(torch.float32)


def test_tile_rows_aligned_and_bounded() -> None:
    assert tile_rows(4096, 25088) == 16  # 1.6 MB: the 2 MB target rounded down to 16 rows
    assert tile_rows(4096, 4096) == 128
    assert tile_rows(10, 1 << 20) == 16
    assert tile_rows(40, 8) == 48  # never more than the layer's rows, rounded up to 16


def big_linear(keep: str, seed: int = 0) -> QuantLinear:
    """A Linear big enough to be tiled (4 MB of float32 weights), with bias."""
    n, k = 256, TILE_MIN_BYTES // (4 * 256)
    bias = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    return QuantLinear(random_packed(5, n, k, n1=-3, seed=seed), bias, keep=keep,
                       scratch=DecodeScratch())


@pytest.mark.skipif(not HAS_CC, reason="no C compiler on this machine")
@pytest.mark.parametrize("batch", [1, 3, 64])
def test_tiled_linear_equals_dense(batch: int) -> None:
    dense, packed = big_linear("dense"), big_linear("packed")
    assert packed._tiled is not None
    x = torch.randn(batch, dense.in_features, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        assert packed._tiled.worth_it(x)
        expected = dense(x)
        first, again = packed(x), packed(x)  # the first call decides, the second uses the verdict
    assert torch.equal(first, expected) and torch.equal(again, expected)
    assert list(packed._tiled.verdicts.values()) in ([True], [False])


@pytest.mark.skipif(not HAS_CC, reason="no C compiler on this machine")
def test_tiles_are_not_used_when_they_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    dense, packed = big_linear("dense"), big_linear("packed")
    original = TiledLinear.tiles
    monkeypatch.setattr(TiledLinear, "tiles",
                        lambda self, *a: original(self, *a) + 1e-3)  # a BLAS summing differently
    x = torch.randn(1, dense.in_features)
    with torch.inference_mode():
        outputs = [packed(x) for _ in range(2)]
        expected = dense(x)
    assert packed._tiled is not None and list(packed._tiled.verdicts.values()) == [False]
    assert all(torch.equal(y, expected) for y in outputs)


@pytest.mark.skipif(not HAS_CC, reason="no C compiler on this machine")
def test_tiles_compute_the_float_layer() -> None:
    """The tiled pass itself (not only the whole-layer path it falls back to) is the layer's math;
    whether it is also bit-identical is the BLAS's business, checked by the verdict above."""
    packed = big_linear("packed", seed=3)
    assert packed._tiled is not None
    weight = decode_weight(packed.packed)
    x = torch.randn(1, packed.in_features)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tiled = packed._tiled.tiles(x, packed.codes, packed.bias, packed.scratch)
        expected = F.linear(x, weight, packed.bias)
    finally:
        torch.set_num_threads(threads)
    assert (tiled - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_packed_network_equals_dense_with_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cpu_decode.ENV_BACKEND, "torch")
    net_dense = nn.Sequential(big_linear("dense"), nn.ReLU())
    net_packed = nn.Sequential(big_linear("packed"), nn.ReLU())
    x = torch.randn(2, net_dense[0].in_features)
    with torch.inference_mode():
        assert torch.equal(net_packed(x), net_dense(x))
    assert net_packed[0]._tiled is not None and not net_packed[0]._tiled.verdicts  # not tiled


def test_rows_from_transposed_words_storage() -> None:
    """The kernel reads words of any strides: the export's K-major [R, N] or a row-major copy."""
    packed = random_packed(7, 40, 90, seed=5)
    transposed = packed.words.t().contiguous().t()  # same [R, N] values, strides (1, R)
    out = torch.empty(23, 90)
    RowDecoder(packed).rows_into(transposed, 17, 40, out)
    assert torch.equal(out, decode_weight(packed)[17:40])


@pytest.mark.skipif(not HAS_CC, reason="no C compiler on this machine")
@pytest.mark.parametrize("batch", [1, 2])
def test_tiled_conv_equals_dense(batch: int) -> None:
    from inqnet.modules.export.runtime import QuantConv2d

    packed = random_packed(5, 512, 256 * 9, n1=-4, seed=7)
    packed = type(packed)(packed.words, packed.bits, packed.n1, (512, 256, 3, 3))
    bias = torch.randn(512)
    dense = QuantConv2d(packed, bias, padding=1, keep="dense")
    tiled = QuantConv2d(packed, bias, padding=1, keep="packed", scratch=DecodeScratch())
    x = torch.randn(batch, 256, 4, 4, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        assert tiled._tiled is not None and tiled._tiled.worth_it(x)
        outputs = [tiled(x) for _ in range(2)]
        expected = dense(x)
    assert all(torch.equal(y, expected) for y in outputs)
    assert len(tiled._tiled.verdicts) == 1


@pytest.mark.parametrize("backend", ["c", "torch"])
def test_small_layers_sharing_one_buffer_decode_their_own_weights(
        backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small packed layers take the short path (`whole_into` with cached arguments) into one
    shared buffer: each forward still sees its own weight, also after the buffer grew for a
    larger layer and after a layer's codes were replaced."""
    if backend == "torch":
        monkeypatch.setenv(cpu_decode.ENV_BACKEND, "torch")
    elif not HAS_CC:
        pytest.skip("no C compiler on this machine")
    scratch = DecodeScratch()
    shapes = [(16, 24), (40, 16), (8, 40)]
    packed = [random_packed(5, n, k, n1=-2, seed=i) for i, (n, k) in enumerate(shapes)]
    layers = [QuantLinear(p, keep="packed", scratch=scratch) for p in packed]
    dense = [QuantLinear(p, keep="dense") for p in packed]
    x = torch.randn(3, 24, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        for _ in range(2):  # the second pass reuses the cached arguments and views
            y, ref = x, x
            for layer, expected in zip(layers, dense):
                assert layer._small_packed
                y, ref = layer(y), expected(ref)
                assert torch.equal(y, ref)
        other = random_packed(5, 16, 24, n1=-2, seed=9)
        layers[0].codes = other.words.clone()  # a new tensor: the arguments are rebuilt
        assert torch.equal(layers[0](x), F.linear(x, decode_weight(other)))
