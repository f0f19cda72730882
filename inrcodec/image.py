"""Image I/O with Pillow: the mode policy, the pixel limit, uint8 <-> float, PSNR.

Mode policy (docs/pipeline.md): L stays grey, RGB stays RGB, RGBA is coded with its alpha as a
fourth channel, LA and PA become RGBA (the format has no 2-channel mode, so the grey is repeated
and the alpha kept), P (palette) becomes RGB or RGBA (if it has transparency), 1 becomes L,
I;16 / I / F are scaled to 8-bit L, CMYK, YCbCr and the other colour modes become RGB. Every
channel is coded at 8 bits: a deeper image, or one of several frames (an animation; not an MPO, a
camera JPEG with its preview), is accepted with a warning that says so (``probe``).
Images smaller than MIN_SIDE on a side are refused: the file's fixed overhead would dwarf them.
"""

from __future__ import annotations

import io
import math
import os
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from inrcodec import png
from inrcodec.format import MAX_PIXELS  # the format's limit: the largest image we encode or decode
from inrcodec.pixels import from_unit as from_unit  # re-exported: image.from_unit, image.to_unit
from inrcodec.pixels import to_unit as to_unit

MIN_SIDE = 8  # the smallest width or height we encode: a 1x1 image would cost ~16,000 bpp of header

_MODES = ("RGB", "L", "RGBA", "LA", "P", "PA", "1", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_MODES += ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa")  # every mode _to_8bit converts


class ImageError(ValueError):
    """The input image cannot be coded (message says why)."""


class PrecisionWarning(UserWarning):
    """The file holds more than is coded: samples deeper than 8 bits (coded at 8), or more than
    one frame (the first is coded)."""


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image file says, read without decoding its pixels."""

    width: int  # pixels
    height: int  # pixels
    mode: str  # Pillow's mode, before the mode policy
    bits: int  # bits per sample in the file (16 for 16-bit PNGs, whatever Pillow's mode)
    channels: int  # what the mode policy makes of it: 1, 3 or 4
    frames: int = 1  # frames or pages in the file (an animated GIF, WebP or PNG, a TIFF's pages)

    @property
    def warning(self) -> str | None:
        """One line for an image that loses something when coded (deeper samples, later
        frames), else None."""
        lost = [f"{self.bits}-bit samples are coded at 8 bits"] if self.bits > 8 else []
        if self.frames > 1:
            lost.append(f"{self.frames} frames, only the first is coded")
        return "; ".join(lost) or None


def _info(img: Image.Image) -> ImageInfo:
    rawmodes = [str(t.args) for t in getattr(img, "tile", None) or [] if isinstance(t.args, str)]
    deep = img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F") or any(";16" in r for r in rawmodes)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        channels = 4
    elif img.mode in ("L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        channels = 1
    else:
        channels = 3
    # An MPO (a camera JPEG with a preview or depth map beside it) is one picture, not frames.
    frames = 1 if img.format == "MPO" else getattr(img, "n_frames", 1)
    return ImageInfo(img.width, img.height, img.mode, 16 if deep else 8, channels, frames)


def _check(info: ImageInfo, path: Path) -> None:
    if info.width * info.height > MAX_PIXELS:
        raise ImageError(f"{path}: {info.width}x{info.height} is over the {MAX_PIXELS} pixel limit")
    if min(info.width, info.height) < MIN_SIDE:
        raise ImageError(f"{path}: {info.width}x{info.height} is below the {MIN_SIDE}x{MIN_SIDE} minimum")
    if info.mode not in _MODES:
        raise ImageError(f"{path}: unsupported image mode {info.mode}")


def probe(path: str | os.PathLike) -> ImageInfo:
    """Check that ``path`` is an image we can code (kind, size, mode) from its header alone: cheap,
    so the command line calls it before importing torch or fitting anything."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # over MAX_PIXELS is refused below, in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                info = _info(img)
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours: said as ours
        raise ImageError(f"{path}: is over the {MAX_PIXELS} pixel limit") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot read image ({e})") from None
    _check(info, path)
    return info


def _to_8bit(img: Image.Image) -> Image.Image:
    if img.mode in ("RGB", "L", "RGBA"):
        return img
    if img.mode == "LA":
        return img
    if img.mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "PA":
        return img.convert("RGBA")
    if img.mode == "1":
        return img.convert("L")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if img.mode == "F" and a.size and a.max() <= 1.0:  # a float image in [0, 1]: that is its white
            top = 1.0
        else:
            top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8), "L")
    if img.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        return img.convert("RGB")
    raise ImageError(f"unsupported image mode {img.mode}")


def load(path: str | os.PathLike, data: bytes | None = None) -> np.ndarray:
    """An (H, W, C) uint8 array with C in {1, 3, 4}, by the mode policy above (a PrecisionWarning
    for an image deeper than 8 bits). ``data``: the file's bytes, read elsewhere (a batch's
    workers get them with the job); ``path`` then only names the image in messages."""
    path = Path(path)
    if data is None and not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # over MAX_PIXELS is refused by _check, in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path if data is None else io.BytesIO(data))
        with img:
            info = _info(img)
            _check(info, path)
            if info.warning:
                warnings.warn(f"{path}: {info.warning}", PrecisionWarning, stacklevel=2)
            img.load()
            img = _to_8bit(img)
            arr = np.asarray(img, dtype=np.uint8)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: is over the {MAX_PIXELS} pixel limit") from None
    except (OSError, SyntaxError, ValueError) as e:
        why = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", repr(str(path)), str(e))
        raise ImageError(f"{path}: cannot read image ({why})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 2:  # LA: grey + alpha is coded as RGBA so the alpha is kept
        arr = np.concatenate([arr[:, :, :1]] * 3 + [arr[:, :, 1:]], axis=2)
    return np.ascontiguousarray(arr)


def from_pil(img: Image.Image) -> np.ndarray:
    """The same policy for an in-memory Pillow image."""
    arr = np.asarray(_to_8bit(img), dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 2:
        arr = np.concatenate([arr[:, :, :1]] * 3 + [arr[:, :, 1:]], axis=2)
    return np.ascontiguousarray(arr)


def to_pil(arr: np.ndarray) -> Image.Image:
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images over all channels (peak 255)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


_PREINIT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF", ".ppm": "PPM"}


def image_extensions() -> set[str]:
    """File extensions Pillow reads (lower case, with the dot): how a folder's images are found."""
    return set(Image.registered_extensions())


# The largest side each format's writer takes (libjpeg: 65,500; libwebp: 16,383; 16-bit sizes
# in GIF, TGA, PCX, SGI; MPO and PDF through libjpeg), checked before a render.
MAX_SIDE = {"JPEG": 65500, "MPO": 65500, "PDF": 65500, "WEBP": 16383, "GIF": 65535, "TGA": 65535, "PCX": 65535}
MAX_SIDE |= {"SGI": 65535}


def output_format(path: str | os.PathLike, channels: int, size: tuple[int, int] | None = None) -> str:
    """Pillow's format name for writing ``channels`` (and a ``size`` (width, height), when known)
    to ``path``, by its extension (checked before any work: a decode must not find out after
    rendering that it cannot write)."""
    path = Path(path)
    # The common formats without Image.registered_extensions(), which imports every Pillow
    # plugin (0.12 s of a 0.9 s `inrcodec decode` command).
    fmt = _PREINIT_FORMATS.get(path.suffix.lower()) or Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown output image format {path.suffix!r}")
    if fmt not in _PREINIT_FORMATS.values() and fmt not in Image.SAVE:  # registered to read only (.inr)
        raise ImageError(f"{path}: cannot write {fmt} images; name a .png (or .jpg, .webp, ...) with -o")
    if fmt in ("JPEG", "PPM") and channels == 4:
        raise ImageError(f"{path}: {fmt} cannot hold an alpha channel; use .png")
    if size is not None and max(size) > MAX_SIDE.get(fmt, max(size)):
        raise ImageError(f"{path}: {fmt} holds at most {MAX_SIDE[fmt]} pixels a side, not {size[0]}x{size[1]}")
    if fmt != "PNG":  # Pillow's writer for this mode, tried on one pixel (XBM, EPS, PCX... take only some modes)
        one = to_pil(np.zeros((1, 1, channels), np.uint8))
        try:
            one.save(io.BytesIO(), format=fmt)
        except (OSError, ValueError, KeyError) as e:  # a mode it lacks, or no writer here (HDF5, GRIB, WMF)
            raise ImageError(f"{path}: cannot write {one.mode} images as {fmt} ({e}); use .png") from None
    return fmt


def save(
    arr: np.ndarray, path: str | os.PathLike, overwrite: bool = True, ready: Callable[[int], None] | None = None
) -> None:
    """Write atomically (``atomic_write``); the format follows the extension. With ``ready`` (an
    image still being rendered: ``ready(y)`` returns once its rows above y are final), a PNG is
    written block by block as its rows are done, any other format once every row is."""
    path = Path(path)
    fmt = output_format(path, arr.shape[2], (arr.shape[1], arr.shape[0]))

    def write(f) -> None:
        if fmt == "PNG":  # inrcodec.png: 4x faster than Pillow's writer at zlib level 3 (docs/performance.md)
            png.write(f, arr, ready=ready)
        else:
            if ready is not None:
                ready(arr.shape[0])
            try:
                to_pil(arr).save(f, format=fmt)
            except OSError:
                raise  # atomic_write names the file
            except Exception as e:  # Pillow's other refusals (ValueError, OverflowError, struct.error, ...)
                raise ImageError(f"{path}: cannot write {fmt} ({type(e).__name__}: {e})") from None
        if ready is not None:  # once more: a render interrupted meanwhile keeps the file out
            ready(arr.shape[0])

    atomic_write(path, write, overwrite)


def save_while_rendering(
    arr: np.ndarray, path: str | os.PathLike, render: Callable[[], None], rows, overwrite: bool = True
) -> None:
    """Run ``render()``, which fills ``arr`` and marks its rows in ``rows`` (decoder.cpu.RowsDone),
    while a second thread writes ``arr`` to ``path`` as they are done: the PNG's compression then
    overlaps the render's last bands instead of following them (docs/performance.md). If the render
    fails, the writer stops and leaves no file, and the render's exception is raised; else the
    writer's, if it failed."""
    failed: list[BaseException] = []

    def write() -> None:
        try:
            save(arr, path, overwrite, ready=rows.wait)
        except BaseException as e:  # re-raised in the caller's thread below
            failed.append(e)

    writer = threading.Thread(target=write, name="inrcodec-writer")
    writer.start()
    try:
        render()
        rows.finish()
        writer.join()
    except BaseException:  # the render failed, or Ctrl-C while it or the writer ran
        rows.abort()
        writer.join()
        raise
    if failed:
        raise failed[0]


def atomic_write(path: str | os.PathLike, writer, overwrite: bool = True) -> None:
    """Call ``writer(file)`` on a temporary file beside ``path``, then move it into place: no
    partial files. With ``overwrite=False`` an existing ``path`` is never replaced, even one that
    appeared while we worked (the move is a hard link, which fails if the name is taken).
    Errors name ``path``, never the temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise FileExistsError(f"{path}: exists; not overwritten") from None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OSError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """An (H, W, C) uint8 image resized to ``width`` x ``height`` (Lanczos, Pillow's)."""
    return from_pil(to_pil(arr).resize((width, height), Image.Resampling.LANCZOS))


def load_labels(path: str | os.PathLike) -> np.ndarray:
    """(H, W) int64 labels from a label image: L/P/I values as they are, RGB(A) one label per colour."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("L", "P", "I", "I;16", "1"):
                return np.asarray(img, dtype=np.int64)
            rgb = np.asarray(img.convert("RGBA"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot read label image ({e})") from None
    packed = rgb.astype(np.int64) @ np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.int64)
    return np.unique(packed, return_inverse=True)[1].reshape(rgb.shape[:2])
