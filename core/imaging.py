"""Turning untrusted image bytes into an RGB picture, safely."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import GuideError

# Pixel budget checked from the header before any pixel is decoded: a decompression bomb
# (a tiny file claiming gigapixels) is refused without allocating it. 40 MP covers any phone photo.
MAX_PIXELS = 40_000_000
# CLIP ViT-B/32 looks at a 224 px centre crop of the photo resized to 224 px on its shorter side:
# more pixels than that are decoded and thrown away.
MODEL_INPUT_SIDE = 224
# JPEG draft mode decodes at the smallest DCT scale (1/2, 1/4, 1/8) that stays at least this large,
# several times faster for camera-sized photos, and the resize to 224 gets cheaper too.
DRAFT_SIZE = (MODEL_INPUT_SIDE, MODEL_INPUT_SIDE)


class ImageDecodeError(GuideError, ValueError):
    """The bytes are not a complete image we can read; the message is short and user-presentable."""


class ImageTooLargeError(ImageDecodeError):
    """More pixels than MAX_PIXELS (refused from the header, before decoding)."""


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS, draft: bool = False) -> Image.Image:
    """Fully decode `data` into an RGB image with its EXIF orientation applied."""
    if not data:
        raise ImageDecodeError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLargeError(f"image too large ({width}×{height} pixels)")
            if draft and image.format == "JPEG":
                image.draft("RGB", DRAFT_SIZE)
            # A full load, not verify(): only decoding every pixel catches truncated JPEGs.
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageDecodeError("not an image we can read") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageDecodeError(f"damaged image ({exc.__class__.__name__})") from None
    return to_rgb(image)


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
    """Pillow's name of the format of `data` from its header (e.g. 'JPEG'), or None if unknown."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except Exception:
        return None
