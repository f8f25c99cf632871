"""Leave-one-out evaluation of recognition and text search on the indexed dataset.

Every indexed photo is recognised against the index without itself and its exact duplicates,
using the same vote as the bot (core.ranking), so the figures predict what tourists get for
photos like the dataset's. The stored vectors are reused: no image is decoded or embedded.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core import (
    EARTH_RADIUS_M,
    LANGS,
    UNKNOWN_SHARE,
    GeoPoint,
    PhotoIndex,
    PhotoLocation,
    RankingParams,
    Recognition,
    TextThresholds,
    chosen_weight,
    clip_is_certain,
    fresh_view_gap,
    fuse,
    landmark_point,
    rank,
    summary_rows,
    text_threshold,
    vote,
)
from core.encoders import TextEncoder
from prep.progress import progress_over

TEXT_TOP = 5
QUERY_BATCH = 256
# Alpha query expansion, measured by `prep eval --query-expansion` before any answer would use it (issue #34):
# the query plus its QE_NEIGHBOURS nearest photos weighted by similarity^QE_ALPHA (Radenović et al.'s αQE;
# small n, as a landmark's neighbours past the first few are often other landmarks).
QE_NEIGHBOURS = 2
QE_ALPHA = 3.0


@dataclass(frozen=True)
class Evaluation:
    photos: int
    landmarks: int
    top1: float  # share of photos whose best landmark is right
    top5: float  # share whose landmark is among the 5 returned
    category_precision5: float  # mean share of returned categories (up to 5) that the landmark has
    match_rate: float  # share of photos that pass the match threshold (all of them are landmarks)
    similarity_p5: float  # 5th percentile of the best-neighbour similarity of correctly recognised photos
    similarity_p50: float
    text_precision5: float | None  # landmark name as query: share of the top 5 photos of that landmark
    params: dict
    geo: GeoEvaluation | None = None  # with --geo-noise: the location prior's effect
    text_similarity: TextCalibration | None = None  # best text→photo similarities: names vs generic phrases
    # The index's calibration (core.calibration) and the operating point serving uses; None: no calibration.
    calibration: dict | None = None
    # With the place tower (PLACE_MODEL): each photo tower alone, {model: {"top1", "top5"}}.
    towers: dict | None = None
    # The calibration on views it never saw (core.fresh_views): fitted on rows vs on views.
    fresh_views: dict | None = None
    # With --query-expansion: top-1 with and without alpha query expansion, CLIP and fused (`query_expansion`).
    query_expansion: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:5.1f} %"

        rows = [
            ("photos evaluated (leave-one-out)", f"{self.photos}"),
            ("landmarks", f"{self.landmarks}"),
            ("landmark top-1 accuracy", pct(self.top1)),
            ("landmark top-5 accuracy", pct(self.top5)),
            ("category precision@5", pct(self.category_precision5)),
            ("recognised as a match", pct(self.match_rate)),
            ("best similarity, correct photos: p5 / p50", f"{self.similarity_p5:.3f} / {self.similarity_p50:.3f}"),
            ("text → photo precision@5 (landmark names)", pct(self.text_precision5)),
            ("k / temperature", f"{self.params['k']} / {self.params['temperature']}"),
        ]
        if (t := self.text_similarity) is not None:
            rows += [
                ("best text→photo similarity p5 / p50 / p95:", ""),
                ("  landmark names (ru, en)", t.names.text()),
                ("  generic phrases (ru, en)", t.generic.text()),
                (
                    "  suggested TEXT_MATCH_THRESHOLD",
                    f"{t.suggested_threshold:.3f}" + ("" if t.separable else " (overlap!)"),
                ),
            ]
        if (c := self.calibration) is not None:
            rule = (
                f"P(right) ≥ {c['match_precision']:.2f}"
                if c["match_threshold"] is None
                else f"similarity ≥ {c['match_threshold']:.2f} (MATCH_THRESHOLD)"
            )
            rows += [
                (f"calibration, held-out ({c['known_queries']} known + {c['unknown_queries']} unknown):", ""),
                ("  a match when", rule),
                ("  expected precision / coverage", f"{pct(c['expected_precision'])} / {pct(c['expected_coverage'])}"),
            ]
            rows += [
                (f"  at P ≥ {t:.2f}: precision / coverage", f"{pct(p)} / {pct(cov)}")
                for t, p, cov in c["operating_points"]
            ]
            how = "calibrated" if c["text_calibrated"] else "TEXT_MATCH_THRESHOLD" if c["text_queries"] else "fixed"
            if c["text_match_threshold"] is None:
                rule = (
                    f"never: no similarity gives text answers right {100 * c['match_precision']:.0f} % of the time, so "
                    'every text answer says "nothing matches well" (set TEXT_MATCH_THRESHOLD, or lower '
                    "MATCH_PRECISION, to answer some)"
                )
                rows.append(("  text: a match when", rule))
            else:
                rows.append(("  text: a match when", f"similarity ≥ {c['text_match_threshold']:.3f} ({how})"))
            if c["text_queries"]:
                known, unknown = c["text_queries"]
                rows.append(
                    (
                        f"  text, held-out ({known} names + {unknown} unknown): precision / coverage",
                        f"{pct(c['text_expected_precision'])} / {pct(c['text_expected_coverage'])}",
                    )
                )
        if (f := self.fresh_views) is not None:
            rows += _fresh_view_rows(f, pct)
        if self.towers:
            rows.append(("each photo tower alone, and fused:", "top-1 / top-5"))
            rows += [(f"  {name}", f"{pct(f['top1'])} / {pct(f['top5'])}") for name, f in self.towers.items()]
        if (q := self.query_expansion) is not None:
            rows.append((f"alpha query expansion (n = {q['neighbours']}, α = {q['alpha']:g}):", "top-1 without / with"))
            rows += [
                (f"  {name}", f"{pct(q[name]['top1'])} / {pct(q[name]['top1_expanded'])}")
                for name in ("clip", "fused")
                if name in q
            ]
        if self.geo is not None:
            g = self.geo
            rows += [
                (f"with a location within {g.noise_m:g} m ({g.photos} photos):", "without / with prior"),
                ("  landmark top-1 accuracy", f"{pct(g.top1_without)} / {pct(g.top1_with)}"),
                ("  landmark top-5 accuracy", f"{pct(g.top5_without)} / {pct(g.top5_with)}"),
            ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


FIT_NAMES = {"rows": "fitted leave-one-out (before)", "views": "fitted leave-view-out (built)"}


def _fresh_view_rows(report: dict, pct) -> list[tuple[str, str]]:
    """The fresh-view gap: what each fit promised the known landmarks' fresh photos, and what it gave."""
    if report["unmeasured"]:
        return [("calibration on fresh views", f"not measured: {report['unmeasured']}")]
    target = f"P ≥ {report['match_precision']:.2f}"
    rows = [
        (
            f"calibration on fresh views ({report['views']} views; "
            f"{report['fresh_known']} + {report['fresh_unknown']} unknown photos held out):",
            f"P said / right · error · match at {target} (precision) · reachable",
        )
    ]
    for name, fit in report["fits"].items():
        rows.append(
            (
                f"  {FIT_NAMES.get(name, name)}",
                f"{pct(fit['predicted'])} / {pct(fit['observed'])} · {fit['calibration_error']:.3f} · "
                f"{pct(fit['coverage'])} ({pct(fit['precision'])}) · {pct(fit['reachable_coverage'])}",
            )
        )
    return rows


def fresh_view_report(index: PhotoIndex, params: RankingParams, match_precision: float) -> dict:
    """core.fresh_views on the index's own vectors (no photo decoded)."""
    return fresh_view_gap(
        index.vectors(),
        [p.xid for p in index.photos],
        [p.sha256 for p in index.photos],
        index.landmarks,
        params,
        match_precision,
    ).to_dict()


def tower_figures(evaluation: Evaluation) -> dict[str, float]:
    return {"top1": evaluation.top1, "top5": evaluation.top5}


def _loo_votes(
    index: PhotoIndex,
    vectors: np.ndarray,
    start: int,
    params: RankingParams,
    hashes: list[str],
    extra: int,
    expand: bool = False,
) -> list[Recognition]:
    """The votes of the indexed photos from row `start` (QUERY_BATCH of them), each searched without
    itself and its `extra` at most exact copies (`hashes`: each row's content): one FAISS call a batch.
    `expand`: each query is first expanded by its nearest photos (alpha query expansion), then searched."""
    depth = params.search_depth + extra
    queries = np.asarray(vectors[start : start + QUERY_BATCH], dtype=np.float32)
    similarities, rows = index.search(queries, depth)
    if expand:
        own = hashes[start : start + QUERY_BATCH]
        similarities, rows = index.search(_expanded(queries, similarities, rows, vectors, hashes, own), depth)
    return [
        vote(*index.neighbours(sims, found, exclude_sha256=hashes[start + offset]), index.landmarks, params)
        for offset, (sims, found) in enumerate(zip(similarities, rows, strict=True))
    ]


def _expanded(
    queries: np.ndarray,
    similarities: np.ndarray,
    rows: np.ndarray,
    vectors: np.ndarray,
    hashes: list[str],
    own: list[str],
) -> np.ndarray:
    """Alpha query expansion (Radenović et al.): each query plus its QE_NEIGHBOURS nearest photos (not its
    own copies), weighted by similarity^QE_ALPHA, normalised."""
    expanded = queries.copy()
    for i, (sims, found) in enumerate(zip(similarities, rows, strict=True)):
        near = [(float(s), int(r)) for s, r in zip(sims, found, strict=True) if r >= 0 and hashes[r] != own[i]]
        for similarity, row in near[:QE_NEIGHBOURS]:
            expanded[i] += max(similarity, 0.0) ** QE_ALPHA * np.asarray(vectors[row], dtype=np.float32)
    return expanded / np.linalg.norm(expanded, axis=1, keepdims=True)


def query_expansion(
    evaluation: Evaluation,
    index: PhotoIndex,
    params: RankingParams,
    place: PhotoIndex | None = None,
    show_progress: bool = False,
) -> dict:
    """Leave-one-out top-1 with and without alpha query expansion: CLIP alone, and fused when the place
    tower is there (each tower's query expanded by its own neighbours). The plain figures are
    `evaluation`'s own, not measured again. Measured, not used by answers."""
    figures: dict = {"neighbours": QE_NEIGHBOURS, "alpha": QE_ALPHA}
    figures["clip"] = {"top1": evaluation.top1, "top1_expanded": _expanded_top1(index, params, show_progress)}
    if place is not None and evaluation.towers is not None:
        expanded = evaluate_fused(index, place, params, show_progress, expand=True)["top1"]
        figures["fused"] = {"top1": evaluation.towers["fused"]["top1"], "top1_expanded": expanded}
    return figures


def _expanded_top1(index: PhotoIndex, params: RankingParams, show_progress: bool) -> float:
    vectors, hashes = index.vectors(), [p.sha256 for p in index.photos]
    extra, right = max(Counter(hashes).values()), 0
    for start in progress_over(range(0, len(index), QUERY_BATCH), "query expansion", enabled=show_progress):
        for offset, result in enumerate(_loo_votes(index, vectors, start, params, hashes, extra, expand=True)):
            right += bool(result.landmarks) and result.landmarks[0].xid == index.photos[start + offset].xid
    return right / len(index)


def evaluate_fused(
    index: PhotoIndex, place: PhotoIndex, params: RankingParams, show_progress: bool = False, expand: bool = False
) -> dict:
    """Leave-one-out top-1/top-5 of the fused answer (core.fusion), on the same photos as each tower's
    (`expand`: each tower's query expanded first, see `query_expansion`)."""
    clip_vectors, place_vectors = index.vectors(), place.vectors()
    hashes = [p.sha256 for p in index.photos]
    extra = max(Counter(hashes).values())
    top1 = top5 = 0
    weight = chosen_weight(index.fused_calibration)
    for start in progress_over(range(0, len(index), QUERY_BATCH), "evaluate fused", enabled=show_progress):
        clips = _loo_votes(index, clip_vectors, start, params, hashes, extra, expand)
        places = _loo_votes(place, place_vectors, start, params, hashes, extra, expand)
        for offset, (clip, alone) in enumerate(zip(clips, places, strict=True)):
            answer = clip if clip_is_certain(index.calibration, clip) else fuse(clip, alone, params, weight)
            ranked = [hit.xid for hit in answer.landmarks]
            truth = index.photos[start + offset].xid
            top1 += bool(ranked) and ranked[0] == truth
            top5 += truth in ranked
    return {"top1": top1 / len(index), "top5": top5 / len(index), "place_weight": weight}


def evaluate(
    index: PhotoIndex, params: RankingParams, text_encoder: TextEncoder | None = None, show_progress: bool = False
) -> Evaluation:
    if len(index) < 2:
        raise ValueError("the index needs at least 2 photos to evaluate")
    vectors = index.vectors()
    hashes = [p.sha256 for p in index.photos]
    copies = Counter(hashes)
    extra = max(copies.values())  # enough spare neighbours to drop the photo and all its copies
    top1 = top5 = matches = 0
    precisions: list[float] = []
    correct_similarities: list[float] = []
    for start in progress_over(range(0, len(index), QUERY_BATCH), "evaluate", enabled=show_progress):
        for offset, result in enumerate(_loo_votes(index, vectors, start, params, hashes, extra)):
            query = start + offset
            truth = index.photos[query].xid
            ranked = [hit.xid for hit in result.landmarks]
            top1 += bool(ranked) and ranked[0] == truth
            top5 += truth in ranked
            if index.calibration is not None and params.match_precision is not None and result.landmarks:
                matches += index.calibration.confidence(result) >= params.match_precision  # as serving decides
            else:
                matches += result.match
            if ranked and ranked[0] == truth:
                correct_similarities.append(result.best_similarity)
            true_categories = set(index.landmarks[truth].categories)
            if result.categories:
                hits = sum(c.category in true_categories for c in result.categories)
                precisions.append(hits / len(result.categories))
            else:
                precisions.append(0.0)
    n = len(index)
    sims = np.array(correct_similarities) if correct_similarities else np.array([np.nan])
    return Evaluation(
        photos=n,
        landmarks=len({p.xid for p in index.photos}),
        top1=top1 / n,
        top5=top5 / n,
        category_precision5=float(np.mean(precisions)),
        match_rate=matches / n,
        similarity_p5=float(np.percentile(sims, 5)),
        similarity_p50=float(np.percentile(sims, 50)),
        text_precision5=None if text_encoder is None else text_precision(index, text_encoder),
        params=asdict(params),
        text_similarity=None if text_encoder is None else text_calibration(index, text_encoder),
    )


# Queries a tourist may send that name no landmark: the no-match answer should catch them.
GENERIC_PHRASES = (
    "где поесть рядом?",
    "привет",
    "погода завтра",
    "котик спит на диване",
    "вкусная пицца",
    "расписание автобусов",
    "спасибо!",
    "смешная собака",
    "where can I eat nearby?",
    "hello",
    "weather tomorrow",
    "a cat sleeping on a sofa",
    "tasty pizza",
    "bus timetable",
    "thanks!",
    "👍",
)


@dataclass(frozen=True)
class Spread:
    p5: float
    p50: float
    p95: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        array = np.asarray(values, dtype=np.float64) if values else np.array([np.nan])
        return cls(*(float(np.percentile(array, q)) for q in (5, 50, 95)))

    def text(self) -> str:
        return f"{self.p5:.3f} / {self.p50:.3f} / {self.p95:.3f}"


@dataclass(frozen=True)
class TextCalibration:
    names: Spread  # each indexed landmark's name, in every language of the enrichment, as the query
    generic: Spread  # GENERIC_PHRASES
    suggested_threshold: float
    separable: bool  # the names' p5 lies above the phrases' p95


def text_calibration(index: PhotoIndex, text_encoder: TextEncoder) -> TextCalibration:
    """How to set TEXT_MATCH_THRESHOLD: best similarities of real names versus phrases that name nothing."""
    xids = sorted({p.xid for p in index.photos})
    # Each distinct name once: a language without a name of its own falls back to one already asked.
    names = sorted({index.describe(xid, lang).name for xid in xids for lang in LANGS})

    def best(queries) -> list[float]:
        similarities, _ = index.search(text_encoder.encode_texts(list(queries)), 1)
        return similarities[:, 0].tolist()

    named, generic = Spread.of(best(names)), Spread.of(best(GENERIC_PHRASES))
    separable = named.p5 > generic.p95
    threshold = (named.p5 + generic.p95) / 2 if separable else generic.p95
    return TextCalibration(named, generic, math.ceil(threshold * 1000) / 1000, separable)


@dataclass(frozen=True)
class GeoEvaluation:
    noise_m: float  # the simulated location lies uniformly within this distance of the true landmark
    photos: int  # photos whose landmark has coordinates
    top1_without: float
    top1_with: float
    top5_without: float
    top5_with: float


def offset_point(point: GeoPoint, metres: float, rng: random.Random) -> GeoPoint:
    """A point uniformly distributed over the disc of radius `metres` around `point`."""
    radius, angle = metres * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = point.lat + math.degrees(radius * math.cos(angle) / EARTH_RADIUS_M)
    lon = point.lon + math.degrees(radius * math.sin(angle) / (EARTH_RADIUS_M * math.cos(math.radians(point.lat))))
    return GeoPoint(max(-90.0, min(90.0, lat)), (lon + 180) % 360 - 180)


def geo_evaluation(
    index: PhotoIndex, params: RankingParams, noise_m: float, max_km: float, seed: int = 0, show_progress: bool = False
) -> GeoEvaluation:
    """Leave-one-out with and without a simulated location near each photo's true landmark."""
    rng = random.Random(seed)
    vectors = index.vectors()
    top1 = {False: 0, True: 0}
    top5 = {False: 0, True: 0}
    counted = 0
    for row in progress_over(range(len(index)), "geo", enabled=show_progress):
        photo = index.photos[row]
        place = landmark_point(index.landmarks[photo.xid])
        if place is None:
            continue
        point = offset_point(place, noise_m, rng)
        counted += 1
        for located in (False, True):
            near = PhotoLocation(point.lat, point.lon, "simulated") if located else None
            result = rank(index, vectors[row], params, near, max_km, exclude_sha256=photo.sha256)
            ranked = [hit.xid for hit in result.landmarks]
            top1[located] += bool(ranked) and ranked[0] == photo.xid
            top5[located] += photo.xid in ranked
    share = (lambda x: x / counted) if counted else (lambda x: float("nan"))
    return GeoEvaluation(noise_m, counted, share(top1[False]), share(top1[True]), share(top5[False]), share(top5[True]))


def text_precision(index: PhotoIndex, text_encoder: TextEncoder) -> float:
    """Each landmark's name as a query: mean share of the top-5 photos that show that landmark."""
    xids = sorted({p.xid for p in index.photos})
    queries = text_encoder.encode_texts([index.landmarks[x].name for x in xids])
    _, rows = index.search(queries, TEXT_TOP)
    shares = [
        sum(index.photos[r].xid == xid for r in found if r >= 0) / TEXT_TOP
        for xid, found in zip(xids, rows, strict=True)
    ]
    return float(np.mean(shares))


def calibration_report(
    index: PhotoIndex, params: RankingParams, text_override: float | None, match_precision: float
) -> dict | None:
    """What serving's match rules are expected to give, from the index's held-out calibration figures."""
    calibration = index.calibration
    if calibration is None:
        return None
    target = params.match_precision
    precision, coverage = calibration.operating_point(target) if target is not None else (None, None)
    text = index.text_calibration
    text_match_threshold = text_threshold(text, text_override, match_precision)
    text_precision, text_coverage = text.operating_point(text_match_threshold) if text else (None, None)
    if not math.isfinite(text_match_threshold):
        text_precision, text_coverage = None, 0.0  # nothing is answered as a match
    return {
        "match_precision": match_precision,
        "match_threshold": None if target is not None else params.match_threshold,
        "expected_precision": precision,
        "expected_coverage": coverage,
        "text_match_threshold": text_match_threshold if math.isfinite(text_match_threshold) else None,
        "text_target_reached": math.isfinite(text_match_threshold),  # false: every text answer is "no match"
        "text_calibrated": text is not None and text_override is None,
        "text_expected_precision": text_precision,
        "text_expected_coverage": text_coverage,
        "text_known_accuracy": text.known_accuracy if text else None,
        "text_queries": [text.known_queries, text.unknown_queries] if text else None,
        "known_accuracy": calibration.known_accuracy,
        "known_queries": calibration.known_queries,
        "unknown_queries": calibration.unknown_queries,
        "unknown_share": UNKNOWN_SHARE,
        "operating_points": [list(row) for row in summary_rows(calibration)],
        "reliability": [list(row) for row in calibration.reliability],
    }


def plot_calibration(index: PhotoIndex, path: Path, match_precision: float) -> None:
    """The reliability diagram, the photo answers' precision–coverage curve and the text answers' one
    (held-out queries) into a PNG; the operating points labelled once where they coincide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calibration = index.calibration
    if calibration is None:
        raise ValueError("this index has no calibration (too few photos): nothing to plot")
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.8))
    predicted, observed, weight = zip(*calibration.reliability, strict=True)
    left.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    left.scatter(predicted, observed, s=[40 + 600 * w for w in weight], label="held-out queries (size: share)")
    left.set(xlabel="predicted P(right)", ylabel="observed share right", title="Reliability", xlim=(0, 1), ylim=(0, 1))
    left.legend(loc="upper left")
    _, precision, coverage = zip(*calibration.curve, strict=True)
    middle.plot(coverage, precision)
    _label_points(middle, [(c, p, f"P≥{t:.2f}") for t, p, c in summary_rows(calibration)])
    middle.set(
        xlabel="coverage (share of photos called a match)", ylabel="precision", title="Photos: precision vs coverage"
    )
    middle.set_ylim(0, 1.05)
    _plot_text(right, index.text_calibration, match_precision)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# Operating points closer than this (in coverage and precision) share one label on the plot.
LABEL_MERGE_DISTANCE = 0.03


def _label_points(axes, points: list[tuple[float, float, str]]) -> None:
    """Mark each point; points that coincide get one label ("P≥0.80, 0.90"), labels alternate below and
    above their point so that neighbours do not overlap."""
    groups: list[list[tuple[float, float, str]]] = []
    for point in sorted(points):
        near = next(
            (g for g in groups if abs(g[0][0] - point[0]) + abs(g[0][1] - point[1]) < LABEL_MERGE_DISTANCE), None
        )
        if near is None:
            groups.append([point])
        else:
            near.append(point)
    for number, group in enumerate(groups):
        c, p, _ = group[0]
        label = group[0][2] + "".join(", " + g[2].removeprefix("P≥") for g in group[1:])
        axes.scatter([c], [p], s=14, color="C1", zorder=3)
        axes.annotate(label, (c, p), textcoords="offset points", xytext=(5, -12 if number % 2 else 6), fontsize=8)


def _plot_text(axes, text: TextThresholds | None, match_precision: float) -> None:
    """Text search: precision and coverage per similarity threshold, and the one serving uses (none when
    no threshold reaches the precision asked: then every text answer says "nothing matches well")."""
    axes.set(xlabel="coverage (share of names answered as a match)", ylabel="precision", ylim=(0, 1.05))
    if text is None or not text.curve:
        axes.set_title("Text search: not calibrated (too few names)")
        return
    _, precision, coverage = zip(*text.curve, strict=True)
    axes.plot(coverage, precision, color="C2")
    axes.axhline(match_precision, linestyle=":", color="grey")
    threshold = text.threshold(match_precision)
    if math.isfinite(threshold):
        wanted_precision, wanted_coverage = text.operating_point(threshold)
        _label_points(axes, [(wanted_coverage, wanted_precision, f"similarity≥{threshold:.3f}")])
        axes.set_title(f"Text search: {100 * match_precision:.0f} % precise from similarity {threshold:.3f}")
    else:
        axes.set_title(f"Text search: no threshold reaches {100 * match_precision:.0f} %: never a match")
