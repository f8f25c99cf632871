"""`prep build --engine ray`: the missing photos embedded by Ray Data, into the build's embedding cache.

A streaming pipeline over the photos the cache lacks — with GPUs, read and decode as CPU tasks
feeding one encoder actor per GPU; on CPUs, one actor per core that reads, decodes and encodes
(each actor holds the image model once); the vectors go into the same content-keyed
cache (`core.embedding_cache`) under the serving runtime's key, so the build that follows, a rerun
after an interruption, or a plain local build find them there. Ray runs in-process on this machine
(`ray.init()`: its cores) or joins a cluster (`--address ray://…` or `auto`). Only prep imports this
module, and only when asked: Ray is the `[scale]` extra, never part of serving.

Batches per runtime: the int8 ONNX export is quantised dynamically per batch, so it embeds one
photo at a time (its vectors then equal the local engine's); fp32 runtimes take RAY_BATCH photos.
"""

from __future__ import annotations

import csv
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core import (
    BuildCancelled,
    Embedded,
    EmbeddingCache,
    ImageDecodeError,
    PhotoToEmbed,
    ProgressFn,
    Settings,
    choose_runtime,
    decode_image,
    no_progress,
)
from core.encoders import GPU_IMAGE_BATCH, ImageEncoder

RAY_BATCH = 16  # photos per encode call for fp32 runtimes (torch, ONNX fp32)
# How many vectors are written to the cache at a time (each write is one SQLite transaction).
CACHE_CHUNK = 256


def ray_embedder(settings: Settings, address: str | None = None):
    """An `embed` for `core.build_index` that computes the missing vectors on Ray."""

    def embed(
        encoder: ImageEncoder,
        cache: EmbeddingCache,
        photos: Sequence[PhotoToEmbed],
        *,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
        **_: object,
    ) -> Embedded:
        result = Embedded(cache.get(encoder.cache_key, [p.sha256 for p in photos], dim=encoder.dim))
        result.cached = set(result.vectors)
        missing = list({p.sha256: p for p in photos if p.sha256 not in result.vectors}.values())
        progress("embed", 0, len(missing))
        if missing:
            fresh, failed = _run(settings, address, missing, encoder, cache, progress, cancel)
            result.vectors.update(fresh)
            result.embedded = len(fresh)
            labels = {p.sha256: p.label for p in missing}
            result.skipped += [(labels[sha], why) for sha, why in failed.items()]
        return result

    return embed


def _run(
    settings: Settings,
    address: str | None,
    missing: list[PhotoToEmbed],
    encoder: ImageEncoder,
    cache: EmbeddingCache,
    progress: ProgressFn,
    cancel: threading.Event | None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    manifest = _write_manifest(cache.path.parent, missing)
    try:
        device = getattr(encoder, "device", "cpu")  # actors embed where the driver's encoder does: same key
        batch = GPU_IMAGE_BATCH if device == "cuda" else 1 if "int8" in encoder.cache_key else RAY_BATCH
        tower = getattr(encoder, "tower", "image")  # CLIP's image tower, or the place tower (PLACE_MODEL)
        dataset = _pipeline(ray, settings, manifest, batch, device, tower)
        fresh: dict[str, np.ndarray] = {}
        failed: dict[str, str] = {}
        pending: dict[str, np.ndarray] = {}
        for row in dataset.iter_rows():
            if cancel is not None and cancel.is_set():
                raise BuildCancelled(f"build cancelled after {len(fresh)} of {len(missing)} new photos")
            if row["error"]:
                failed[row["sha256"]] = row["error"]
            else:
                pending[row["sha256"]] = np.asarray(row["vector"], dtype=np.float32)
            if len(pending) >= CACHE_CHUNK:
                _store(cache, encoder, pending, fresh)
            progress("embed", len(fresh) + len(pending) + len(failed), len(missing))
        _store(cache, encoder, pending, fresh)
        return fresh, failed
    finally:
        manifest.unlink(missing_ok=True)
        if started_here:
            ray.shutdown()


def _write_manifest(folder: Path, missing: list[PhotoToEmbed]) -> Path:
    """The photos to embed as a CSV file (sha256, path) that Ray reads in blocks: a list of 10 M row dicts
    handed to `from_items` would sit in the driver's memory and then in the object store. On a cluster
    the file, like the dataset and MODEL_DIR, must be at the same path on every node (the artifacts
    folder on a shared file system)."""
    manifest = folder / f".ray-manifest-{uuid.uuid4().hex[:12]}.csv"
    with manifest.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["sha256", "path"])
        writer.writerows((p.sha256, str(p.path)) for p in missing)
    return manifest


def _pipeline(ray, settings: Settings, manifest: Path, batch: int, device: str = "cpu", tower: str = "image"):
    """With GPUs: decode on the CPUs (tasks) and encode on the GPUs (one actor each), streaming between
    them. CPUs only: each actor reads, decodes and encodes its photos itself — measured here, a
    separate decode stage cost ~45 % on 2 cores (decoded pixels through the object store, and decode
    tasks competing with the encoders for the same cores)."""
    resources = ray.available_resources()
    import pyarrow as pa
    from pyarrow import csv as arrow_csv

    text = arrow_csv.ConvertOptions(column_types={"sha256": pa.string(), "path": pa.string()})
    # Reading the list is light: it takes no core of its own, which the encoder actors hold all of.
    rows = ray.data.read_csv(str(manifest), shuffle=None, convert_options=text, num_cpus=0)
    gpus = int(resources.get("GPU", 0))
    if gpus and device == "cuda":
        return rows.map(_decode).map_batches(
            _Encoder,
            fn_constructor_args=(settings, False, "cuda", tower),
            batch_size=batch,
            concurrency=gpus,
            num_gpus=1,
        )
    workers = max(1, int(resources.get("CPU", 1)))
    return rows.map_batches(
        _Encoder, fn_constructor_args=(settings, True, "cpu", tower), batch_size=batch, concurrency=workers, num_cpus=1
    )


def _store(cache: EmbeddingCache, encoder: ImageEncoder, pending: dict, fresh: dict) -> None:
    """Into the cache as they come: an interrupted run keeps what it computed."""
    if pending:
        cache.put(encoder.cache_key, pending)
        fresh.update(pending)
        pending.clear()


def _decode(row: dict) -> dict:
    """Read and decode one photo (a Ray task), small enough to travel to the encoder."""
    try:
        image = decode_image(Path(row["path"]).read_bytes(), draft=True)  # exactly as the local engine
        return row | {"pixels": np.asarray(image, dtype=np.uint8), "error": ""}
    except (ImageDecodeError, OSError) as exc:
        return row | {"pixels": np.zeros((1, 1, 3), dtype=np.uint8), "error": f"unreadable: {exc}"}


class _Encoder:
    """One per worker: the serving runtime's image model, loaded once."""

    def __init__(self, settings: Settings, decodes: bool, device: str = "cpu", tower: str = "image") -> None:
        runtime = choose_runtime(settings, device)  # "cuda": the GPU Ray gave this actor
        encoder = runtime.place_encoder() if tower == "place" else runtime.image_encoder()
        if encoder is None:
            raise RuntimeError("a place-tower actor without PLACE_MODEL")
        self.encoder = encoder
        self.decodes = decodes  # CPU workers read and decode their photos themselves

    def __call__(self, batch: dict) -> dict:
        from PIL import Image

        if self.decodes:
            decoded = [_decode({"path": path}) for path in batch["path"]]
            batch = batch | {"pixels": [d["pixels"] for d in decoded], "error": [d["error"] for d in decoded]}
        good = [i for i, error in enumerate(batch["error"]) if not error]
        vectors = np.zeros((len(batch["sha256"]), self.encoder.dim), dtype=np.float32)
        if good:
            images = [Image.fromarray(batch["pixels"][i]) for i in good]
            vectors[good] = self.encoder.encode_images(images)
        return {"sha256": batch["sha256"], "error": batch["error"], "vector": list(vectors)}
