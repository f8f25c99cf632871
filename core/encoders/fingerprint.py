"""Models identified by content, not by name: two different weights saved under the same folder name
(`prep random-models` writes `clip-ViT-B-32`, the hub model's name) must never share cached vectors or
pass for each other's index.

The fingerprint hashes every file of the model's folder by relative path, size and its first and
last FINGERPRINT_BYTES: a different checkpoint differs there (safetensors headers, tensor data),
and it costs milliseconds, not a read of 600 MB.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Bytes read from each end of each file.
FINGERPRINT_BYTES = 65_536
# Digits of the fingerprint used in cache keys and shown in messages.
SHORT = 12
IGNORED = frozenset({"README.md", ".gitattributes"})


def folder_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in IGNORED and ".git" not in p.parts)
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(folder).as_posix()}\t{size}\n".encode())
        with file.open("rb") as f:
            digest.update(f.read(FINGERPRINT_BYTES))
            if size > FINGERPRINT_BYTES:
                f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
                digest.update(f.read(FINGERPRINT_BYTES))
    return digest.hexdigest()


def model_folder(name_or_path: str) -> Path | None:
    """The folder a model loads from: a local path, or its snapshot in the Hugging Face cache."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    repo = name_or_path if "/" in name_or_path else f"sentence-transformers/{name_or_path}"
    for hub in _hub_caches():
        snapshots = hub / f"models--{repo.replace('/', '--')}" / "snapshots"
        ref = hub / f"models--{repo.replace('/', '--')}" / "refs" / "main"
        if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
            return snapshots / ref.read_text().strip()
        if snapshots.is_dir() and (found := sorted(snapshots.iterdir())):
            return found[-1]
    return None


def hub_cache() -> Path:
    """Where a model downloaded now goes: the first Hugging Face cache `model_folder` looks in."""
    return _hub_caches()[0]


def _hub_caches() -> list[Path]:
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    caches = [Path(os.environ["HF_HUB_CACHE"]).expanduser()] if os.environ.get("HF_HUB_CACHE") else []
    return [*caches, home / "hub"]


def model_fingerprint(name_or_path: str) -> str:
    """The content fingerprint of a model, or "" when its files cannot be found (not downloaded yet)."""
    folder = model_folder(name_or_path)
    return folder_fingerprint(folder) if folder is not None else ""
