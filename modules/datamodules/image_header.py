"""Image files checked from their headers before any pixel is allocated (GlaS BMPs, ImageNet JPEGs).

``PIL.Image.open`` reads only the header; the declared size is checked against a pixel limit
(``DEFAULT_MAX_IMAGE_PIXELS``, raised per recipe with ``data.max_image_pixels``) and, for
uncompressed files (BMP), against the file's length, so a header claiming 30000x30000 or a
truncated file is one line naming the file, never PIL's decompression-bomb traceback or a
multi-gigabyte allocation. The same checks run at set-up over every file (``preflight``) and again
whenever pixels are loaded.
"""
from __future__ import annotations

import contextlib
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from inqnet.modules.errors import DataError, data_error, first_line

DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192  # 67 megapixels: GlaS images are 0.4, ImageNet's largest about 30
_PIL_LOCK = threading.Lock()
_CHUNK = 512  # files per worker task in check_headers
_DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError,
                  EOFError, IndexError, struct.error)


@dataclass(frozen=True)
class ImageHeader:
    """What an image file declares: its size, PIL mode and format."""

    width: int
    height: int
    mode: str
    format: str


@contextlib.contextmanager
def _pil_allows(max_pixels: int) -> Iterator[None]:
    """Lets PIL open what ``max_pixels`` allows: our limit is the one that speaks, PIL's guard is lifted
    (under a lock, restored after) only when a recipe raised the limit past it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        pil_limit = Image.MAX_IMAGE_PIXELS
        if pil_limit is None or max_pixels <= 2 * pil_limit:
            yield
            return
        with _PIL_LOCK:
            Image.MAX_IMAGE_PIXELS = None
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = pil_limit


def _raw_bytes_needed(img: Image.Image) -> int | None:
    """Bytes an uncompressed (raw-tiled, e.g. BMP) file must hold for its declared size; None if compressed."""
    tiles = getattr(img, "tile", None) or []
    if len(tiles) != 1 or tiles[0][0] != "raw":
        return None
    _, box, offset, args = tiles[0]
    stride = args[1] if isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], int) else 0
    if stride <= 0:
        return None
    return int(offset) + stride * (box[3] - box[1])


def _check_declared(img: Image.Image, path: Path, max_pixels: int) -> ImageHeader:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise data_error(path, f"image header declares {width}x{height} pixels")
    if width * height > max_pixels:
        raise data_error(path, f"image header declares {width}x{height} = {width * height} pixels, more than the "
                               f"limit of {max_pixels} (data.max_image_pixels raises it)")
    need = _raw_bytes_needed(img)
    if need is not None:
        length = path.stat().st_size
        if length < need:
            raise data_error(path, f"truncated or corrupt image (header declares {width}x{height}, needing "
                                   f"{need} bytes; the file has {length})")
    return ImageHeader(width, height, img.mode, img.format or "")


def _bomb_problem(path: Path, max_pixels: int) -> DataError:
    """Our own message for a file PIL's guard refused: reopened (rare, under the lock) with the
    guard lifted, only to read the declared size."""
    with _PIL_LOCK:
        pil_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as img:
                _check_declared(img, path, max_pixels)
        except DataError as err:
            return err
        except _DECODE_ERRORS as err:
            return data_error(path, f"truncated or corrupt image ({first_line(err)})")
        finally:
            Image.MAX_IMAGE_PIXELS = pil_limit
    return data_error(path, "image header declares more pixels than PIL allows")


def _problem(path: Path, err: BaseException, max_pixels: int) -> DataError:
    if isinstance(err, Image.DecompressionBombError):
        return _bomb_problem(path, max_pixels)
    return data_error(path, f"truncated or corrupt image ({first_line(err)})")


@contextlib.contextmanager
def open_checked(path: str | Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Iterator[Image.Image]:
    """The opened image after its header passed the checks; a decoding error inside the block is a
    DataError naming the file."""
    path = Path(path)
    try:
        with _pil_allows(max_pixels), Image.open(path) as img:
            _check_declared(img, path, max_pixels)
            yield img
    except DataError:
        raise
    except _DECODE_ERRORS as err:
        raise _problem(path, err, max_pixels) from None


def read_header(path: str | Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> ImageHeader:
    """The checked header of one image file (no pixel data read)."""
    path = Path(path)
    try:
        with _pil_allows(max_pixels), Image.open(path) as img:
            return _check_declared(img, path, max_pixels)
    except DataError:
        raise
    except _DECODE_ERRORS as err:
        raise _problem(path, err, max_pixels) from None


def _first_problem(paths: list[Path], max_pixels: int) -> str | None:
    """The message of the first bad file among ``paths`` (run in a worker process), or None."""
    for path in paths:
        try:
            read_header(path, max_pixels)
        except DataError as err:
            return str(err)
    return None


def check_headers(paths: list[Path], max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, workers: int = 8) -> None:
    """Checks every file's header; in ``workers`` processes for long lists (PIL parses headers in
    Python, so threads would share one core). The first bad file in ``paths`` order raises, so the
    error is the same however the work was split."""
    if len(paths) < 2 * _CHUNK or workers <= 1:
        message = _first_problem(paths, max_pixels)
    else:
        from concurrent.futures import ProcessPoolExecutor

        chunks = [paths[i:i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
        message = None
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for found in pool.map(_first_problem, chunks, [max_pixels] * len(chunks)):
                if found is not None:
                    message = found
                    break
    if message is not None:
        raise DataError(message)
