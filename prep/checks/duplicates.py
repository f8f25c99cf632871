"""Exact and near duplicates within a landmark.

exact: identical bytes (SHA-256). score 0.
near: 64-bit perceptual hashes (pHash) at most NEAR_MAX_DISTANCE bits apart. Recompression,
    resizing and brightness changes measured ≤ 6 bits; different photos ≥ 20.
Members are taken best first and one is kept per group: colour before grayscale/sepia (a grayscale copy has distance 0
to its colour original), then the most pixels, then the first path. The others are candidates,
scored by their distance to the kept member.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from prep.checks.base import Collection, CollectionCheck, Finding, PhotoUnderReview
from prep.checks.colour import is_colour

NEAR_MAX_DISTANCE = 6


@dataclass(frozen=True)
class HashedPhoto:
    path: str
    xid: str
    sha256: str
    phash: int
    pixels: int
    colour: bool  # False for photos flagged grayscale or sepia


@dataclass(frozen=True)
class Duplicate:
    path: str
    kept: str
    distance: int  # pHash bits apart (0 for identical bytes, and often for a recompressed copy)
    exact: bool  # identical bytes


def perceptual_hash(image: Image.Image) -> int:
    import imagehash  # here: the registry is read by `prep --help`, which must load nothing heavy

    return int(str(imagehash.phash(image)), 16)


def find_duplicates(photos: Sequence[HashedPhoto]) -> list[Duplicate]:
    by_landmark: dict[str, list[HashedPhoto]] = defaultdict(list)
    for photo in photos:
        by_landmark[photo.xid].append(photo)
    found: list[Duplicate] = []
    for members in by_landmark.values():
        found += _landmark_duplicates(members)
    return found


def _landmark_duplicates(members: list[HashedPhoto]) -> list[Duplicate]:
    """Greedy, best member first: a photo is a duplicate of the first kept photo it is close to.
    (No transitive chaining: every reported pair is itself within the distance.)"""
    kept: list[HashedPhoto] = []
    found = []
    for member in sorted(members, key=lambda m: (not m.colour, -m.pixels, m.path)):
        match = None
        for keeper in kept:
            exact = member.sha256 == keeper.sha256
            distance = 0 if exact else _hamming_one(member.phash, keeper.phash)
            if distance <= NEAR_MAX_DISTANCE and (match is None or (not match[2], distance) < (not exact, match[1])):
                match = (keeper, distance, exact)
        if match is None:
            kept.append(member)
        else:
            found.append(Duplicate(member.path, match[0].path, match[1], match[2]))
    return found


def _hamming_one(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def phash_of(photo: PhotoUnderReview) -> int:
    if photo.image is None:
        raise ValueError(f"{photo.path} did not decode: it has no perceptual hash")
    return perceptual_hash(photo.image)


class DuplicateCheck(CollectionCheck):
    name, reason = "duplicates", "duplicate"
    needs = "hashes"
    keeps = (phash_of, is_colour)

    def review(self, collection: Collection) -> list[Finding]:
        hashed = [
            HashedPhoto(p.path, p.xid, p.sha256, p.derived(phash_of), p.pixels, colour=p.derived(is_colour))
            for p in collection.photos
            if p.decoded
        ]
        return [
            Finding(
                duplicate.path,
                self.reason,
                float(duplicate.distance),
                NEAR_MAX_DISTANCE,
                f"{'exact' if duplicate.exact else 'near'} duplicate of {duplicate.kept}",
                original=duplicate.kept,
            )
            for duplicate in find_duplicates(hashed)
        ]


CHECK = DuplicateCheck()
