"""Decoding kslice32-packed INQ codes into float rows on a CPU, fast: a small C kernel compiled at
first use, with a pure-torch fallback that gives the same floats.

Why C: keep="packed" decodes a layer on every forward. The torch path needs a handful of int32
passes per slice plus a gather (tens of ns per weight); the C kernel reads each packed word
once, assembles 32 codes at a time in registers and looks them up in the layer's table of
`packing.decode` values (so it is exact by construction: no float arithmetic at all), well under
a nanosecond per weight with the compiler's vectorisation.

The kernel is compiled with the system C compiler (`$CC`, else `cc`) into a cache folder
(`$INQ_CACHE_DIR`, else `$XDG_CACHE_HOME/inqnet` or `~/.cache/inqnet`), keyed by the source, the
flags and the CPU's feature flags (it is built with -march=native), written atomically. No
compiler, a failed build, or `INQ_CPU_DECODE=torch` in the environment: the torch path runs.

`RowDecoder(packed).rows_into(words, n0, n1, out)` writes rows [n0, n1) of the [N, K] weight
into `out` ([n1 - n0, K], row-major), which is what F.linear / F.conv2d read, so a caller can
decode one tile of output rows at a time into a small buffer that stays in cache
(`packed_linear.TiledLinear`). The kernel works in blocks of 16 rows and prefetches the word
rows it needs next (they are N words apart, on other pages, where hardware prefetch stops).
The fast path needs AVX-512 (compiled in when -march=native has it); elsewhere the same C
runs scalar. float32 only; other dtypes take the torch path.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

from inqnet.kernels.packing import PackedWeight, decode, slice_widths, slice_word_rows
from inqnet.modules.atomic import atomic_path

ENV_BACKEND = "INQ_CPU_DECODE"  # "torch" forces the fallback; anything else tries C first
ENV_CACHE = "INQ_CACHE_DIR"
_TORCH_CHUNK = 1 << 22  # codes per torch-fallback pass
CFLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c99")

_SOURCE = r"""
#include <stdint.h>
#define PF 16  /* groups of 32 codes to prefetch ahead */
#ifdef __AVX512F__
#include <immintrin.h>

/* 16 codes from the slice of width W whose words (one per 32/W codes) start at `base`. */
static inline __attribute__((always_inline)) __m512i slice16(
        const int W, const uint32_t *base, int64_t RS, int half, int off) {
    const int per = 32 / W;                       /* codes per word */
    __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i v, shift;
    if (W == 1) {
        v = _mm512_set1_epi32((int)base[0]);
        shift = _mm512_add_epi32(lanes, _mm512_set1_epi32(16 * half));
    } else {
        const int words = 16 / per;               /* words feeding 16 codes */
        const int64_t w0 = (int64_t)half * words;
        v = _mm512_set1_epi32((int)base[w0 * RS]);
#pragma GCC unroll 8
        for (int i = 1; i < words; ++i)
            v = _mm512_mask_set1_epi32(v, (__mmask16)(((1u << per) - 1u) << (i * per)),
                                       (int)base[(w0 + i) * RS]);
        shift = _mm512_mullo_epi32(_mm512_and_si512(lanes, _mm512_set1_epi32(per - 1)),
                                   _mm512_set1_epi32(W));
    }
    v = _mm512_and_si512(_mm512_srlv_epi32(v, shift), _mm512_set1_epi32((1 << W) - 1));
    return _mm512_slli_epi32(v, off);
}

static inline __attribute__((always_inline)) __m512 lookup16(const int bits, __m512i code,
                                                             const float *lut) {
    if (bits <= 4) return _mm512_permutexvar_ps(code, _mm512_loadu_ps(lut));
    if (bits == 5) return _mm512_permutex2var_ps(_mm512_loadu_ps(lut), code,
                                                 _mm512_loadu_ps(lut + 16));
    return _mm512_i32gather_ps(code, lut, 4);
}
#endif

/* Rows [n0, n1) of a kslice32-packed [N, K] weight -> out[(n1-n0)*K] (row-major) through lut.
   Slice j (width w_j = the binary digits of bits, widest first; first word row starts[j]) holds
   bits [o_j, o_j + w_j) of each code, 32/w_j codes per little-endian word, words stored
   [row, n]. 32 consecutive codes of a row use w_j words of slice j, so a group of 32 codes is
   assembled from sum_j w_j word reads. `bits` is a compile-time constant in each caller. */
static inline __attribute__((always_inline)) void decode_bits(
        const int bits, const uint32_t *words, int64_t RS, int64_t CS, int64_t K, const int32_t *rows,
        const int32_t *starts, const float *lut, int64_t n0, int64_t n1, float *out) {
    int64_t groups = (K + 31) / 32;
    for (int64_t g = 0; g < groups; ++g) {
        int64_t k0 = g * 32, kk = K - k0 < 32 ? K - k0 : 32;
        /* the word rows of group g + PF live on other pages (rows are N words apart), where
           the hardware prefetcher does not follow: ask for them ahead */
        for (int j = 0, W = 8; W >= 1 && RS > 1; W >>= 1) {
            if (!(bits & W)) continue;
            for (int i = 0; i < W; ++i) {
                int64_t row = (g + PF) * W + i;
                if (row >= rows[j]) break;
                const uint32_t *line = words + (int64_t)(starts[j] + row) * RS;
                for (int64_t b = n0; b < n1; b += 16) __builtin_prefetch(line + b * CS, 0, 3);
            }
            ++j;
        }
#ifdef __AVX512F__
        int full = kk == 32;
        for (int j = 0, W = 8; W >= 1; W >>= 1)
            if (bits & W) { if (rows[j] - g * W < W) full = 0; ++j; }
        if (full) {
            for (int64_t n = n0; n < n1; ++n) {
                __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
                int j = 0, off = 0;
#pragma GCC unroll 4
                for (int W = 8; W >= 1; W >>= 1) {
                    if (!(bits & W)) continue;
                    const uint32_t *base = words + (int64_t)(starts[j] + g * W) * RS + n * CS;
                    c0 = _mm512_or_si512(c0, slice16(W, base, RS, 0, off));
                    c1 = _mm512_or_si512(c1, slice16(W, base, RS, 1, off));
                    off += W; ++j;
                }
                float *dst = out + (n - n0) * K + k0;
                _mm512_storeu_ps(dst, lookup16(bits, c0, lut));
                _mm512_storeu_ps(dst + 16, lookup16(bits, c1, lut));
            }
            continue;
        }
#endif
        for (int64_t n = n0; n < n1; ++n) {
            uint32_t code[32] = {0};
            int j = 0, off = 0;
#pragma GCC unroll 4
            for (int W = 8; W >= 1; W >>= 1) {
                if (!(bits & W)) continue;
                const uint32_t *base = words + (int64_t)(starts[j] + g * W) * RS + n * CS;
                int64_t avail = rows[j] - g * W;
                if (avail >= W) {
#pragma GCC unroll 8
                    for (int i = 0; i < W; ++i) {
                        uint32_t word = base[(int64_t)i * RS];
#pragma GCC unroll 32
                        for (int t = 0; t < 32 / W; ++t)
                            code[i * (32 / W) + t] |= ((word >> (t * W)) & ((1u << W) - 1u)) << off;
                    }
                } else {
                    for (int i = 0; i < avail; ++i) {
                        uint32_t word = base[(int64_t)i * RS];
                        for (int t = 0; t < 32 / W; ++t)
                            code[i * (32 / W) + t] |= ((word >> (t * W)) & ((1u << W) - 1u)) << off;
                    }
                }
                off += W; ++j;
            }
            float *dst = out + (n - n0) * K + k0;
            if (kk == 32) {
                for (int t = 0; t < 32; ++t) dst[t] = lut[code[t]];
            } else {
                for (int t = 0; t < kk; ++t) dst[t] = lut[code[t]];
            }
        }
    }
}

int inq_decode_rows_f32(const uint32_t *words, int64_t N, int64_t RS, int64_t CS, int64_t K, int bits,
                        const int32_t *rows, const int32_t *starts, const float *lut,
                        int64_t n0, int64_t n1, float *out) {
    if (n0 < 0 || n1 > N || n0 > n1) return 1;
    /* blocks of 16 rows: one cache line of each word row, and 16 output rows written at once */
#define BLOCKED(B) for (int64_t nb = n0; nb < n1; nb += 16)                             \
        decode_bits(B, words, RS, CS, K, rows, starts, lut, nb, nb + 16 < n1 ? nb + 16 : n1,  \
                    out + (nb - n0) * K)
    switch (bits) {  /* one specialised body per bit width: constant trip counts inside */
        case 2: BLOCKED(2); break;
        case 3: BLOCKED(3); break;
        case 4: BLOCKED(4); break;
        case 5: BLOCKED(5); break;
        case 6: BLOCKED(6); break;
        case 7: BLOCKED(7); break;
        case 8: BLOCKED(8); break;
        case 9: BLOCKED(9); break;
        default: return 2;
    }
    return 0;
}

/* The same call with its arguments in one struct: a layer builds it once per buffer pair, so
   a small layer's decode costs one foreign call with one argument instead of twelve. */
typedef struct {
    const uint32_t *words; int64_t N, RS, CS, K, bits;
    const int32_t *rows, *starts; const float *lut; int64_t n0, n1; float *out;
} inq_decode_args;

int inq_decode_args_f32(const inq_decode_args *a) {
    return inq_decode_rows_f32(a->words, a->N, a->RS, a->CS, a->K, (int)a->bits, a->rows, a->starts,
                               a->lut, a->n0, a->n1, a->out);
}
"""


@dataclass(frozen=True)
class Layout:
    """Where each bit slice of a packed [N, K] weight lives (ints the kernel reads)."""

    n: int
    k: int
    widths: tuple[int, ...]
    rows: tuple[int, ...]  # word rows per slice
    starts: tuple[int, ...]  # first word row of each slice
    offsets: tuple[int, ...]  # first code bit each slice holds

    @classmethod
    def of(cls, packed: PackedWeight) -> "Layout":
        widths = slice_widths(packed.bits)
        rows = slice_word_rows(packed.bits, packed.k)
        starts = tuple(sum(rows[:j]) for j in range(len(rows)))
        offsets = tuple(sum(widths[:j]) for j in range(len(widths)))
        return cls(packed.n, packed.k, widths, rows, starts, offsets)


def decode_table(packed: PackedWeight, dtype: torch.dtype) -> torch.Tensor:
    """The value of every b-bit code (index = code): `packing.decode`, so lookups are exact."""
    return decode(torch.arange(1 << packed.bits, dtype=torch.int64), packed.bits, packed.n1, dtype)


def cache_dir() -> Path:
    """Where the compiled kernel is kept between processes."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]) / "cpu_decode"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inqnet" / "cpu_decode"


def _cpu_key() -> str:
    """The CPU's identity for -march=native: its feature flags (or the machine name)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.machine() + platform.processor()


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc")


def _build(cc: str) -> Path:
    """Compile the kernel into the cache (once per source, flags and CPU); returns the .so."""
    key = hashlib.sha256("\0".join((_SOURCE, cc, *CFLAGS, _cpu_key())).encode()).hexdigest()[:16]
    target = cache_dir() / f"inq_decode_{key}.so"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "inq_decode.c"
        source.write_text(_SOURCE)
        with atomic_path(target, suffix=".so") as tmp:
            subprocess.run([cc, *CFLAGS, str(source), "-o", str(tmp)], check=True,
                           capture_output=True, text=True, timeout=120)
    return target


class DecodeArgs(ctypes.Structure):
    """`inq_decode_args` of the C source, field for field."""

    _fields_ = [("words", ctypes.c_void_p), ("N", ctypes.c_int64), ("RS", ctypes.c_int64),
                ("CS", ctypes.c_int64), ("K", ctypes.c_int64), ("bits", ctypes.c_int64),
                ("rows", ctypes.c_void_p), ("starts", ctypes.c_void_p), ("lut", ctypes.c_void_p),
                ("n0", ctypes.c_int64), ("n1", ctypes.c_int64), ("out", ctypes.c_void_p)]


class Kernel(NamedTuple):
    """The compiled entry points: `rows` takes twelve arguments, `args` one `DecodeArgs` address."""

    rows: Any
    args: Any


@lru_cache(maxsize=1)
def _kernel() -> Kernel | None:
    """The compiled functions, or None (fallback) with one warning saying why."""
    if os.environ.get(ENV_BACKEND, "").lower() == "torch":
        return None
    cc = _compiler()
    if cc is None:
        return None
    try:
        lib = ctypes.CDLL(str(_build(cc)))
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", "") or err
        warnings.warn(f"inqnet: CPU decode kernel not built ({str(detail).strip()[:200]}); "
                      f"using the torch decoder", RuntimeWarning, stacklevel=3)
        return None
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    rows, args = lib.inq_decode_rows_f32, lib.inq_decode_args_f32
    rows.argtypes = [p, i64, i64, i64, i64, i32, p, p, p, i64, i64, p]
    args.argtypes = [p]
    rows.restype = args.restype = ctypes.c_int
    return Kernel(rows, args)


def backend() -> str:
    """"c" when the compiled kernel runs, else "torch"."""
    return "c" if _kernel() is not None else "torch"


class RowDecoder:
    """Decodes rows of one packed weight into caller buffers (C kernel, or torch fallback)."""

    def __init__(self, packed: PackedWeight) -> None:
        self.layout = Layout.of(packed)
        lay = self.layout
        self.bits = packed.bits
        self._rows = torch.tensor(lay.rows, dtype=torch.int32)
        self._starts = torch.tensor(lay.starts, dtype=torch.int32)
        self._luts: dict[torch.dtype, torch.Tensor] = {}
        self._packed = packed
        self._shifts = [torch.arange(32 // w, dtype=torch.int32) * w for w in lay.widths]
        self._whole: tuple[torch.Tensor, torch.Tensor, DecodeArgs, int] | None = None  # whole_into

    def table(self, dtype: torch.dtype) -> torch.Tensor:
        if dtype not in self._luts:
            self._luts[dtype] = decode_table(self._packed, dtype)
        return self._luts[dtype]

    @staticmethod
    def kernel_runs(dtype: torch.dtype) -> bool:
        """True when CPU rows of this dtype are decoded by the compiled kernel."""
        return dtype == torch.float32 and _kernel() is not None

    def uses_kernel(self, words: torch.Tensor, dtype: torch.dtype) -> bool:
        """The kernel reads words [R, N] with any strides: the export's layout (K-major,
        strides (N, 1)) or its transpose stored row-major (strides (1, R))."""
        return (self.kernel_runs(dtype) and words.device.type == "cpu"
                and words.dtype == torch.int32 and min(words.stride()) >= 1)

    @staticmethod
    def _strides(words: torch.Tensor) -> tuple[int, int]:
        return words.stride(0), words.stride(1)

    def rows_into(self, words: torch.Tensor, n0: int, n1: int, out: torch.Tensor) -> torch.Tensor:
        """Rows [n0, n1) of the weight written into `out` (contiguous, [n1 - n0, K])."""
        lay = self.layout
        if self.uses_kernel(words, out.dtype) and out.is_contiguous():
            status = _kernel().rows(words.data_ptr(), lay.n, *self._strides(words), lay.k, self.bits,
                               self._rows.data_ptr(),
                               self._starts.data_ptr(), self.table(torch.float32).data_ptr(),
                               n0, n1, out.data_ptr())
            if status != 0:
                raise ValueError(f"decode of rows [{n0}, {n1}) of a [{lay.n}, {lay.k}] weight "
                                 f"refused by the kernel")
            return out
        step = max(1, _TORCH_CHUNK // max(1, lay.k))  # bounds the int32 scratch of the fallback
        for r0 in range(n0, n1, step):
            r1 = min(n1, r0 + step)
            self.torch_rows_into(words, r0, r1, out[r0 - n0:r1 - n0])
        return out

    def _args(self, words: torch.Tensor, out: torch.Tensor, n0: int, n1: int) -> DecodeArgs:
        """The kernel's arguments for rows [n0, n1) of `words` into `out` (float32 table)."""
        lay = self.layout
        return DecodeArgs(words.data_ptr(), lay.n, *self._strides(words), lay.k, self.bits,
                          self._rows.data_ptr(), self._starts.data_ptr(),
                          self.table(torch.float32).data_ptr(), n0, n1, out.data_ptr())

    def whole_into(self, words: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """All rows into `out` (contiguous, N * K elements in any shape: [N, K] or the conv
        weight's), as `rows_into(words, 0, N, out)`, with the kernel's arguments built once per
        (words, out) pair of tensors and reused: a small layer's decode is then one foreign call.
        The pair is held (so its memory stays theirs) and compared by identity; replacing a
        tensor (`.to()`, `load_state_dict(assign=True)`) rebuilds the arguments, changing a
        tensor's storage in place (`set_`) is not supported."""
        cached, kernel = self._whole, _kernel()
        if kernel is None or cached is None or cached[0] is not words or cached[1] is not out:
            lay = self.layout
            if not (kernel is not None and self.uses_kernel(words, out.dtype)
                    and out.is_contiguous() and out.numel() == lay.n * lay.k):
                self.rows_into(words, 0, lay.n, out.view(lay.n, lay.k))
                return out
            args = self._args(words, out, 0, lay.n)
            cached = self._whole = (words, out, args, ctypes.addressof(args))
        if kernel.args(cached[3]) != 0:
            raise ValueError(f"decode of a [{self.layout.n}, {self.layout.k}] weight refused by the kernel")
        return out

    def tile_decoder(self, words: torch.Tensor, buffer: torch.Tensor) -> Callable[[int, int], torch.Tensor]:
        """`decode(n0, n1)`: rows [n0, n1) into the front of `buffer` (contiguous, at least
        (n1 - n0) * K elements), returned as [n1 - n0, K]. The kernel's arguments are built once
        here and only the row range changes per call, so a tile costs one foreign call."""
        lay, kernel = self.layout, _kernel()
        if kernel is None or not (self.uses_kernel(words, buffer.dtype) and buffer.is_contiguous()):
            return lambda n0, n1: self.rows_into(words, n0, n1, buffer[:(n1 - n0) * lay.k].view(n1 - n0, lay.k))
        args = self._args(words, buffer, 0, 0)
        address, call, k, limit = ctypes.addressof(args), kernel.args, lay.k, buffer.numel()

        def decode(n0: int, n1: int) -> torch.Tensor:
            if (n1 - n0) * k > limit:
                raise ValueError(f"rows [{n0}, {n1}) do not fit a buffer of {limit} elements")
            args.n0, args.n1 = n0, n1
            if call(address) != 0:
                raise ValueError(f"decode of rows [{n0}, {n1}) of a [{lay.n}, {k}] weight refused by the kernel")
            return buffer[:(n1 - n0) * k].view(n1 - n0, k)

        decode.keep = (words, buffer, args)  # type: ignore[attr-defined]  # alive while decode is
        return decode

    def torch_rows_into(self, words: torch.Tensor, n0: int, n1: int,
                        out: torch.Tensor) -> torch.Tensor:
        """The fallback: a few int32 passes per slice and one table lookup."""
        lay = self.layout
        code = None
        for start, rows, width, offset, shifts in zip(lay.starts, lay.rows, lay.widths,
                                                      lay.offsets, self._shifts):
            block = words[start:start + rows, n0:n1].t()  # [T, rows]
            field = torch.bitwise_right_shift(block.unsqueeze(2), shifts.to(words.device))
            field = field.reshape(n1 - n0, -1)[:, :lay.k].bitwise_and_((1 << width) - 1)
            code = field if code is None else code.bitwise_or_(field.bitwise_left_shift_(offset))
        assert code is not None
        torch.index_select(self.table(out.dtype).to(out.device), 0, code.reshape(-1),
                           out=out.view(-1))
        return out
