"""Calibration at build time: P(top answer right) fitted on the index's own photos, honest on held-out
queries, stored with the index, and what a match means when MATCH_THRESHOLD is not set by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from core.artifacts import CALIBRATION_FILE, resolve_build
from core.build import build_index
from core.calibration import (
    FALLBACK_TEXT_MATCH_THRESHOLD,
    Calibration,
    TextCalibration,
    calibrate_text,
    text_threshold,
)
from core.encoders import model_id
from core.index import PhotoIndex
from core.ranking import RankingParams
from core.service import Guide
from core.settings import Settings
from tests.helpers.datagen import jpeg_bytes, scene

# Expected calibration error allowed on held-out queries: |predicted − observed| weighted by bin share.
MAX_CALIBRATION_ERROR = 0.1


@pytest.fixture(scope="module")
def calibrated(built_dataset) -> PhotoIndex:
    return PhotoIndex.load(built_dataset.artifacts_dir)


def test_the_build_stores_a_calibration_that_reads_back(calibrated: PhotoIndex) -> None:
    calibration = calibrated.calibration
    assert calibration is not None
    stored = json.loads((calibrated.location / CALIBRATION_FILE).read_text())
    assert Calibration.from_dict(stored["calibration"]) == calibration
    assert calibration.known_queries >= 10 and calibration.unknown_queries >= 10
    assert stored["calibration"]["features"] == ["best_similarity", "margin", "vote_share"]


def test_the_probabilities_are_honest_on_held_out_queries(calibrated: PhotoIndex) -> None:
    calibration = calibrated.calibration
    assert calibration is not None
    error = sum(share * abs(predicted - observed) for predicted, observed, share in calibration.reliability)
    assert error <= MAX_CALIBRATION_ERROR
    assert sum(share for _, _, share in calibration.reliability) == pytest.approx(1.0)
    coverages = [coverage for _, _, coverage in calibration.curve]
    assert coverages == sorted(coverages, reverse=True)  # a higher bar answers fewer photos
    precision, coverage = calibration.operating_point(0.9)
    assert precision >= 0.9 and 0 < coverage < 1  # some photos are unknown landmarks: never all covered


def test_a_match_is_an_answer_likely_enough_to_be_right(calibrated: PhotoIndex, encoders) -> None:
    guide = Guide(calibrated, encoders.image, encoders.text, Settings().ranking_params())
    result = guide.recognize(jpeg_bytes(scene(0, 55)))
    assert result.confidence is not None and result.to_dict()["landmarks"][0]["confidence"] == round(
        result.confidence, 4
    )
    assert result.match == (result.confidence >= 0.9)
    below = Guide(calibrated, encoders.image, encoders.text, RankingParams(match_precision=result.confidence - 1e-6))
    above = Guide(calibrated, encoders.image, encoders.text, RankingParams(match_precision=result.confidence + 1e-6))
    assert below.recognize(jpeg_bytes(scene(0, 55))).match and not above.recognize(jpeg_bytes(scene(0, 55))).match
    # MATCH_THRESHOLD set by hand: the similarity rule again (the card still shows the calibrated figure).
    manual = Settings(match_threshold=0.0).ranking_params()
    assert manual.match_precision is None and manual.match_threshold == 0.0
    assert Guide(calibrated, encoders.image, encoders.text, manual).recognize(jpeg_bytes(scene(0, 55))).match


def test_photos_of_a_landmark_the_index_lacks_are_not_called_matches(built_dataset, encoders, tmp_path: Path) -> None:
    """Leave-landmark-out, for real: one landmark removed from the dataset, its photos then asked."""
    data = tmp_path / "data"
    shutil.copytree(built_dataset.data_dir, data)
    folders = sorted(p for p in (data / "images").glob("*/*") if p.is_dir())
    removed = folders[0]
    photos = sorted(removed.iterdir())
    shutil.move(str(removed), tmp_path / "removed")
    build_index(data, tmp_path / "artifacts", encoders.image, text_model=model_id("text"))
    index = PhotoIndex.load(tmp_path / "artifacts")
    assert index.calibration is not None
    guide = Guide(index, encoders.image, encoders.text, Settings().ranking_params())
    unknown = [guide.recognize((tmp_path / "removed" / p.name).read_bytes()) for p in photos]
    assert not any(result.match for result in unknown)
    assert max(result.confidence or 0 for result in unknown) < 0.9


def test_a_build_from_before_calibration_is_rebuilt_and_a_tiny_one_has_none(built_dataset, encoders, tmp_path) -> None:
    copy = built_dataset.copy_to(tmp_path)
    (resolve_build(copy.artifacts_dir) / CALIBRATION_FILE).unlink()
    assert PhotoIndex.load(copy.artifacts_dir).calibration is None  # still serves, on the fixed threshold
    report = build_index(copy.data_dir, copy.artifacts_dir, encoders.image, text_model=model_id("text"))
    assert not report.up_to_date and PhotoIndex.load(copy.artifacts_dir).calibration is not None
    tiny = tmp_path / "tiny"
    shutil.copytree(copy.data_dir, tiny)
    for folder in sorted(p for p in (tiny / "images").glob("*/*") if p.is_dir())[2:]:
        shutil.rmtree(folder)
    build_index(tiny, tmp_path / "tiny-artifacts", encoders.image, text_model=model_id("text"))
    index = PhotoIndex.load(tmp_path / "tiny-artifacts")
    assert index.calibration is None  # too few photos to fit anything honest
    result = Guide(index, encoders.image, encoders.text, Settings().ranking_params()).recognize(jpeg_bytes(scene(0, 5)))
    assert result.confidence is None  # and the similarity rule decides


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_the_text_threshold_is_where_names_are_right_often_enough() -> None:
    """Synthetic CLIP space: each landmark's photos and good names sit near its direction; some names
    are vague (near nothing). Held-out landmarks' names must then fall below the chosen threshold."""
    rng = np.random.default_rng(1)
    centres = _unit(rng.normal(size=(30, 64)))
    row_xids = [f"L{i}" for i in range(30) for _ in range(6)]
    photos = _unit(np.repeat(centres, 6, axis=0) + 0.08 * rng.normal(size=(180, 64)))
    index = faiss.IndexFlatIP(64)
    index.add(photos)
    names = {f"L{i}": [f"L{i} good", f"L{i} fair", f"L{i} vague"] for i in range(30)}
    noise = {"good": 0.5, "fair": 1.0, "vague": 6.0}

    def encode(texts: list[str]) -> np.ndarray:
        rows = [int(t.split()[0][1:]) for t in texts]
        scale = np.array([noise[t.split()[1]] for t in texts])[:, None]
        return _unit(centres[rows] + scale * rng.normal(size=(len(texts), 64)) / 8)

    calibration = calibrate_text(index.search, encode, row_xids, names)
    assert calibration is not None and calibration.unknown_queries >= 10
    threshold = calibration.threshold(0.9)
    precision, coverage = calibration.operating_point(threshold)
    assert precision >= 0.9 and 0 < coverage < 1
    assert calibration.threshold(0.5) <= threshold <= calibration.threshold(0.99)
    assert TextCalibration.from_dict(json.loads(json.dumps(calibration.to_dict()))) == calibration
    # Names of landmarks the index has never seen: almost none pass the threshold.
    strangers = _unit(rng.normal(size=(200, 64)))
    best, _ = index.search(strangers, 1)
    assert (best[:, 0] >= threshold).mean() < 0.1


def test_an_unreachable_precision_makes_every_text_answer_unsure() -> None:
    calibration = TextCalibration(20, 20, 0.5, ((0.1, 0.5, 1.0), (0.2, 0.6, 0.4), (0.3, 0.7, 0.1)))
    assert calibration.threshold(0.6) == 0.2 and calibration.threshold(0.9) > 0.3


def test_text_search_threshold_override_then_calibration_then_fallback(calibrated: PhotoIndex, encoders) -> None:
    text = calibrated.text_calibration
    assert text is not None  # the shared index is built as `prep build` builds it: with the text model
    stored = json.loads((calibrated.location / CALIBRATION_FILE).read_text())
    assert TextCalibration.from_dict(stored["text"]) == text
    guide = Guide(calibrated, encoders.image, encoders.text, match_precision=0.8)
    assert guide.text_threshold() == text.threshold(0.8)
    assert Guide(calibrated, encoders.image, encoders.text, text_match_threshold=0.33).text_threshold() == 0.33
    bare = PhotoIndex.load(calibrated.location)
    bare.text_calibration = None  # an index too small to calibrate
    assert Guide(bare, encoders.image, encoders.text).text_threshold() == FALLBACK_TEXT_MATCH_THRESHOLD
    assert text_threshold(None, None, 0.9) == FALLBACK_TEXT_MATCH_THRESHOLD


def test_the_calibrations_work_is_bounded_at_any_index_size() -> None:
    """Issue #35: every unknown query scanned all rows, and their number grew with the landmarks (a fifth of
    them): minutes at 1 M rows, hours at 10 M. Now at most KNOWN_QUERIES + MAX_UNKNOWN_LANDMARKS × 5 queries,
    each k + its own landmark's photos deep."""
    from core.calibration import (
        KNOWN_QUERIES,
        MAX_UNKNOWN_LANDMARKS,
        SPARE_FOR_COPIES,
        UNKNOWN_PHOTOS_PER_LANDMARK,
        collect_queries,
    )
    from core.catalog import Landmark

    landmarks_n, per = 20_000, 3
    row_xids = [f"L{i // per}" for i in range(landmarks_n * per)]
    catalog = {f"L{i}": Landmark(f"L{i}", "n", "c") for i in range(landmarks_n)}
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(row_xids), 8)).astype(np.float32)
    asked: list[tuple[int, int]] = []  # (queries, k) per search

    def search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        asked.append((len(queries), k))
        rows = rng.integers(0, len(row_xids), size=(len(queries), k))
        return np.sort(rng.random((len(queries), k)))[:, ::-1].astype(np.float32), rows

    params = RankingParams()
    queries = collect_queries(search, row_xids, [str(i) for i in range(len(row_xids))], vectors, catalog, params)
    unknown = MAX_UNKNOWN_LANDMARKS * min(per, UNKNOWN_PHOTOS_PER_LANDMARK)
    assert queries is not None and queries.unknown.sum() == unknown
    assert sum(n for n, _ in asked) == KNOWN_QUERIES + unknown and len(asked) < 20  # in batches
    assert max(k for _, k in asked) <= params.search_depth + per + SPARE_FOR_COPIES
