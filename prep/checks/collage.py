"""Collages: several photos tiled into one.

A grid line is found at a grid position (1/2, 1/3, 2/3, 1/4, 3/4 of the width or height) when
either
  - a seam runs across the whole image there: a colour step across the line present along at least
    SEAM_MIN_COVERAGE of its length and clearly stronger than the steps SEAM_NEIGHBOUR px to either
    side (so textures such as brick walls, whose steps are everywhere, do not count), or
  - a gutter lies there: a band of SEAM_..GUTTER_MAX_WIDTH uniform lines across the whole image,
    bordered on both sides by a step (so an even sky, which fades into its neighbours, does not count).
score = the number of grid positions with a line; flagged from MIN_GRID_LINES. One line alone is
what a horizon or a lamp post can give; two at grid positions practically only come from tiling.
"""

from __future__ import annotations

import numpy as np

from prep.checks.base import Finding, PhotoCheck, PhotoUnderReview

GRID_FRACTIONS = (1 / 2, 1 / 3, 2 / 3, 1 / 4, 3 / 4)
POSITION_TOLERANCE = 2  # px either side of the exact grid position
SEAM_MIN_STEP = 14.0  # 0–255 scale, largest channel difference across the line
SEAM_NEIGHBOUR = 4
SEAM_MIN_COVERAGE = 0.7
GUTTER_MAX_STD = 6.0
GUTTER_MIN_WIDTH = 2
GUTTER_MAX_WIDTH_SHARE = 0.08
GUTTER_MIN_EDGE_COVERAGE = 0.7
# The gutter's sides are compared this many px away from the band: JPEG ringing blurs the first one.
GUTTER_EDGE_GAP = 2
MIN_GRID_LINES = 2


def grid_lines(rgb: np.ndarray) -> list[str]:
    """Grid positions with a seam or a gutter, e.g. ['vertical 1/2', 'horizontal 1/2']."""
    pixels = rgb.astype(np.float32)
    found = []
    for orientation, image in (("vertical", pixels), ("horizontal", pixels.transpose(1, 0, 2))):
        width = image.shape[1]
        for fraction in GRID_FRACTIONS:
            centre = int(round(fraction * width))
            if _has_seam(image, centre) or _has_gutter(image, centre):
                found.append(f"{orientation} {_fraction_label(fraction)}")
    return found


def _fraction_label(fraction: float) -> str:
    for denominator in (2, 3, 4):
        numerator = round(fraction * denominator)
        if abs(numerator / denominator - fraction) < 1e-6:
            return f"{numerator}/{denominator}"
    return f"{fraction:.2f}"


def _column_step(image: np.ndarray, x: int) -> np.ndarray:
    """Per row: the largest channel difference between the columns either side of x (a 2-px span,
    so a seam softened by resizing still shows)."""
    return np.abs(image[:, x + 1] - image[:, x - 1]).max(axis=1)


def _has_seam(image: np.ndarray, centre: int) -> bool:
    width = image.shape[1]
    best = 0.0
    for x in range(centre - POSITION_TOLERANCE, centre + POSITION_TOLERANCE + 1):
        if x - SEAM_NEIGHBOUR - 1 < 0 or x + SEAM_NEIGHBOUR + 1 >= width:
            continue
        step = _column_step(image, x)
        neighbours = np.maximum(_column_step(image, x - SEAM_NEIGHBOUR), _column_step(image, x + SEAM_NEIGHBOUR))
        seam = (step > SEAM_MIN_STEP) & (step > 1.5 * neighbours + 2.0)
        best = max(best, float(seam.mean()))
    return best >= SEAM_MIN_COVERAGE


def _has_gutter(image: np.ndarray, centre: int) -> bool:
    width = image.shape[1]
    max_width = max(GUTTER_MIN_WIDTH, int(width * GUTTER_MAX_WIDTH_SHARE))
    low, high = max(1, centre - max_width), min(width - 1, centre + max_width + 1)
    columns = image[:, low:high]
    uniform = columns.std(axis=0).max(axis=1) < GUTTER_MAX_STD
    run_start = None
    for offset, is_uniform in enumerate([*uniform, False]):
        if is_uniform and run_start is None:
            run_start = offset
        elif not is_uniform and run_start is not None:
            start, end = low + run_start, low + offset  # the band is columns start..end-1
            run_start = None
            if not GUTTER_MIN_WIDTH <= end - start <= max_width:
                continue
            if not start - POSITION_TOLERANCE - max_width // 2 <= centre <= end + POSITION_TOLERANCE + max_width // 2:
                continue
            band = image[:, start:end].mean(axis=1)
            left = np.abs(image[:, max(0, start - GUTTER_EDGE_GAP)] - band).max(axis=1) > SEAM_MIN_STEP
            right = np.abs(image[:, min(width - 1, end - 1 + GUTTER_EDGE_GAP)] - band).max(axis=1) > SEAM_MIN_STEP
            if left.mean() >= GUTTER_MIN_EDGE_COVERAGE and right.mean() >= GUTTER_MIN_EDGE_COVERAGE:
                return True
    return False


def is_collage(lines: list[str]) -> bool:
    return len(lines) >= MIN_GRID_LINES


class CollageCheck(PhotoCheck):
    name = reason = "collage"

    def inspect(self, photo: PhotoUnderReview) -> Finding | None:
        if not photo.usable:
            return None
        lines = grid_lines(photo.small)
        if not is_collage(lines):
            return None
        return Finding(photo.path, self.reason, float(len(lines)), MIN_GRID_LINES, ", ".join(lines))


CHECK = CollageCheck()
