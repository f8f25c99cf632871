"""How often the top answer is right, from the evidence of its vote: fitted on the index at build time.

Two kinds of query come from the dataset itself, embedded already:
- **known** (leave-view-out): a sampled indexed photo, searched without its own copies and without its
  view — the photos of its landmark at least VIEW_SIMILARITY alike (re-encodes, crops, bursts of the
  same shot). A tourist's photo is a fresh view: searched with its near-duplicates left in, a dataset
  photo finds its twin and looks surer than a tourist's ever does, and a fit on such queries is timid
  on fresh photos (issue #34; `prep eval`'s "fresh views" measures the gap). A landmark photographed
  from one view only keeps leave-one-out queries. Right when the top landmark is its own;
- **unknown** (leave-landmark-out): a photo of a held-out landmark, searched without any photo of
  that landmark — a landmark the guide does not know; the top answer is always wrong there, and
  the right reply is "not sure".
Evidence per query (measured choice, see docs/calibration.md): the top landmark's best similarity,
its margin over the runner-up's best similarity, and its share of the vote. A logistic model on the
three (NumPy, L2-regularised, Newton steps; four numbers and a standardisation) gives P(top is
right). It is fitted on half of the queries and measured on the other half, both ways round (the
reliability diagram and precision–coverage curve are from held-out queries only), then fitted on
all of them for serving. Unknown queries carry UNKNOWN_SHARE of the weight in the fit and in every
figure: the share of tourists' photos that show no indexed landmark (an assumption, stated).

The Guide then calls an answer a match when that probability is ≥ MATCH_PRECISION (default 0.9),
unless MATCH_THRESHOLD is set by hand; a rebuild on another model or dataset recalibrates itself.

Text search is calibrated the same way with one feature, the best text→photo similarity (a text
query has no vote): known queries are the indexed landmarks' names in every language of the
enrichment, alone and with the city (right when the best photo shows that landmark), unknown ones
the held-out landmarks' names searched without their photos. The stored curve gives, for each
similarity threshold, the precision and coverage on those queries; serving takes the lowest
threshold that reaches MATCH_PRECISION, unless TEXT_MATCH_THRESHOLD is set by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from core.catalog import Landmark
from core.ranking import RankingParams, Recognition, vote

# Known (leave-view-out) queries at most: ~2 s of FAISS on 12.5 k photos, plenty for 4 parameters.
KNOWN_QUERIES = 2000
# Queries searched in one FAISS call (a flat index answers a batch ~as fast as one query).
QUERY_BATCH = 256
# Landmarks held out for unknown queries: this share of the indexed ones (at least 2, at most
# MAX_UNKNOWN_LANDMARKS: 2,000 queries, as many as the known ones, at any index size), photos each.
UNKNOWN_LANDMARK_SHARE = 0.2
MAX_UNKNOWN_LANDMARKS = 400
UNKNOWN_PHOTOS_PER_LANDMARK = 5
# Photos of one landmark at least this alike (CLIP image cosine) are one view of it: re-encodes, crops,
# bursts of one shot — 0.95–0.99 is where near-duplicate cuts on CLIP embeddings sit; different shots of a
# building fall below. Views are read from CLIP's vectors, so both towers' queries hide the same photos.
VIEW_SIMILARITY = 0.95
# Spare neighbours a query's search fetches beyond the vote's depth for its exact copies.
SPARE_FOR_COPIES = 8
# Weight of unknown queries in the fit and the figures (see the module docstring).
UNKNOWN_SHARE = 0.3
# Fewer queries of either kind than this: no calibration (the fixed MATCH_THRESHOLD serves).
MIN_QUERIES = 10
# The runner-up's similarity when the vote names one landmark only: the margin is capped here.
MARGIN_CAP = 0.2
L2 = 1e-2
NEWTON_STEPS = 50
SEED = 0
RELIABILITY_BINS = 10
# Operating points the reports list (probability thresholds).
OPERATING_POINTS = (0.5, 0.7, 0.8, 0.9, 0.95)
FEATURES = ("best_similarity", "margin", "vote_share")
# With the place tower (core.fusion): both towers' evidence and whether their top answers agree.
FUSED_FEATURES = (*FEATURES, "place_best_similarity", "place_margin", "place_vote_share", "agreement")
# What a stored calibration may hold (anything else is a damaged file, read as none: fixed thresholds serve):
# feature scales above MIN_SCALE (a zero scale divides by zero) and coefficients within MAX_COEFFICIENT
# (the fit is L2-regularised on features of order 1: its coefficients stay in the tens).
MIN_SCALE = 1e-6
MAX_COEFFICIENT = 1e3

# Text queries (landmark names × languages) at most, and the similarity grid of the text curve.
TEXT_QUERIES = 1500
TEXT_GRID_STEP = 0.005
# A match is an answer estimated right at least this often (MATCH_PRECISION's default, issue #23).
DEFAULT_MATCH_PRECISION = 0.9
# Text answers below this similarity say "nothing matches well" when neither TEXT_MATCH_THRESHOLD nor
# a text calibration is there (an index too small to calibrate): CLIP ViT-B/32's text→image range.
FALLBACK_TEXT_MATCH_THRESHOLD = 0.2

SearchFn = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
EncodeTextsFn = Callable[[list[str]], np.ndarray]


def evidence(result: Recognition) -> np.ndarray:
    """The features of a vote: top best similarity, margin over the runner-up, top vote share."""
    hits = result.landmarks
    if not hits:
        return np.array([-1.0, 0.0, 0.0])
    best = hits[0].similarity
    runner_up = hits[1].similarity if len(hits) > 1 else best - MARGIN_CAP
    return np.array([best, min(MARGIN_CAP, best - runner_up), hits[0].score])


@dataclass(frozen=True)
class Calibration:
    """P(top answer is right) from a vote's evidence, with the figures measured on held-out queries."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    known_queries: int
    unknown_queries: int
    known_accuracy: float  # top-1 of the known queries
    reliability: tuple[tuple[float, float, float], ...]  # (mean predicted, observed right, weight) per bin
    curve: tuple[tuple[float, float, float], ...]  # (probability threshold, precision, coverage)
    features: tuple[str, ...] = FEATURES  # FEATURES (CLIP alone) or FUSED_FEATURES (core.fusion)
    # FUSED_FEATURES only: the place tower's share of the fused vote, chosen on the same queries (core.fusion).
    place_weight: float = 0.0

    def confidence(self, result: Recognition) -> float:
        return float(self.probabilities(evidence(result)[None, :])[0])

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.array(self.mean)) / np.array(self.scale)
        return _sigmoid(z @ np.array(self.weights) + self.bias)

    def operating_point(self, threshold: float) -> tuple[float, float]:
        """(expected precision, expected coverage) of matching at P ≥ threshold, from held-out queries."""
        return _operating_point(self.curve, threshold)

    def to_dict(self) -> dict:
        return asdict(self) | {"features": list(self.features)}

    @classmethod
    def from_dict(cls, raw: Mapping) -> Calibration:
        """The stored calibration; ValueError when any value is one a fit cannot produce (a hand edit, a
        damaged file): non-finite, a scale ≤ MIN_SCALE, a coefficient beyond MAX_COEFFICIENT, a share
        outside 0–1. The caller then serves the fixed thresholds."""
        fields = cls.__dataclass_fields__
        values = {name: raw[name] for name in fields if name not in ("features", "place_weight")}
        values["features"] = tuple(str(f) for f in raw.get("features", FEATURES))
        values["place_weight"] = float(raw.get("place_weight", 0.0))
        for name in ("mean", "scale", "weights"):
            values[name] = tuple(float(v) for v in values[name])
        for name in ("reliability", "curve"):
            values[name] = tuple(tuple(float(x) for x in row) for row in values[name])
        calibration = cls(**values)
        calibration.check()
        return calibration

    def check(self) -> None:
        _require(self.features in (FEATURES, FUSED_FEATURES), f"unknown features {self.features}")
        _require(_finite(self.place_weight) and 0.0 <= self.place_weight <= 1.0, "a place weight outside 0–1")
        n = len(self.features)
        _require(len(self.mean) == len(self.scale) == len(self.weights) == n, f"{n} features expected")
        _require(_finite(*self.mean, *self.scale, *self.weights, self.bias), "a non-finite coefficient")
        _require(all(s > MIN_SCALE for s in self.scale), "a feature scale of zero or below")
        _require(all(abs(c) <= MAX_COEFFICIENT for c in (*self.weights, self.bias)), "an absurd coefficient")
        _check_counts(self.known_queries, self.unknown_queries, self.known_accuracy)
        for predicted, observed, weight in self.reliability:
            _require(_share(predicted, observed) and _finite(weight) and weight >= 0, "a reliability bin out of range")
        _check_curve(self.curve, low=0.0)


@dataclass(frozen=True)
class Queries:
    """The calibration's queries: evidence per query, whether the top answer was right, and which were unknown."""

    features: np.ndarray  # (n, len(names))
    right: np.ndarray  # (n,) 1.0 when the top landmark was the query's own
    unknown: np.ndarray  # (n,) bool: a held-out landmark's photo
    names: tuple[str, ...] = FEATURES

    @property
    def weight(self) -> np.ndarray:
        return weights_of(self.unknown)


def weights_of(unknown: np.ndarray) -> np.ndarray:
    """Unknown queries weigh UNKNOWN_SHARE in all, known ones the rest (mean weight 1)."""
    share = np.where(unknown, UNKNOWN_SHARE / max(1, unknown.sum()), (1 - UNKNOWN_SHARE) / max(1, (~unknown).sum()))
    return share * len(unknown)


def _operating_point(curve: tuple[tuple[float, float, float], ...], threshold: float) -> tuple[float, float]:
    """(precision, coverage) of the first point of a (threshold, precision, coverage) curve at or above
    `threshold`; none there: nothing is covered."""
    for point, precision, coverage in curve:
        if point >= threshold - 1e-9:
            return precision, coverage
    return 1.0, 0.0


def calibrate(
    search: SearchFn,
    row_xids: Sequence[str],
    row_sha256: Sequence[str],
    vectors: np.ndarray,
    landmarks: Mapping[str, Landmark],
    params: RankingParams,
    view_similarity: float | None = VIEW_SIMILARITY,
) -> Calibration | None:
    """Fit the calibration on the index's own photos (None when there are too few to say anything)."""
    queries = collect_queries(search, row_xids, row_sha256, vectors, landmarks, params, view_similarity)
    return None if queries is None else fit(queries)


def collect_queries(
    search: SearchFn,
    row_xids: Sequence[str],
    row_sha256: Sequence[str],
    vectors: np.ndarray,
    landmarks: Mapping[str, Landmark],
    params: RankingParams,
    view_similarity: float | None = VIEW_SIMILARITY,
) -> Queries | None:
    """Known (leave-view-out) and unknown (leave-landmark-out) queries with their votes' evidence;
    `view_similarity` None: known queries hide their exact copies only (leave-one-out, as `prep eval`
    compares)."""
    sampled = sample_queries(row_xids, vectors, view_similarity)
    if sampled is None:
        return None
    queries, unknown = sampled
    features, right = [], []
    for start in range(0, len(queries), QUERY_BATCH):  # batched: one FAISS call serves many queries
        batch = queries[start : start + QUERY_BATCH]
        found = votes(search, batch, row_xids, row_sha256, vectors, landmarks, params)
        for (row, _), result in zip(batch, found, strict=True):
            features.append(evidence(result))
            right.append(bool(result.landmarks) and result.landmarks[0].xid == row_xids[row])
    return Queries(np.array(features), np.array(right, dtype=float), unknown)


Query = tuple[int, frozenset[int]]  # an indexed photo's row, and the rows its search must not see


def sample_queries(
    row_xids: Sequence[str], vectors: np.ndarray, view_similarity: float | None = VIEW_SIMILARITY
) -> tuple[list[Query], np.ndarray] | None:
    """The calibration's queries as (row, hidden rows) — a known photo hides its view, a held-out
    landmark's photo every photo of its landmark — with which of them are unknown; None when too few."""
    rng = np.random.default_rng(SEED)
    by_xid = rows_by_xid(row_xids)
    held_out = held_out_landmarks(by_xid, rng)
    known_rows = [r for r in range(len(row_xids)) if row_xids[r] not in held_out and len(by_xid[row_xids[r]]) > 1]
    known_rows = [int(r) for r in rng.permutation(known_rows)[:KNOWN_QUERIES]]
    unknown_rows = [
        int(r) for xid in sorted(held_out) for r in rng.permutation(by_xid[xid])[:UNKNOWN_PHOTOS_PER_LANDMARK]
    ]
    if len(known_rows) < MIN_QUERIES or len(unknown_rows) < MIN_QUERIES:
        return None
    hidden = {xid: frozenset(by_xid[xid]) for xid in held_out}
    queries = [(row, view_of(row, by_xid[row_xids[row]], vectors, view_similarity)) for row in known_rows]
    queries += [(row, hidden[row_xids[row]]) for row in unknown_rows]
    return queries, np.array([False] * len(known_rows) + [True] * len(unknown_rows))


def view_of(
    row: int, landmark_rows: Sequence[int], vectors: np.ndarray, view_similarity: float | None
) -> frozenset[int]:
    """The photos of `row`'s landmark in its view (at least `view_similarity` alike, itself included);
    none when that is all of them — a landmark seen from one view keeps a leave-one-out query."""
    if view_similarity is None:
        return frozenset()
    others = np.asarray(landmark_rows)
    alike = np.asarray(vectors[others], dtype=np.float32) @ np.asarray(vectors[row], dtype=np.float32)
    view = frozenset(int(r) for r in others[alike >= view_similarity]) | {row}
    return frozenset() if len(view) == len(others) else view


def fit(queries: Queries) -> Calibration:
    """The logistic model on all queries; its figures from each half's model on the other half."""
    x, y, weight = queries.features, queries.right, queries.weight
    held_out_p = cross_validated(x, y, weight)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    weights, bias = _fit((x - mean) / scale, y, weight)
    return Calibration(
        mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        weights=tuple(weights.tolist()),
        bias=float(bias),
        known_queries=int((~queries.unknown).sum()),
        unknown_queries=int(queries.unknown.sum()),
        known_accuracy=float(y[~queries.unknown].mean()),
        reliability=reliability(held_out_p, y, weight),
        curve=_curve(held_out_p, y, weight),
        features=queries.names,
    )


def expected_calibration_error(calibration: Calibration) -> float:
    """|predicted − observed| per reliability bin, weighted by the bin's share (held-out queries)."""
    return reliability_error(calibration.reliability)


def reliability_error(bins: Sequence[tuple[float, float, float]]) -> float:
    """The expected calibration error of (mean predicted, observed, share) bins."""
    return float(sum(share * abs(predicted - observed) for predicted, observed, share in bins))


def rows_by_xid(row_xids: Sequence[str]) -> dict[str, list[int]]:
    by_xid: dict[str, list[int]] = {}
    for row, xid in enumerate(row_xids):
        by_xid.setdefault(xid, []).append(row)
    return by_xid


def held_out_landmarks(xids: Iterable[str], rng: np.random.Generator) -> set[str]:
    """The landmarks hidden to play "unknown": UNKNOWN_LANDMARK_SHARE of them, at least 2, never all."""
    indexed = sorted(xids)
    if len(indexed) <= 2:
        return set()
    hidden = min(len(indexed) - 1, MAX_UNKNOWN_LANDMARKS, max(2, round(UNKNOWN_LANDMARK_SHARE * len(indexed))))
    return set(rng.choice(indexed, size=hidden, replace=False).tolist())


def votes(
    search: SearchFn,
    batch: list[Query],
    row_xids: Sequence[str],
    row_sha256: Sequence[str],
    vectors: np.ndarray,
    landmarks: Mapping[str, Landmark],
    params: RankingParams,
) -> list[Recognition]:
    """The vote for each (row, hidden) of `batch`: the photo at `row` searched without its own copies and
    without the `hidden` rows (its view, or its whole landmark when the landmark plays unknown). They are
    skipped in a search that many rows deeper, never found by scanning the index: a query's work stays
    k + hidden rows at any size. One search serves the batch at its deepest; each query keeps the depth
    it would have had alone, so the votes are those of single searches."""
    depths = [params.search_depth + len(hidden) + SPARE_FOR_COPIES for _, hidden in batch]
    rows = [row for row, _ in batch]
    similarities, found = search(np.ascontiguousarray(vectors[rows]), min(max(depths), len(row_xids)))
    results = []
    for i, ((row, hidden), depth) in enumerate(zip(batch, depths, strict=True)):
        sims, xids = [], []
        for s, r in zip(similarities[i][:depth], found[i][:depth], strict=True):
            if r < 0 or r in hidden or row_sha256[r] == row_sha256[row]:
                continue
            sims.append(float(s))
            xids.append(row_xids[r])
        results.append(vote(sims, xids, landmarks, params))
    return results


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def _fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression by Newton's method (x standardised)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(design.shape[1])
    ridge = np.diag([L2] * x.shape[1] + [0.0])
    for _ in range(NEWTON_STEPS):
        p = _sigmoid(design @ beta)
        gradient = design.T @ (weight * (p - y)) + ridge @ beta
        hessian = design.T @ (design * (weight * p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def cross_validated(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each query's probability from a model fitted on the other half (two folds)."""
    fold = np.random.default_rng(SEED).permutation(len(y)) % 2
    predicted = np.zeros(len(y))
    for k in (0, 1):
        train, test = fold != k, fold == k
        mean, scale = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
        weights, bias = _fit((x[train] - mean) / scale, y[train], weight[train])
        predicted[test] = _sigmoid(((x[test] - mean) / scale) @ weights + bias)
    return predicted


def reliability(p: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    """(mean predicted, observed right, share of the weight) per tenth of predicted probability."""
    bins = np.minimum((p * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
    rows = []
    for b in range(RELIABILITY_BINS):
        inside = bins == b
        if weight[inside].sum() > 0:
            w = weight[inside]
            predicted, observed = np.average(p[inside], weights=w), np.average(y[inside], weights=w)
            rows.append((float(predicted), float(observed), float(w.sum() / weight.sum())))
    return tuple(rows)


def _curve(p: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    """(threshold, precision, coverage) for thresholds from 0 to 0.99 in steps of 0.01."""
    rows = []
    for threshold in np.round(np.arange(0.0, 1.0, 0.01), 2):
        taken = p >= threshold
        covered = weight[taken].sum() / weight.sum()
        precision = float(np.average(y[taken], weights=weight[taken])) if taken.any() else 1.0
        rows.append((float(threshold), precision, float(covered)))
    return tuple(rows)


def summary_rows(calibration: Calibration) -> list[tuple[float, float, float]]:
    """The operating points the reports show: (threshold, precision, coverage)."""
    return [(t, *calibration.operating_point(t)) for t in OPERATING_POINTS]


@dataclass(frozen=True)
class TextCalibration:
    """Precision and coverage of text answers per best-similarity threshold, on the dataset's names."""

    known_queries: int
    unknown_queries: int
    known_accuracy: float  # the best photo shows the named landmark (known queries)
    curve: tuple[tuple[float, float, float], ...]  # (similarity threshold, precision, coverage), ascending

    def threshold(self, precision: float) -> float:
        """The lowest similarity whose answers are right at least `precision` of the time; infinity when
        none reaches it: then no similarity is high enough and every text answer says "nothing matches
        well" (the highest similarity measured + a step, as before, let ordinary queries through)."""
        for similarity, reached, _ in self.curve:
            if reached >= precision - 1e-9:
                return similarity
        return math.inf

    def operating_point(self, threshold: float) -> tuple[float, float]:
        """(expected precision, expected coverage) of text answers at similarity ≥ threshold."""
        return _operating_point(self.curve, threshold)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping) -> TextCalibration:
        """The stored curve; ValueError for values no fit produces (see Calibration.from_dict)."""
        curve = tuple((float(s), float(p), float(c)) for s, p, c in raw["curve"])
        calibration = cls(int(raw["known_queries"]), int(raw["unknown_queries"]), float(raw["known_accuracy"]), curve)
        _check_counts(calibration.known_queries, calibration.unknown_queries, calibration.known_accuracy)
        _check_curve(calibration.curve, low=-1.0)  # cosine similarities
        return calibration


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(f"damaged: {what}")


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _share(*values: float) -> bool:
    return all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)


def _check_counts(known: int, unknown: int, accuracy: float) -> None:
    _require(known >= 0 and unknown >= 0 and _share(accuracy), "query counts or accuracy out of range")


def _check_curve(curve: tuple[tuple[float, float, float], ...], low: float) -> None:
    """(threshold, precision, coverage) rows: thresholds in [low, 1] ascending, shares in [0, 1]."""
    thresholds = [t for t, _, _ in curve]
    _require(all(_finite(t) and low <= t <= 1.0 for t in thresholds), "a threshold out of range")
    _require(thresholds == sorted(thresholds), "thresholds out of order")
    _require(all(_share(p, c) for _, p, c in curve), "a precision or coverage out of range")


def calibrate_text(
    search: SearchFn,
    encode_texts: EncodeTextsFn,
    row_xids: Sequence[str],
    names: Mapping[str, Iterable[str]],
) -> TextCalibration | None:
    """Fit the text curve: each indexed landmark's names (every language) as queries; the held-out
    landmarks' names, searched without their photos, as the unknown ones."""
    rng = np.random.default_rng(SEED)
    by_xid = rows_by_xid(row_xids)
    held_out = held_out_landmarks(by_xid, rng)
    queries = [(xid, name) for xid in sorted(by_xid) for name in sorted(set(names.get(xid, ())))]
    picked = rng.permutation(len(queries))[:TEXT_QUERIES]
    queries = [queries[i] for i in sorted(picked)]
    unknown = np.array([xid in held_out for xid, _ in queries], dtype=bool)
    if (~unknown).sum() < MIN_QUERIES or unknown.sum() < MIN_QUERIES:
        return None
    vectors = encode_texts([name for _, name in queries])
    depth = min(len(row_xids), 1 + max((len(by_xid[x]) for x in held_out), default=0))
    similarities, rows = search(np.ascontiguousarray(vectors, dtype=np.float32), depth)
    best, right = np.full(len(queries), -1.0), np.zeros(len(queries))
    for i, (xid, _) in enumerate(queries):
        for similarity, row in zip(similarities[i], rows[i], strict=True):
            if row >= 0 and not (unknown[i] and row_xids[row] == xid):
                best[i], right[i] = similarity, row_xids[row] == xid
                break
    weight = weights_of(unknown)
    return TextCalibration(
        known_queries=int((~unknown).sum()),
        unknown_queries=int(unknown.sum()),
        known_accuracy=float(right[~unknown].mean()),
        curve=_similarity_curve(best, right, weight),
    )


def _similarity_curve(
    best: np.ndarray, right: np.ndarray, weight: np.ndarray
) -> tuple[tuple[float, float, float], ...]:
    low = np.floor(best.min() / TEXT_GRID_STEP) * TEXT_GRID_STEP
    rows = []
    for threshold in np.arange(low, best.max() + TEXT_GRID_STEP / 2, TEXT_GRID_STEP):
        taken = best >= threshold - 1e-9
        if not taken.any():
            break
        precision = float(np.average(right[taken], weights=weight[taken]))
        rows.append((round(float(threshold), 4), precision, float(weight[taken].sum() / weight.sum())))
    return tuple(rows)


def text_threshold(calibration: TextCalibration | None, override: float | None, precision: float) -> float:
    """The similarity below which a text answer says "nothing matches well": TEXT_MATCH_THRESHOLD set
    by hand, else the index's calibrated one at MATCH_PRECISION, else the model family's usual value."""
    if override is not None:
        return override
    if calibration is not None:
        return calibration.threshold(precision)
    return FALLBACK_TEXT_MATCH_THRESHOLD
