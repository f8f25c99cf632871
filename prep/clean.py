"""`prep clean`: run the checks over the folder dataset and collect candidates in a quarantine.

One pass reads every photo once: it is fully decoded, scored by the pixel checks on a ≤512 px
copy, perceptually hashed, and (if a model-based check runs) embedded through the shared
embedding cache, so the `prep build` after cleaning embeds nothing again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core.dataset import list_photos
from core.embedding_cache import EmbeddingCache, content_hash
from core.encoders import ImageEncoder
from core.imaging import ImageDecodeError
from core.index import ProgressFn
from prep.checks import CHECKS, REASONS, Finding
from prep.checks import collage as collage_check
from prep.checks import colour as colour_check
from prep.checks import decode as decode_check
from prep.checks import duplicates as duplicate_check
from prep.checks import interior as interior_check
from prep.checks import outliers as outlier_check

log = logging.getLogger(__name__)

ANALYSIS_SIDE = 512  # pixel checks look at a copy no larger than this
EMBED_BATCH = 32
MODEL_CHECKS = frozenset({"outliers", "interior"})


@dataclass
class CleanResult:
    findings: list[Finding] = field(default_factory=list)  # one per flagged photo: its first reason
    all_findings: list[Finding] = field(default_factory=list)
    photos: int = 0
    checks: tuple[str, ...] = ()
    sha256: dict[str, str] = field(default_factory=dict)  # path → content hash at cleaning time
    notes: list[str] = field(default_factory=list)

    def counts(self) -> Counter:
        return Counter(f.reason for f in self.findings)


def parse_checks(raw: str | None, default: Iterable[str]) -> tuple[str, ...]:
    if not raw:
        return tuple(default)
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    return names


def analyse(
    data_dir: Path,
    checks: tuple[str, ...],
    *,
    encoder: Callable[[], ImageEncoder] | None = None,
    cache: EmbeddingCache | None = None,
    progress: ProgressFn | None = None,
) -> CleanResult:
    """Run `checks` over every photo of the dataset; nothing is written."""
    report = progress or (lambda stage, done, total: None)
    result = CleanResult(checks=checks)
    photos = list_photos(data_dir)
    result.photos = len(photos)
    needs_model = bool(MODEL_CHECKS & set(checks)) and encoder is not None and cache is not None
    if MODEL_CHECKS & set(checks) and not needs_model:
        result.notes.append("model-based checks skipped: no image model")
    model: ImageEncoder | None = encoder() if needs_model else None

    hashed: list[duplicate_check.HashedPhoto] = []
    vectors: dict[str, np.ndarray] = {}
    pending: list[tuple[str, Image.Image]] = []

    def flush() -> None:
        if model is None or not pending:
            return
        fresh = dict(zip([h for h, _ in pending], model.encode_images([im for _, im in pending]), strict=True))
        cache.put(model.cache_key, fresh)
        vectors.update(fresh)
        pending.clear()

    for done, photo in enumerate(photos, 1):
        data = (data_dir / photo.path).read_bytes()
        digest = content_hash(data)
        result.sha256[photo.path] = digest
        try:
            image = decode_check.read_photo(data)
        except ImageDecodeError as exc:
            result.all_findings.append(Finding(photo.path, "unreadable", 1.0, 1.0, str(exc)))
            report("clean", done, len(photos))
            continue
        colour_flags = set()
        if decode_check.is_tiny(image):
            if "tiny" in checks:
                result.all_findings.append(
                    Finding(
                        photo.path,
                        "tiny",
                        float(min(image.size)),
                        decode_check.MIN_SIDE,
                        "×".join(map(str, image.size)),
                    )
                )
        else:
            colour_flags = _pixel_checks(photo.path, image, checks, result.all_findings)
        hashed.append(
            duplicate_check.HashedPhoto(
                photo.path,
                photo.xid,
                digest,
                duplicate_check.perceptual_hash(image),
                image.width * image.height,
                colour=not colour_flags,
            )
        )
        if model is not None:
            if digest not in vectors:
                cached = cache.get(model.cache_key, [digest])
                if cached:
                    vectors.update(cached)
                elif digest not in {h for h, _ in pending}:
                    pending.append((digest, image))
            if len(pending) >= EMBED_BATCH:
                flush()
        report("clean", done, len(photos))
    flush()

    if "unreadable" not in checks:
        result.all_findings = [f for f in result.all_findings if f.reason != "unreadable"]
    if "duplicates" in checks:
        for duplicate in duplicate_check.find_duplicates(hashed):
            kind = "exact" if duplicate.exact else "near"
            result.all_findings.append(
                Finding(
                    duplicate.path,
                    "duplicate",
                    float(duplicate.distance),
                    duplicate_check.NEAR_MAX_DISTANCE,
                    f"{kind} duplicate of {duplicate.kept}",
                )
            )
    if model is not None:
        _model_checks(model, hashed, vectors, checks, result)

    order = {reason: i for i, reason in enumerate(REASONS)}
    primary: dict[str, Finding] = {}
    for finding in sorted(result.all_findings, key=lambda f: (f.path, order[f.reason])):
        primary.setdefault(finding.path, finding)
    result.findings = sorted(primary.values(), key=lambda f: (order[f.reason], f.path))
    return result


def _pixel_checks(path: str, image: Image.Image, checks: tuple[str, ...], findings: list[Finding]) -> set[str]:
    small = image.copy()
    small.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.NEAREST)
    pixels = np.asarray(small)
    flags = set()
    if {"grayscale", "sepia"} & set(checks):
        scores = colour_check.colour_scores(pixels)
        colour: Finding | None = None
        if scores.grayscale:
            detail = f"{100 * scores.coloured_share:.2f}% coloured pixels"
            colour = Finding(path, "grayscale", scores.chroma_p95, colour_check.GRAY_MAX_P95_CHROMA, detail)
        elif scores.sepia:
            detail = f"tint {scores.tint_strength:.1f}, hue spread {scores.hue_spread:.0f}°"
            colour = Finding(path, "sepia", scores.tint_spread, colour_check.SEPIA_MAX_SPREAD, detail)
        if colour is not None:
            flags.add(colour.reason)  # recorded even when not reported: duplicates keep the colour copy
            if colour.reason in checks:
                findings.append(colour)
    if "collage" in checks:
        lines = collage_check.grid_lines(pixels)
        if collage_check.is_collage(lines):
            findings.append(Finding(path, "collage", float(len(lines)), collage_check.MIN_GRID_LINES, ", ".join(lines)))
    return flags


def _model_checks(
    model: ImageEncoder,
    photos: list[duplicate_check.HashedPhoto],
    vectors: dict[str, np.ndarray],
    checks: tuple[str, ...],
    result: CleanResult,
) -> None:
    embedded = [p for p in photos if p.sha256 in vectors]
    if not embedded:
        return
    matrix = np.stack([vectors[p.sha256] for p in embedded])
    if "outliers" in checks:
        for outlier in outlier_check.find_outliers([p.path for p in embedded], [p.xid for p in embedded], matrix):
            result.all_findings.append(
                Finding(
                    outlier.path,
                    "outlier",
                    outlier.distance,
                    outlier.threshold,
                    f"{outlier.method}, {outlier.ratio:.1f}× the landmark's median distance",
                )
            )
    if "interior" in checks:
        encode_texts = getattr(model, "encode_texts", None)
        if encode_texts is None:
            result.notes.append("interior check skipped: the image model has no text tower")
            return
        indoor = interior_check.prompt_vectors(encode_texts, interior_check.INDOOR_PROMPTS)
        outdoor = interior_check.prompt_vectors(encode_texts, interior_check.OUTDOOR_PROMPTS)
        probabilities = interior_check.indoor_probability(matrix, indoor, outdoor)
        for photo, probability in zip(embedded, probabilities, strict=True):
            if probability > interior_check.INDOOR_MIN_PROBABILITY:
                result.all_findings.append(
                    Finding(photo.path, "interior", float(probability), interior_check.INDOOR_MIN_PROBABILITY)
                )
