"""The index at scale: flat against IVF at 100 k and 1 M synthetic CLIP-like vectors (issue #25).

    .venv/bin/python -m benchmarks.scale --vectors 100000 [--vectors 1000000] [--serving] [--json]

Vectors: 512-d unit vectors gathered around one direction per landmark (PHOTOS_PER_LANDMARK photos
each, like a harvested country); queries are new photos of the same landmarks. For each index kind
— exact flat, and IVF as `prep build` makes it (fast-scan PQ, exact re-ranking from memory-mapped
float16 vectors, nprobe chosen for recall@20 ≥ 0.95) plus IVF at fixed nprobes — it reports the
build time, recall@20 against exact search, p50/p95 query latency (one query at a time, as the bot
asks) and the memory the loaded index adds to a fresh process (RSS, with the mapped pages its
queries touched). `--serving` also builds full artifacts (photos.csv, landmarks) and measures what
the bot pays at start-up and per photo beyond the models: index load time, RSS, and the search +
vote + matched-photo step of a photo answer. Each measurement runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "2")

DIM = 512
PHOTOS_PER_LANDMARK = 30
# A photo's noise relative to its landmark's direction: two photos of one landmark then have cosine
# 1 / (1 + SPREAD²) = 0.8, as CLIP gives photos of one building.
SPREAD = 0.5
QUERIES = 300
FIXED_NPROBES = (4, 16, 64)


def vectors(count: int, seed: int, landmarks: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` photos of `landmarks` landmarks (and which landmark each shows)."""
    centres = np.random.default_rng(0).normal(size=(landmarks, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    which = rng.integers(0, landmarks, count)
    out = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, count, 100_000):  # in chunks: 1 M × 512 float64 noise would be 4 GB
        part = slice(start, min(count, start + 100_000))
        noise = rng.normal(size=(part.stop - part.start, DIM)).astype(np.float32) * SPREAD
        block = centres[which[part]] + noise
        out[part] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out, which


def rss_mb(kind: str = "RssAnon") -> float:
    """Resident memory of this process (MB): RssAnon is the heap (what an OOM kill counts against the
    limit first), RssFile the mapped file pages touched (page cache: reclaimed under pressure)."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(kind + ":")) / 1024


def child_search(folder: str, kind: str, nprobe: int) -> dict:
    """In a fresh process: load one index, time QUERIES single queries, measure recall and memory."""
    import faiss

    from core.vector_index import IndexInfo, VectorIndex

    faiss.omp_set_num_threads(2)
    info = IndexInfo(**json.loads((Path(folder) / f"{kind}.json").read_text()))
    queries, truth = np.load(Path(folder) / "queries.npy"), np.load(Path(folder) / "truth.npy")
    before, before_file = rss_mb(), rss_mb("RssFile")
    loaded = time.perf_counter()
    index = VectorIndex.load(Path(folder) / kind, info)
    if nprobe:
        index.probe(nprobe)
    load_s = time.perf_counter() - loaded
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        _, rows = index.search(query[None, :], 20)
        times.append((time.perf_counter() - started) * 1000)
        found.append(rows[0])
    recall = float(np.mean([len(set(t) & set(f)) / 20 for t, f in zip(truth, found, strict=True)]))
    return {
        "recall_at_20": round(recall, 4),
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "memory_mb": round(rss_mb() - before, 1),
        "mapped_mb": round(rss_mb("RssFile") - before_file, 1),
        "load_s": round(load_s, 2),
    }


def measure(count: int, work: Path) -> list[dict]:
    import faiss

    from core.vector_index import build_vector_index

    faiss.omp_set_num_threads(2)
    landmarks = max(1, count // PHOTOS_PER_LANDMARK)
    matrix, which = vectors(count, 1, landmarks)
    queries, _ = vectors(QUERIES, 2, landmarks)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(matrix)
    _, truth = flat.search(queries, 20)
    del flat
    np.save(work / "queries.npy", queries)
    np.save(work / "truth.npy", truth)
    results = []
    for kind in ("flat", "ivf"):
        started = time.perf_counter()
        built = build_vector_index(matrix, kind)
        build_s = time.perf_counter() - started
        calibration_s = _calibration_seconds(built, matrix, which)
        (work / kind).mkdir(exist_ok=True)
        built.write(work / kind)
        (work / f"{kind}.json").write_text(json.dumps(built.info.to_dict()))
        disk = sum(f.stat().st_size for f in (work / kind).iterdir() if f.name in ("index.faiss", "vectors.f16.npy"))
        variants = [(kind, 0)] + ([(f"ivf-nprobe{n}", n) for n in FIXED_NPROBES] if kind == "ivf" else [])
        for name, nprobe in variants:
            figures = _in_child("search", str(work), kind, str(nprobe))
            label = name if name != "ivf" else f"ivf (IVF{built.info.nlist}, nprobe {built.info.nprobe})"
            results.append(
                {
                    "index": label,
                    "vectors": count,
                    "build_s": round(build_s, 1),
                    "calibration_s": round(calibration_s, 1),
                    "disk_mb": round(disk / 2**20, 1),
                }
                | figures
            )
        del built
    return results


def _calibration_seconds(built, matrix: np.ndarray, which: np.ndarray) -> float:
    """How long `prep build`'s calibration of photo answers takes on this index (core.calibration)."""
    from core.calibration import calibrate
    from core.catalog import Landmark
    from core.ranking import RankingParams

    row_xids = [f"L{w}" for w in which]
    catalog = {xid: Landmark(xid, xid, "c") for xid in set(row_xids)}
    started = time.perf_counter()
    calibrate(built.search, row_xids, [str(i) for i in range(len(row_xids))], matrix, catalog, RankingParams())
    return time.perf_counter() - started


def _in_child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def serving(count: int, work: Path, models: Path | None = None) -> dict:
    """Full artifacts of `count` synthetic photos, then what loading and answering costs the bot; with
    `models` (a `benchmarks.serving` work folder: full-size models and their int8 export) the whole
    Guide as the bot starts it, and a 1280×960 photo's answer end to end."""
    from core.artifacts import SCHEMA_VERSION, BuildContents, Manifest, publish  # the format's one writer
    from core.catalog import Landmark
    from core.photo_table import PhotoRecord
    from core.vector_index import build_vector_index

    landmarks = max(1, count // PHOTOS_PER_LANDMARK)
    matrix, which = vectors(count, 1, landmarks)
    catalog = [
        Landmark(
            f"Q{k}", f"Landmark {k}", f"City {k // 300}", ("architecture",), 55 + k % 1000 / 100, 37 + k // 1000 / 100
        )
        for k in range(landmarks)
    ]
    records = [PhotoRecord(f"images/C{w // 300}/Q{w}/{i}.jpg", f"Q{w}", f"{i:064x}") for i, w in enumerate(which)]
    index = build_vector_index(matrix, "auto")
    names = ("synthetic", "synthetic", "", "")
    if models is not None:  # the manifest names the models that serve, as a real build would
        from core.encoders import choose_runtime, model_id

        settings = _model_settings(models, work)
        encoder = choose_runtime(settings).image_encoder()
        names = (encoder.model_name, model_id(settings.text_model), encoder.fingerprint, encoder.cache_key)
    manifest = Manifest(
        SCHEMA_VERSION,
        names[0],
        names[1],
        DIM,
        count,
        landmarks,
        "x" * 64,
        "now",
        str(work),
        names[2],
        names[3],
        index.info.to_dict(),
    )
    publish(work / "artifacts", BuildContents(manifest, records, index, catalog))
    queries, _ = vectors(50, 2, landmarks)
    np.save(work / "serving-queries.npy", queries)
    return {"vectors": count, "index": index.info.kind} | _in_child("serve", str(work), str(models or ""), "0")


def _model_settings(models: Path, work: Path):
    from core.settings import Settings

    return Settings(
        data_dir=work / "data",
        artifacts_dir=work / "artifacts",
        image_model=str(models / "models" / "clip-ViT-B-32"),
        place_model="none",  # CLIP's scale; the place tower's cost is benchmarks.place_tower's
        text_model=str(models / "models" / "clip-ViT-B-32-multilingual-v1"),
        encoder_backend="onnx",
        model_dir=models / "onnx-int8",
    )


def child_serve(folder: str, models: str = "") -> dict:
    if models:
        return child_serve_models(Path(folder), Path(models))
    from core.index import PhotoIndex
    from core.ranking import RankingParams
    from core.recognition import rank

    before, before_file = rss_mb(), rss_mb("RssFile")
    started = time.perf_counter()
    index = PhotoIndex.load(Path(folder) / "artifacts")
    index.locator  # noqa: B018  # built at start by the bot's first "nearby"
    load_s = time.perf_counter() - started
    queries = np.load(Path(folder) / "serving-queries.npy")
    times = []
    for query in queries:
        started = time.perf_counter()
        result = rank(index, query, RankingParams(), None, 10.0)
        index.best_row(query, result.landmarks[0].xid)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "load_s": round(load_s, 2),
        "rss_mb": round(rss_mb() - before, 1),
        "mapped_mb": round(rss_mb("RssFile") - before_file, 1),
        "answer_p50_ms": round(float(np.percentile(times, 50)), 2),
        "answer_p95_ms": round(float(np.percentile(times, 95)), 2),
    }


def child_serve_models(work: Path, models: Path) -> dict:
    """The Guide as the bot builds it (int8 ONNX models + the index), and photo answers end to end."""
    from core import Guide
    from core.encoders import limit_threads
    from tests.helpers.datagen import jpeg_bytes, scene

    limit_threads(1)  # as the bot's workers: 2 × 1 thread on 2 cores
    started = time.perf_counter()
    guide = Guide.from_settings(_model_settings(models, work))
    guide.index.locator  # noqa: B018
    start_s = time.perf_counter() - started
    photo = jpeg_bytes(scene(3, 77, (1280, 960)), 90)
    guide.recognize(photo)  # warm-up
    times = []
    for _ in range(30):
        begun = time.perf_counter()
        guide.recognize(photo)
        times.append((time.perf_counter() - begun) * 1000)
    return {
        "load_s": round(start_s, 2),
        "rss_mb": round(rss_mb(), 1),
        "mapped_mb": round(rss_mb("RssFile"), 1),
        "peak_rss_mb": round(rss_mb("VmHWM"), 1),
        "answer_p50_ms": round(float(np.percentile(times, 50)), 1),
        "answer_p95_ms": round(float(np.percentile(times, 95)), 1),
        "with_models": True,
    }


def table(results: list[dict], served: list[dict]) -> str:
    head = f"{'index':<36} {'vectors':>9} {'build s':>8} {'calib s':>8} {'recall@20':>9} {'p50 ms':>8} {'p95 ms':>8}"
    lines = [head + f" {'heap MB':>8} {'mapped':>8} {'disk MB':>8}"]
    for r in results:
        lines.append(
            f"{r['index']:<36} {r['vectors']:>9} {r['build_s']:>8} {r['calibration_s']:>8} {r['recall_at_20']:>9} "
            f"{r['p50_ms']:>8} "
            f"{r['p95_ms']:>8} {r['memory_mb']:>8} {r['mapped_mb']:>8} {r['disk_mb']:>8}"
        )
    for s in served:
        if s.get("with_models"):
            lines.append(
                f"bot at {s['vectors']} ({s['index']}, int8 models): start {s['load_s']} s, heap {s['rss_mb']} MB "
                f"+ {s['mapped_mb']} MB file pages (peak VmHWM {s['peak_rss_mb']} MB), "
                f"photo p50 {s['answer_p50_ms']} ms / p95 {s['answer_p95_ms']} ms"
            )
            continue
        lines.append(
            f"serving {s['vectors']} ({s['index']}): load {s['load_s']} s, +{s['rss_mb']} MB heap "
            f"+{s['mapped_mb']} MB mapped, "
            f"search+vote p50 {s['answer_p50_ms']} ms / p95 {s['answer_p95_ms']} ms"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, action="append", help="index sizes (repeatable; default 100000)")
    parser.add_argument("--serving", action="store_true", help="also measure the bot's index load and answer")
    parser.add_argument(
        "--models",
        type=Path,
        help="with --serving: a benchmarks.serving work folder (full-size models, int8 export): the whole bot",
    )
    parser.add_argument("--only-serving", action="store_true", help="skip the index comparison")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, folder, kind, nprobe = args.child
        result = child_search(folder, kind, int(nprobe)) if what == "search" else child_serve(folder, kind)
        print(json.dumps(result))
        return
    results, served = [], []
    for count in args.vectors or [100_000]:
        if not args.only_serving:
            with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
                results += measure(count, Path(folder))
        if args.serving or args.only_serving:
            with tempfile.TemporaryDirectory() as folder:
                served.append(serving(count, Path(folder), args.models))
    print(json.dumps({"results": results, "serving": served}) if args.json else table(results, served))


if __name__ == "__main__":
    main()
