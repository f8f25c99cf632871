import pytest

from core.catalog import Landmark
from core.ranking import RankingParams, vote

CHURCH = Landmark("C1", "Church", "Town", kinds=("religion", "churches", "interesting_places"))
CHAPEL = Landmark("C2", "Chapel", "Town", kinds=("religion", "chapels", "interesting_places"))
BRIDGE = Landmark("B1", "Bridge", "Town", kinds=("architecture", "bridges", "interesting_places"))
MUSEUM = Landmark("M1", "Museum", "Town", kinds=("cultural", "museums", "interesting_places"))
LANDMARKS = {lm.xid: lm for lm in (CHURCH, CHAPEL, BRIDGE, MUSEUM)}


def test_closer_neighbours_outvote_more_numerous_far_ones() -> None:
    sims = [0.95, 0.94, 0.80, 0.80, 0.80, 0.80]
    xids = ["C1", "C1", "B1", "B1", "B1", "B1"]
    result = vote(sims, xids, LANDMARKS)
    assert [h.xid for h in result.landmarks] == ["C1", "B1"]
    assert result.landmarks[0].score > 0.9
    assert sum(h.score for h in result.landmarks) == pytest.approx(1.0)
    assert result.landmarks[0].similarity == pytest.approx(0.95)


def test_a_higher_temperature_approaches_a_plain_majority_vote() -> None:
    sims = [0.95, 0.94, 0.80, 0.80, 0.80, 0.80]
    xids = ["C1", "C1", "B1", "B1", "B1", "B1"]
    assert vote(sims, xids, LANDMARKS, RankingParams(temperature=10.0)).landmarks[0].xid == "B1"


def test_categories_come_from_every_kind_without_the_generic_one() -> None:
    result = vote([0.9, 0.9, 0.9], ["C1", "C2", "B1"], LANDMARKS)
    scores = {c.category: c.score for c in result.categories}
    assert "interesting_places" not in scores
    assert scores["religion"] == pytest.approx(2 / 3)  # church and chapel both vote for it
    assert result.categories[0].category == "religion"
    assert len(result.categories) == 5
    assert all(0 <= c.score <= 1 for c in result.categories)


def test_ties_are_broken_by_xid_deterministically() -> None:
    result = vote([0.9, 0.9], ["C2", "C1"], LANDMARKS)
    assert [h.xid for h in result.landmarks] == ["C1", "C2"]
    assert result.landmarks[0].score == pytest.approx(0.5)
    assert [c.category for c in result.categories][:1] == ["religion"]
    # Equal category scores are ordered by name.
    tied = [c.category for c in result.categories if c.score == pytest.approx(0.5)]
    assert tied == sorted(tied)


def test_a_landmark_with_a_single_photo_can_win() -> None:
    result = vote([0.99, 0.70, 0.69], ["M1", "B1", "B1"], LANDMARKS)
    assert result.landmarks[0].xid == "M1" and result.match


def test_only_k_neighbours_vote_the_rest_only_fill_the_top_n() -> None:
    sims = [0.9, 0.9, 0.9, 0.89, 0.89, 0.89, 0.89, 0.5, 0.4, 0.3]
    xids = ["C1", "C1", "C1", "B1", "B1", "B1", "B1", "M1", "C2", "M1"]
    result = vote(sims, xids, LANDMARKS, RankingParams(k=3, top_n=3))
    assert [h.xid for h in result.landmarks] == ["C1", "B1", "M1"]
    # B1 fills in with the weight of one photo, not four: C1's three votes dominate.
    assert result.landmarks[0].score > 2.5 * result.landmarks[1].score
    assert vote(sims[:1], xids[:1], LANDMARKS, RankingParams(k=20)).landmarks[0].xid == "C1"


def test_threshold_decides_the_match_flag_but_guesses_remain() -> None:
    params = RankingParams(match_threshold=0.8)
    assert vote([0.81], ["C1"], LANDMARKS, params).match
    weak = vote([0.79, 0.5], ["C1", "B1"], LANDMARKS, params)
    assert not weak.match and [h.xid for h in weak.landmarks] == ["C1", "B1"]
    assert weak.best_similarity == pytest.approx(0.79)


def test_empty_and_unknown_neighbours_give_no_result() -> None:
    assert vote([], [], LANDMARKS).landmarks == ()
    result = vote([0.9], ["GONE"], LANDMARKS)
    assert not result.match and result.landmarks == () and result.categories == ()


def test_top_n_limits_both_lists_and_json_shape() -> None:
    result = vote([0.9, 0.8, 0.7, 0.6], ["C1", "C2", "B1", "M1"], LANDMARKS, RankingParams(top_n=2))
    assert len(result.landmarks) == 2 and len(result.categories) == 2
    data = result.to_dict()
    assert set(data) == {"match", "landmarks", "categories", "location", "photo_credit"} and data["location"] is None
    assert set(data["landmarks"][0]) == {"xid", "name", "city", "score"}
    assert set(data["categories"][0]) == {"category", "score"}


@pytest.mark.parametrize("bad", [{"k": 0}, {"temperature": 0}, {"top_n": 0}, {"k": 30, "search_depth": 20}])
def test_invalid_params_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        RankingParams(**bad)


def test_the_prior_multiplies_votes_but_never_filters() -> None:
    plain = vote([0.9, 0.88, 0.7], ["C1", "C2", "B1"], LANDMARKS, RankingParams())
    assert plain.landmarks[0].xid == "C1"
    favoured = vote([0.9, 0.88, 0.7], ["C1", "C2", "B1"], LANDMARKS, RankingParams(), prior={"C1": 0.05, "C2": 1.0})
    assert favoured.landmarks[0].xid == "C2"  # the near one wins a close visual race
    assert {h.xid for h in favoured.landmarks} == {h.xid for h in plain.landmarks}  # nobody is filtered out
    assert sum(h.score for h in favoured.landmarks) == pytest.approx(1.0)


@pytest.mark.parametrize("confidence", [None, 0.84, 0.4, 0.001, 1.0])
def test_the_shares_one_photo_shows_are_exclusive_probabilities(confidence) -> None:
    """Issue #32: "84 %, 51 %, 31 %" — the others scaled by P / top share overflowed 100 %."""
    from dataclasses import replace

    from core.ranking import LandmarkHit, Recognition

    hits = tuple(LandmarkHit(Landmark(f"X{i}", "n", "c"), s, 0.9) for i, s in enumerate((0.5, 0.3, 0.15, 0.05)))
    result = replace(Recognition(True, hits, (), 0.9), confidence=confidence)
    shares = [result.shown_share(rank) for rank in range(len(hits))]
    assert sum(shares) <= 1.0 + 1e-9 and shares == sorted(shares, reverse=True)
    assert shares[0] == (0.5 if confidence is None else confidence)
    if confidence == 0.4:  # below what the top share would scale to: the others keep the vote's proportions
        assert shares[1] == pytest.approx(0.3 * 0.4 / 0.5)
