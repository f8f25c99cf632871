"""Is the build-time calibration honest, and which evidence should it use? (issue #23)

    .venv/bin/python -m benchmarks.calibration [--work DIR] [--size full|tiny] [--json]

Builds a synthetic dataset (LANDMARKS landmarks × PHOTOS views) and random-weight models of the real
architecture, builds the index as `prep build` does (photo and text calibration), then measures:
- each evidence set (best similarity alone, + margin, + vote share) on the same held-out queries:
  log loss, expected calibration error, precision and coverage at P ≥ 0.9;
- fresh photos the index has never seen — new views of indexed landmarks (should be answered) and
  unrelated images (unseen landmarks, noise, flat colours: should be "not sure") — under the old
  fixed rule (similarity ≥ 0.70) and the calibrated one (P ≥ MATCH_PRECISION);
- the text calibration: threshold, precision and coverage on the dataset's names.
Absolute accuracies of random-weight models mean nothing; what must hold is that the promised
precision is the precision delivered on photos the fit never saw. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LANDMARKS = 60
PHOTOS = 8
FRESH_VIEWS = 2  # new views per indexed landmark, never indexed
UNRELATED = 60  # unseen landmarks, noise and flat colours, 1:1:1
OLD_THRESHOLD = 0.70  # MATCH_THRESHOLD before calibration
SUBSETS = {"best similarity": [0], "best + margin": [0, 1], "best + margin + vote share": [0, 1, 2]}


def prepare(work: Path, size: str) -> tuple[Path, Path, Path]:
    from core.catalog import Landmark, write_places
    from prep.random_models import build_clip, build_multilingual
    from tests.helpers.datagen import jpeg_bytes, scene

    clip, text = work / f"{size}-clip-ViT-B-32", work / f"{size}-clip-ViT-B-32-multilingual-v1"
    if not (clip / "modules.json").exists():
        print(f"building {size} random-weight models…", file=sys.stderr)
        build_clip(clip, size)
        build_multilingual(text, size)
    data = work / "data"
    if not (data / "places.csv").exists():
        landmarks = []
        for k in range(LANDMARKS):
            landmarks.append(Landmark(f"L{k}", f"Landmark {k}", "City", ("architecture",), 56.0, 60.0 + k / 100))
            folder = data / "images" / "CITY" / f"L{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for view in range(PHOTOS):
                (folder / f"{view}.jpg").write_bytes(jpeg_bytes(scene(k, view)))
        write_places(data / "places.csv", landmarks)
    return clip, text, data


def fresh_photos() -> tuple[list[bytes], list[str | None]]:
    """New views of indexed landmarks (truth: the landmark) and unrelated images (truth: None)."""
    import numpy as np
    from PIL import Image

    from tests.helpers.datagen import jpeg_bytes, scene

    photos, truth = [], []
    for k in range(LANDMARKS):
        for view in range(FRESH_VIEWS):
            photos.append(jpeg_bytes(scene(k, 100 + view)))
            truth.append(f"L{k}")
    rng = np.random.default_rng(7)
    for i in range(UNRELATED):
        if i % 3 == 0:
            image = scene(10_000 + i, 0)
        elif i % 3 == 1:
            image = Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
        else:
            image = Image.new("RGB", (320, 240), tuple(int(c) for c in rng.integers(0, 256, 3)))
        photos.append(jpeg_bytes(image))
        truth.append(None)
    return photos, truth


def compare_evidence(index) -> list[dict]:
    import numpy as np

    from core.calibration import _curve, _reliability, collect_queries, cross_validated
    from core.ranking import RankingParams

    rows = [p.xid for p in index.photos]
    queries = collect_queries(
        index.search, rows, [p.sha256 for p in index.photos], index.vectors(), index.landmarks, RankingParams()
    )
    assert queries is not None
    results = []
    for name, columns in SUBSETS.items():
        x = queries.features[:, columns]
        p = np.clip(cross_validated(x, queries.right, queries.weight), 1e-6, 1 - 1e-6)
        y, w = queries.right, queries.weight
        log_loss = float(-np.average(y * np.log(p) + (1 - y) * np.log(1 - p), weights=w))
        ece = sum(s * abs(a - b) for a, b, s in _reliability(p, y, w))
        point = next(row for row in _curve(p, y, w) if row[0] >= 0.9 - 1e-9)
        results.append(
            {
                "evidence": name,
                "log_loss": log_loss,
                "ece": ece,
                "precision_at_0.9": point[1],
                "coverage_at_0.9": point[2],
            }
        )
    return results


def fresh_answers(guide, unknown_share: float) -> dict:
    """Old and calibrated rules on photos the fit never saw, unknown ones weighted to `unknown_share`."""
    import numpy as np

    photos, truth = fresh_photos()
    results = [guide.recognize(photo) for photo in photos]
    unknown = np.array([t is None for t in truth])
    right = np.array([bool(r.landmarks) and r.landmarks[0].xid == t for r, t in zip(results, truth, strict=True)])
    weight = np.where(unknown, unknown_share / unknown.sum(), (1 - unknown_share) / (~unknown).sum())
    confidence = np.array([r.confidence or 0.0 for r in results])
    similarity = np.array([r.best_similarity for r in results])

    def rule(taken: np.ndarray) -> dict:
        return {
            "precision": float(np.average(right[taken], weights=weight[taken])) if taken.any() else None,
            "coverage_known": float(taken[~unknown].mean()),
            "matched_unrelated": float(taken[unknown].mean()),
        }

    promised = confidence[confidence >= guide.params.match_precision]
    return {
        "photos": {"known": int((~unknown).sum()), "unrelated": int(unknown.sum())},
        "fixed_0.70": rule(similarity >= OLD_THRESHOLD),
        "calibrated": rule(confidence >= guide.params.match_precision)
        | {"promised": float(promised.mean()) if len(promised) else None},
        "unrelated_best_similarity_p50": float(np.median(similarity[unknown])),
        "unrelated_confidence_max": float(confidence[unknown].max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path(".benchmark-cache/calibration"))
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from core.build import build_index
    from core.calibration import UNKNOWN_SHARE, expected_calibration_error
    from core.encoders import choose_runtime
    from core.service import Guide
    from core.settings import Settings

    clip, text, data = prepare(args.work, args.size)
    settings = Settings(
        data_dir=data,
        artifacts_dir=args.work / f"artifacts-{args.size}",
        image_model=str(clip),
        text_model=str(text),
        place_model="none",  # CLIP's calibration; the place tower has benchmarks.place_tower
    )
    runtime = choose_runtime(settings)
    image_encoder, text_encoder = runtime.image_encoder(), runtime.text_encoder()
    build_index(
        data, settings.artifacts_dir, image_encoder, text_model=text_encoder.model_name, text_encoder=text_encoder
    )
    guide = Guide.from_settings(settings)
    calibration, text_fit = guide.index.calibration, guide.index.text_calibration
    assert calibration is not None
    report = {
        "models": args.size,
        "photos": len(guide.index),
        "held_out": {
            "known_queries": calibration.known_queries,
            "unknown_queries": calibration.unknown_queries,
            "known_top1": calibration.known_accuracy,
            "ece": expected_calibration_error(calibration),
            "at_0.9": calibration.operating_point(0.9),
        },
        "evidence": compare_evidence(guide.index),
        "fresh": fresh_answers(guide, UNKNOWN_SHARE),
        "text": None
        if text_fit is None
        else {
            "queries": [text_fit.known_queries, text_fit.unknown_queries],
            "known_top1": text_fit.known_accuracy,
            "threshold_at_0.9": text_fit.threshold(0.9),
            "at_threshold": text_fit.operating_point(text_fit.threshold(0.9)),
        },
    }
    print(json.dumps(report, indent=1) if args.json else table(report))


def table(report: dict) -> str:
    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f} %"

    held = report["held_out"]
    lines = [
        f"{report['models']} random-weight models, {report['photos']} photos",
        f"held-out: {held['known_queries']} known + {held['unknown_queries']} unknown queries, "
        f"known top-1 {pct(held['known_top1'])}, ECE {held['ece']:.3f}, "
        f"P ≥ 0.9: precision {pct(held['at_0.9'][0])}, coverage {pct(held['at_0.9'][1])}",
        "",
        f"{'evidence':<30} {'log loss':>9} {'ECE':>7} {'prec@0.9':>9} {'cov@0.9':>9}",
    ]
    for row in report["evidence"]:
        lines.append(
            f"{row['evidence']:<30} {row['log_loss']:>9.3f} {row['ece']:>7.3f} "
            f"{pct(row['precision_at_0.9']):>9} {pct(row['coverage_at_0.9']):>9}"
        )
    fresh = report["fresh"]
    lines += ["", f"fresh photos ({fresh['photos']['known']} new views, {fresh['photos']['unrelated']} unrelated):"]
    for name in ("fixed_0.70", "calibrated"):
        rule = fresh[name]
        lines.append(
            f"  {name:<12} precision {pct(rule['precision'])}, new views answered {pct(rule['coverage_known'])}, "
            f"unrelated called a match {pct(rule['matched_unrelated'])}"
            + (f", promised {pct(rule['promised'])}" if name == "calibrated" else "")
        )
    lines.append(
        f"  unrelated: best similarity p50 {fresh['unrelated_best_similarity_p50']:.3f}, "
        f"highest confidence {pct(fresh['unrelated_confidence_max'])}"
    )
    if (t := report["text"]) is not None:
        lines.append(
            f"text: {t['queries'][0]} names + {t['queries'][1]} unknown, top-1 {pct(t['known_top1'])}, "
            f"threshold at 0.9 {t['threshold_at_0.9']:.3f} → precision {pct(t['at_threshold'][0])}, "
            f"coverage {pct(t['at_threshold'][1])}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
