"""Turning untrusted image bytes into an RGB picture, safely, on every path (bot, CLI, ingest, clean, build).

What decoding may allocate is bounded from the header, before any pixel is decoded:
- only the formats a photo comes in are opened (JPEG/MPO, PNG, WebP, HEIC/HEIF, GIF, TIFF, BMP);
  any other (DDS, ICNS, …) is refused before its decoder runs;
- a photo more elongated than MAX_ASPECT_RATIO is refused: CLIP resizes the shorter side to 224 px,
  so a 100×400,000 PNG would become a 224×896,000 buffer (gigabytes) from a 137 KB file;
- JPEGs decode at reduced scale (draft mode: 1/2, 1/4, 1/8), so a 200 MP phone photo costs what a
  12 MP one does, and they may be as large as MAX_JPEG_PIXELS; formats that cannot decode reduced
  (PNG, GIF, TIFF, WebP, HEIC, BMP) are refused beyond MAX_PIXELS, and once decoded they are reduced
  before any copy is made (mode conversion, EXIF rotation), so a 40 MP PNG costs one decoded frame;
- metadata is read from the header alone: Pillow decodes a whole PNG to look for EXIF stored after its
  pixels, so such EXIF is not read (a 1.5 MB PNG of 40,000 × 40,000 px took a bot from 530 MB to 2.1 GB
  when its GPS was read that way);
- any exception a decoder raises (Pillow plugins raise NotImplementedError, struct.error,
  MemoryError…) is an ImageDecodeError, never a crash.
"""

from __future__ import annotations

import io
import logging
import math
import os
import stat
from pathlib import Path

from PIL import Image

from core.errors import GuideError

log = logging.getLogger(__name__)

# Pixel budget of formats decoded at full size, checked from the header: a decompression bomb
# (a tiny file claiming gigapixels) is refused without allocating it. 40 MP covers PNG screenshots
# and HEIC phone photos (12–48 MP); RGB at 40 MP is 120 MB.
MAX_PIXELS = 40_000_000
# JPEGs are decoded reduced (at most 1/8 per side), so a 400 MP header still decodes to ≤ 6.25 MP.
MAX_JPEG_PIXELS = 400_000_000
# Longest side over shortest side. Panoramas from phones reach ~8:1; beyond 10:1 it is not a photo
# of a landmark, and CLIP's resize would allocate 224 × (224 × ratio) pixels.
MAX_ASPECT_RATIO = 10.0
# Shorter side below which a photo is too small to describe a landmark (prep's "tiny" check, approvals).
MIN_PHOTO_SIDE = 64
# Bytes read from a file or download at most: Telegram's limit for files a bot downloads (20 MB).
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# CLIP ViT-B/32 looks at a 224 px centre crop of the photo resized to 224 px on its shorter side:
# more pixels than that are decoded and thrown away.
MODEL_INPUT_SIDE = 224
# JPEG draft mode decodes at the smallest DCT scale (1/2, 1/4, 1/8) that stays at least this large,
# several times faster for camera-sized photos, and the resize to 224 gets cheaper too.
DRAFT_SIZE = (MODEL_INPUT_SIDE, MODEL_INPUT_SIDE)
# The image formats a photo can come in (Pillow's names); HEIF needs the pillow-heif plugin.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "HEIF", "GIF", "TIFF", "BMP")
REDUCIBLE_FORMATS = frozenset({"JPEG", "MPO"})

# We enforce our own per-format budget above, from the header; Pillow's global bomb check would
# refuse a 200 MP JPEG that draft mode decodes cheaply.
Image.MAX_IMAGE_PIXELS = None


def _register_heif() -> None:
    """HEIC/HEIF (iPhones) through the pillow-heif plugin, when it is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    register_heif_opener()


_register_heif()


def _openable_formats() -> tuple[str, ...]:
    """PHOTO_FORMATS that this Pillow can open (Image.open refuses a list naming an unknown one)."""
    Image.init()
    return tuple(f for f in PHOTO_FORMATS if f in Image.OPEN)


class ImageDecodeError(GuideError, ValueError):
    """The bytes are not a complete image we can read; the message is short and user-presentable."""


class ImageTooLargeError(ImageDecodeError):
    """More pixels than the format's budget (refused from the header, before decoding)."""


class ImageShapeError(ImageDecodeError):
    """Too elongated to be a photo (refused from the header, before decoding)."""


def read_image_file(path: Path, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of an image file given on a command line: a regular file of at most `limit` bytes.
    A FIFO, a device (/dev/zero) or a directory is refused before reading; so is a larger file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageDecodeError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ImageDecodeError(f"{path} is larger than {limit // (1024 * 1024)} MB")
    return data


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS, draft: bool = False, draft_side: int = 0) -> Image.Image:
    """Fully decode `data` into an RGB image with its EXIF orientation applied.

    draft: decode JPEGs at the smallest scale still covering `draft_side` (default: the model's 224 px),
    and reduce other formats right after decoding by the integer factor that still covers it."""
    if not data:
        raise ImageDecodeError("empty file")
    try:
        image = _open_checked(data, max_pixels)
        side = draft_side or MODEL_INPUT_SIDE
        if draft and image.format in REDUCIBLE_FORMATS:
            image.draft("RGB", (side, side))
        elif image.width * image.height > max_pixels:
            raise ImageTooLargeError(f"image too large ({image.width}×{image.height} pixels)")
        # A full load, not verify(): only decoding every pixel catches truncated JPEGs.
        image.load()
        orientation = header_exif(image).get(EXIF_ORIENTATION, 1)  # after the load: a PNG's late eXIf too
        if draft and image.format not in REDUCIBLE_FORMATS:
            image = _reduced(image, side)
        return to_rgb(_upright(image, orientation))
    except ImageDecodeError:
        raise
    except Exception as exc:  # any decoder failure (OSError, SyntaxError, NotImplementedError, MemoryError…)
        raise ImageDecodeError(f"damaged image ({exc.__class__.__name__})") from None


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open the header of a photo format and refuse what would be too costly to decode."""
    try:
        image = Image.open(io.BytesIO(data), formats=_openable_formats())
    except Exception:
        raise ImageDecodeError("not an image we can read") from None
    width, height = image.size
    if min(width, height) < 1:
        raise ImageDecodeError("empty image")
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ImageShapeError(f"too elongated to be a photo ({width}×{height} pixels)")
    budget = MAX_JPEG_PIXELS if image.format in REDUCIBLE_FORMATS else max_pixels
    if width * height > budget:
        raise ImageTooLargeError(f"image too large ({width}×{height} pixels)")
    return image


# Modes Image.reduce() takes as they are (others are converted to RGB first).
REDUCE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I", "F"})
# How Pillow's ImageOps.exif_transpose turns each EXIF orientation upright.
ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _reduced(image: Image.Image, side: int) -> Image.Image:
    """A full-size decode (PNG, WebP, …) reduced by an integer factor that keeps its shorter side ≥ `side`,
    before anything copies it: the decoded frame is the only full-size allocation."""
    factor = min(image.size) // max(1, side)
    if factor < 2:
        return image
    if image.mode not in REDUCE_MODES:
        image = to_rgb(image)
    return image.reduce(factor)


def _upright(image: Image.Image, orientation: object) -> Image.Image:
    method = ORIENTATIONS.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image


def header_exif(image: Image.Image) -> Image.Exif:
    """The EXIF an opened image's header holds, without decoding a pixel. Pillow's PNG plugin decodes the
    whole image when the eXIf chunk is not before the pixels; such EXIF is treated as absent."""
    if image.format == "PNG" and "exif" not in image.info:
        return Image.Exif()
    try:
        return image.getexif()
    except Exception:  # malformed EXIF is no EXIF
        return Image.Exif()


GPS_IFD = 0x8825
EXIF_ORIENTATION = 0x0112
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4


def read_gps(data: bytes) -> tuple[float, float] | None:
    """(lat, lon) from the EXIF GPS tags of an image file, or None: absent, partial or malformed tags
    (a zero denominator, out-of-range values, wrong types) are ignored, never an error.
    Telegram strips EXIF from photos sent as photos; files sent as documents keep it. Only the header is
    read, and only of a photo within the decoding budget."""
    try:
        with _open_checked(data, MAX_PIXELS) as image:
            gps = header_exif(image).get_ifd(GPS_IFD)
        lat = _degrees(gps[GPS_LAT], gps.get(GPS_LAT_REF), "NS")
        lon = _degrees(gps[GPS_LON], gps.get(GPS_LON_REF), "EW")
    except Exception:  # no EXIF, no GPS IFD, a missing tag, garbage: the photo simply has no location
        return None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat, lon) == (0.0, 0.0):
        return None
    return lat, lon


def _degrees(value: object, ref: object, refs: str) -> float | None:
    """Degrees/minutes/seconds rationals (or a single number) with an N/S or E/W reference."""
    parts = [float(v) for v in (value if isinstance(value, tuple | list) else (value,))][:3]
    if not parts or any(not math.isfinite(p) or p < 0 for p in parts):
        return None
    degrees = sum(p / 60**i for i, p in enumerate(parts))
    raw = ref.decode(errors="replace") if isinstance(ref, bytes) else str(ref or refs[0])
    side = raw.strip("\x00 ").upper()[:1]
    if not side or side not in refs:
        return None
    return -degrees if side == refs[1] else degrees


# What Telegram accepts as a photo: width + height ≤ 10,000 and ≤ 10 MB; we send at most this side
# (Telegram's own photo size), as JPEG, whatever the dataset or a tourist's original holds.
TELEGRAM_PHOTO_SIDE = 1280
TELEGRAM_PHOTO_BYTES = 10 * 1024 * 1024
TELEGRAM_JPEG_QUALITY = 87


def telegram_photo(data: bytes) -> bytes:
    """A copy of a photo that Telegram accepts (≤ TELEGRAM_PHOTO_SIDE, JPEG, ≤ 10 MB): the original's bytes
    when they already are one, else a re-encoded copy. ImageDecodeError if it is no readable photo."""
    header = _open_checked(data, MAX_PIXELS)
    upright = header_exif(header).get(EXIF_ORIENTATION, 1) in (0, 1)
    small = max(header.size) <= TELEGRAM_PHOTO_SIDE and len(data) <= TELEGRAM_PHOTO_BYTES
    if header.format == "JPEG" and small and upright:
        return data
    image = decode_image(data, draft=True, draft_side=TELEGRAM_PHOTO_SIDE)
    image.thumbnail((TELEGRAM_PHOTO_SIDE, TELEGRAM_PHOTO_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=TELEGRAM_JPEG_QUALITY, optimize=True)
    return out.getvalue()


EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "HEIF": ".heic", "GIF": ".gif"}
EXTENSIONS |= {"TIFF": ".tif", "BMP": ".bmp"}


def photo_extension(data: bytes) -> str:
    """The file extension for a photo's bytes (by their format, not their name); .jpg if unknown."""
    return EXTENSIONS.get(image_format(data) or "", ".jpg")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB; transparency is flattened on white, as a viewer would show it."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert("RGB")


def image_format(data: bytes) -> str | None:
    """Pillow's name of the format of `data` from its header (e.g. 'JPEG'), or None if not a photo format."""
    try:
        with Image.open(io.BytesIO(data), formats=_openable_formats()) as image:
            return image.format
    except Exception:
        return None
