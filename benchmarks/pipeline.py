"""The admin's pipeline at the published dataset's size, per runtime:

    .venv/bin/python -m benchmarks.pipeline [--photos 12500] [--runtimes torch,onnx-int8] [--work DIR] [--json]

Generates N photos (320×240 JPEG, like the published ones) over the real places of the four cities,
as NTO CSVs with base64 photos, then times `prep ingest`, `prep clean` (the default checks),
`prep build`, and an incremental rebuild after adding 100 photos (what `/reindex` does, with the
model already loaded), with the full-size random-weight models of benchmarks/serving.py (built and
exported once into --work). Each runtime starts from the same raw files with a fresh dataset and
cache. Targets on 2 vCPUs (issue #13): ingest + clean + build of 12,500 photos ≤ 10 min on ONNX int8;
+100 photos reindexed ≤ 20 s. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET_PIPELINE_S = 600.0
TARGET_REINDEX_S = 20.0
ADDED = 100


def make_raw(raw: Path, photos: int) -> int:
    """NTO-format CSVs with `photos` photos over the fixture places of the four cities; returns landmarks."""
    from tests.helpers.datagen import (
        encode_field,
        jpeg_bytes,
        read_fixture_places,
        scene,
        unique_names,
        write_images_csv,
        write_places_csv,
    )

    raw.mkdir(parents=True, exist_ok=True)
    cities = ("EKB", "NN", "Vladimir", "Yaroslavl")
    named = {city: unique_names(read_fixture_places(city)[1], 80) for city in cities}
    landmarks = [(city, name) for city in cities for name in named[city]]
    per_city: dict[str, list] = {city: [] for city in cities}
    for i in range(photos):
        k = i % len(landmarks)
        city, name = landmarks[k]
        per_city[city].append((name, encode_field(jpeg_bytes(scene(k, 1000 + i // len(landmarks))))))
    for city in cities:
        fields, rows = read_fixture_places(city)
        write_places_csv(raw / f"{city}_places.csv", fields, [r for r in rows if r["Name"] in named[city]])
        write_images_csv(raw / f"{city}_images.csv", per_city[city])
    return len(landmarks)


def _prep(args: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "prep", *args, "--json"], env=env, check=True, capture_output=True)
    return time.monotonic() - started


def run_runtime(work: Path, raw: Path, runtime: str) -> dict:
    from benchmarks.serving import _settings

    settings = _settings(work, runtime, 1)
    base = work / f"pipeline-{runtime}"
    shutil.rmtree(base, ignore_errors=True)
    env = dict(
        os.environ,
        DATA_DIR=str(base / "data"),
        ARTIFACTS_DIR=str(base / "artifacts"),
        IMAGE_MODEL=settings.image_model,
        TEXT_MODEL=settings.text_model,
        ENCODER_BACKEND=settings.encoder_backend,
        MODEL_DIR=str(settings.model_dir or base / "none"),
        PYTHONPATH=str(Path(__file__).parents[1]),
    )
    times = {
        "ingest": _prep(["ingest", str(raw)], env),
        "clean": _prep(["clean", "--quarantine", str(base / "quarantine")], env),
        "build": _prep(["build"], env),
    }
    times["reindex_100"] = _reindex(base, settings)
    times["pipeline"] = times["ingest"] + times["clean"] + times["build"]
    return {"runtime": runtime, **{k: round(v, 1) for k, v in times.items()}}


def _reindex(base: Path, settings) -> float:
    """+100 photos, rebuilt with the encoder already loaded, as the bot's /reindex does."""
    from dataclasses import replace

    from core import Dataset, build_index, choose_runtime, model_id
    from tests.helpers.datagen import jpeg_bytes, scene

    local = replace(settings, data_dir=base / "data", artifacts_dir=base / "artifacts")
    encoder = choose_runtime(local).image_encoder()
    first = Dataset(local.data_dir).photos()[0]
    folder = local.data_dir / Path(first.path).parent
    for i in range(ADDED):
        (folder / f"added_{i}.jpg").write_bytes(jpeg_bytes(scene(7, 5000 + i)))
    started = time.monotonic()
    build_index(local.data_dir, local.artifacts_dir, encoder, text_model=model_id(local.text_model))
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=12_500)
    parser.add_argument("--runtimes", default="torch,onnx-int8")
    parser.add_argument("--work", type=Path, default=Path(".benchmark-cache"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from benchmarks.serving import prepare

    prepare(args.work)
    raw = args.work / f"raw-{args.photos}"
    if not (raw / "EKB_images.csv").exists():
        print(f"generating {args.photos} photos…", file=sys.stderr)
        make_raw(raw, args.photos)
    rows = [run_runtime(args.work, raw, runtime) for runtime in args.runtimes.split(",")]
    scale = 12_500 / args.photos
    for row in rows:
        row["pipeline_at_12500_s"] = round(row["pipeline"] * scale, 1)
        row["pipeline_target_met"] = row["pipeline_at_12500_s"] <= TARGET_PIPELINE_S
        row["reindex_target_met"] = row["reindex_100"] <= TARGET_REINDEX_S
    if args.json:
        print(json.dumps({"photos": args.photos, "runtimes": rows}))
        return 0
    print(f"{args.photos} photos, seconds (pipeline scaled linearly to 12,500 in the last column):")
    print(f"{'runtime':<10} {'ingest':>7} {'clean':>7} {'build':>7} {'+100':>7} {'pipeline':>9} {'@12,500':>9}")
    for r in rows:
        print(
            f"{r['runtime']:<10} {r['ingest']:>7} {r['clean']:>7} {r['build']:>7} {r['reindex_100']:>7} "
            f"{r['pipeline']:>9} {r['pipeline_at_12500_s']:>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
