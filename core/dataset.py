"""The folder dataset: `DATA_DIR/places.csv` and `DATA_DIR/images/{CITY}/{XID}/{file}`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IMAGES_DIR = "images"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# City codes and XIDs become folder names: only these characters, so no value can climb out of DATA_DIR.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_safe_name(value: str) -> bool:
    return bool(SAFE_NAME.match(value)) and ".." not in value


@dataclass(frozen=True)
class DatasetPhoto:
    path: str  # relative to DATA_DIR, with forward slashes
    city_code: str
    xid: str


def list_photos(data_dir: Path) -> list[DatasetPhoto]:
    """Every photo of the dataset, sorted by path; hidden files and unknown suffixes ignored."""
    root = data_dir / IMAGES_DIR
    photos = []
    if not root.is_dir():
        return photos
    for file in root.glob("*/*/*"):
        if file.name.startswith(".") or file.suffix.lower() not in IMAGE_SUFFIXES or not file.is_file():
            continue
        city_code, xid = file.parent.parent.name, file.parent.name
        photos.append(DatasetPhoto(file.relative_to(data_dir).as_posix(), city_code, xid))
    photos.sort(key=lambda p: p.path)
    return photos


# Photos deleted by `prep apply` are listed here, so that a later `prep ingest` does not bring them back.
REMOVED_FILE = "removed.csv"
