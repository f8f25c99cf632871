"""Unreadable and tiny files.

unreadable: the file does not fully decode (every pixel is decoded: truncated JPEGs, which
    `cv2.imread` and `Image.verify()` both let through, are caught). Score 1, threshold 1.
tiny: the shorter side, in pixels, is below MIN_SIDE (the dataset's thumbnails are ~320×240).
"""

from __future__ import annotations

from PIL import Image

from core import decode_image
from prep.checks.base import MIN_SIDE, Finding, PhotoCheck, PhotoUnderReview

# Pixel checks look at ≤512 px; a big JPEG is decoded at the smallest scale still twice that.
DECODE_SIDE = 1024


def read_photo(data: bytes) -> Image.Image:
    """The photo as RGB, or ImageDecodeError."""
    return decode_image(data, draft=True, draft_side=DECODE_SIDE)


def is_tiny(image: Image.Image) -> bool:
    return min(image.size) < MIN_SIDE


class UnreadableCheck(PhotoCheck):
    name = reason = "unreadable"

    def inspect(self, photo: PhotoUnderReview) -> Finding | None:
        return None if photo.image is not None else Finding(photo.path, self.reason, 1.0, 1.0, photo.error)


class TinyCheck(PhotoCheck):
    name = reason = "tiny"

    def inspect(self, photo: PhotoUnderReview) -> Finding | None:
        if photo.image is None or not is_tiny(photo.image):
            return None
        size = "×".join(map(str, photo.image.size))
        return Finding(photo.path, self.reason, float(min(photo.image.size)), MIN_SIDE, size)


UNREADABLE, TINY = UnreadableCheck(), TinyCheck()
