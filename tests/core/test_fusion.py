"""Two towers, one answer (issue #34): the fused vote and the evidence its calibration weighs."""

from __future__ import annotations

import numpy as np
import pytest

from core.calibration import FEATURES, FUSED_FEATURES, Calibration
from core.catalog import Landmark
from core.fusion import fuse, fused_evidence
from core.ranking import CategoryHit, LandmarkHit, RankingParams, Recognition

A, B, C = (Landmark(x, x, "City", ("churches",) if x == "A" else ("museums",)) for x in "ABC")


def _result(*hits: tuple[Landmark, float, float]) -> Recognition:
    landmarks = tuple(LandmarkHit(lm, share, similarity) for lm, share, similarity in hits)
    categories = (CategoryHit(landmarks[0].landmark.categories[0], 1.0),)
    return Recognition(False, landmarks, categories, landmarks[0].similarity)


def test_the_fused_vote_weighs_both_towers_and_keeps_clips_words_and_similarities() -> None:
    clip = _result((A, 0.55, 0.81), (B, 0.45, 0.80))
    place = _result((B, 0.9, 0.62), (C, 0.1, 0.40))
    fused = fuse(clip, place, RankingParams(match_threshold=0.8))
    assert [h.xid for h in fused.landmarks] == ["B", "A", "C"]  # B: 0.675, A: 0.275, C: 0.05
    assert [round(h.score, 3) for h in fused.landmarks] == [0.675, 0.275, 0.05]
    assert fused.landmarks[0].similarity == 0.80 and fused.match  # CLIP's similarity, CLIP's rule
    assert fused.categories == clip.categories  # the place tower knows no words
    nothing = Recognition(False, (), (), -1.0)
    assert fuse(clip, nothing, RankingParams()) == clip  # a tower with no answer leaves CLIP's alone


def test_the_evidence_is_both_towers_and_whether_they_agree() -> None:
    clip, place = _result((A, 0.7, 0.81), (B, 0.3, 0.70)), _result((A, 0.8, 0.6), (C, 0.2, 0.5))
    features = fused_evidence(clip, place)
    assert len(features) == len(FUSED_FEATURES) and features[-1] == 1.0
    assert np.allclose(features[:3], [0.81, 0.11, 0.7]) and np.allclose(features[3:6], [0.6, 0.1, 0.8])
    assert fused_evidence(clip, _result((C, 1.0, 0.6)))[-1] == 0.0


def test_a_stored_calibration_names_its_features_and_an_unknown_set_is_damaged() -> None:
    n = len(FUSED_FEATURES)
    fused = Calibration(
        (0.0,) * n, (1.0,) * n, (0.5,) * n, 0.0, 20, 10, 0.9, ((0.5, 0.5, 1.0),), ((0.5, 0.9, 0.5),), FUSED_FEATURES
    )
    assert Calibration.from_dict(fused.to_dict()) == fused
    old = fused.to_dict() | {"mean": [0.0] * 3, "scale": [1.0] * 3, "weights": [0.5] * 3}
    del old["features"]  # a calibration.json from before the place tower: CLIP's three features
    assert Calibration.from_dict(old).features == FEATURES
    with pytest.raises(ValueError, match="unknown features"):
        Calibration.from_dict(fused.to_dict() | {"features": ["best_similarity", "mood"]})


def _clustered(landmark_of: list[int], spread: float, seed: int, dim: int = 32) -> np.ndarray:
    """Unit vectors, each near its landmark's centre (spread: how far; large: no better than noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(landmark_of) + 1, dim))
    vectors = centres[landmark_of] + spread * rng.normal(size=(len(landmark_of), dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _search(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index.search


@pytest.mark.parametrize(
    ("clip_spread", "place_spread", "weights"), [(0.3, 50.0, {0.0}), (50.0, 0.3, {0.5, 0.75, 1.0})]
)
def test_a_tower_that_does_not_help_gets_no_share_of_the_vote(clip_spread, place_spread, weights) -> None:
    from core.fusion import calibrate_fused

    landmark_of = [k // 8 for k in range(30 * 8)]  # 30 landmarks, 8 photos each
    xids = [f"L{k}" for k in landmark_of]
    landmarks = {f"L{k}": Landmark(f"L{k}", f"Landmark {k}", "City") for k in set(landmark_of)}
    clip, place = _clustered(landmark_of, clip_spread, 1), _clustered(landmark_of, place_spread, 2)
    hashes = [f"{row:064x}" for row in range(len(xids))]
    fused = calibrate_fused(_search(clip), clip, _search(place), place, xids, hashes, landmarks, RankingParams())
    assert fused is not None and fused.features == FUSED_FEATURES
    # Noise in the place tower: CLIP alone (w = 0). Noise in CLIP: the place tower carries the vote (its
    # sharp shares outweigh CLIP's scattered ones from an even split on; ties go to the smaller share).
    assert fused.place_weight in weights
