"""Unreadable and tiny files.

unreadable: the file does not fully decode (every pixel is decoded: truncated JPEGs, which
    `cv2.imread` and `Image.verify()` both let through, are caught). Score 1, threshold 1.
tiny: the shorter side, in pixels, is below MIN_SIDE (the dataset's thumbnails are ~320×240).
"""

from __future__ import annotations

from PIL import Image

from core.imaging import ImageDecodeError, decode_image

MIN_SIDE = 64


def read_photo(data: bytes) -> Image.Image:
    """The photo as RGB, or ImageDecodeError."""
    return decode_image(data)


def is_tiny(image: Image.Image) -> bool:
    return min(image.size) < MIN_SIDE


__all__ = ["MIN_SIDE", "ImageDecodeError", "is_tiny", "read_photo"]
