"""Ray Data against the plain local loop for the embedding step of `prep build` (issue #25).

    .venv/bin/python -m benchmarks.ray_engine [--photos 400] [--size full|tiny] [--json]

The same synthetic photos (640×480 JPEGs) embedded twice into fresh artifacts: by the local loop
(batches of 8, all cores for one batch) and by `--engine ray` in local mode (one encoder actor per
core, one thread each). Reports photos per second of each, Ray's overhead (the cluster's start-up
counted in and, separately, left out) and the smallest cosine between the two engines' vectors.
Random-weight models of the real architecture (sentence-transformers on torch: the runtime a GPU
box or a cluster would use). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def prepare(work: Path, photos: int, size: str) -> tuple[Path, Path]:
    from core.catalog import Landmark, write_places
    from prep.random_models import build_clip, build_multilingual
    from tests.helpers.datagen import jpeg_bytes, scene

    models = work / f"models-{size}"
    if not (models / "clip" / "modules.json").exists():
        build_clip(models / "clip", size)
        build_multilingual(models / "text", size)
    data = work / "data"
    if not (data / "places.csv").exists():
        landmarks = [Landmark(f"L{k}", f"Landmark {k}", "City", ("architecture",)) for k in range(photos // 10)]
        for i in range(photos):
            folder = data / "images" / "CITY" / f"L{i % len(landmarks)}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.jpg").write_bytes(jpeg_bytes(scene(i % len(landmarks), i, (640, 480))))
        write_places(data / "places.csv", landmarks)
    return models, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path(".benchmark-cache/ray"))
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import shutil

    import ray

    from core import PhotoIndex, Settings, build_index, choose_runtime
    from prep.ray_engine import ray_embedder

    models, data = prepare(args.work, args.photos, args.size)
    settings = Settings(
        data_dir=data,
        image_model=str(models / "clip"),
        text_model=str(models / "text"),
        encoder_backend="torch",
        place_model="none",  # CLIP's engine; both towers on Ray are tested in tests/prep/test_ray_engine.py
    )
    encoder = choose_runtime(settings).image_encoder()
    timings = {}
    for engine in ("local", "ray"):
        artifacts = args.work / f"artifacts-{engine}"
        shutil.rmtree(artifacts, ignore_errors=True)
        started = time.perf_counter()
        if engine == "ray":
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        ready = time.perf_counter()
        embed = ray_embedder(settings) if engine == "ray" else None
        report = build_index(data, artifacts, encoder, text_model="text", **({"embed": embed} if embed else {}))
        done = time.perf_counter()
        if engine == "ray":
            ray.shutdown()
        timings[engine] = {"with_start": done - started, "without_start": done - ready, "embedded": report.embedded}
    local, by_ray = (PhotoIndex.load(args.work / f"artifacts-{e}") for e in ("local", "ray"))
    vectors = {p.sha256: by_ray.vector(r) for r, p in enumerate(by_ray.photos)}
    cosine = min(float(np.dot(vectors[p.sha256], local.vector(r))) for r, p in enumerate(local.photos))
    rate = {e: t["embedded"] / t["without_start"] for e, t in timings.items()}
    result = {
        "photos": args.photos,
        "models": args.size,
        "local_photos_per_s": round(rate["local"], 1),
        "ray_photos_per_s": round(rate["ray"], 1),
        "ray_overhead": round(timings["ray"]["without_start"] / timings["local"]["without_start"] - 1, 3),
        "ray_overhead_with_start": round(timings["ray"]["with_start"] / timings["local"]["with_start"] - 1, 3),
        "ray_start_s": round(timings["ray"]["with_start"] - timings["ray"]["without_start"], 1),
        "min_cosine": round(cosine, 6),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.photos} photos, {args.size} models: local {result['local_photos_per_s']} photos/s, "
            f"Ray {result['ray_photos_per_s']} photos/s (overhead {100 * result['ray_overhead']:.1f} %, "
            f"{100 * result['ray_overhead_with_start']:.1f} % with its {result['ray_start_s']} s start); "
            f"vectors: min cosine {result['min_cosine']}"
        )


if __name__ == "__main__":
    main()
