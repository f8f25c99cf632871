"""Generated test data: landmark scenes with a look of their own, and NTO-format CSVs around them."""

from __future__ import annotations

import base64
import csv
import io
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FIXTURES = Path(__file__).parents[1] / "fixtures"
PLACES_FIXTURES = FIXTURES / "places"


def scene(landmark: int, view: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A fresh view of landmark number `landmark`: its own palette and shapes, jittered per view."""
    style = np.random.default_rng(10_000 + landmark)
    jitter = np.random.default_rng(landmark * 1_000 + view)
    width, height = size
    sky, ground = style.integers(0, 256, 3), style.integers(0, 256, 3)
    horizon = style.uniform(0.45, 0.75)
    image = Image.new("RGB", size, tuple(int(c) for c in sky))
    draw = ImageDraw.Draw(image)
    shift = jitter.uniform(-0.04, 0.04, 2)
    zoom = jitter.uniform(0.92, 1.08)
    draw.rectangle([0, int(height * (horizon + shift[1])), width, height], fill=tuple(int(c) for c in ground))
    for _ in range(int(style.integers(3, 7))):
        colour = tuple(int(c) for c in style.integers(0, 256, 3))
        cx, cy = style.uniform(0.15, 0.85), style.uniform(0.2, 0.8)
        w, h = style.uniform(0.08, 0.3), style.uniform(0.1, 0.45)
        box = [
            width * (0.5 + (cx - 0.5 - w / 2) * zoom + shift[0]),
            height * (0.5 + (cy - 0.5 - h / 2) * zoom + shift[1]),
            width * (0.5 + (cx - 0.5 + w / 2) * zoom + shift[0]),
            height * (0.5 + (cy - 0.5 + h / 2) * zoom + shift[1]),
        ]
        shape = int(style.integers(0, 3))
        if shape == 0:
            draw.rectangle(box, fill=colour)
        elif shape == 1:
            draw.ellipse(box, fill=colour)
        else:
            draw.polygon([(box[0], box[3]), ((box[0] + box[2]) / 2, box[1]), (box[2], box[3])], fill=colour)
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float32)
    pixels = pixels * jitter.uniform(0.9, 1.1) + jitter.normal(0, 5, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg_bytes(image: Image.Image, quality: int = 88) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def read_fixture_places(city: str) -> tuple[list[str], list[dict[str, str]]]:
    with (PLACES_FIXTURES / f"{city}_places.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def unique_names(rows: Sequence[dict[str, str]], count: int) -> list[str]:
    names: list[str] = []
    for row in rows:
        if row["Name"] not in names:
            names.append(row["Name"])
        if len(names) == count:
            break
    return names


def encode_field(data: bytes, wrapping: str = "plain") -> str:
    """Base64 as the circulating copies write it."""
    text = base64.b64encode(data).decode()
    if wrapping == "bytes_literal":
        return f"b'{text}'"
    if wrapping == "data_url":
        return "data:image/jpeg;base64," + text
    if wrapping == "wrapped":
        return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    if wrapping == "unpadded":
        return text.rstrip("=")
    return text


def write_images_csv(path: Path, rows: Sequence[tuple[str, str]], columns: tuple[str, str] = ("name", "img")) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)


def write_places_csv(path: Path, fieldnames: list[str], rows: Sequence[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def make_raw_dataset(
    raw_dir: Path,
    cities: dict[str, int],
    photos_per_landmark: int,
    *,
    first_landmark: int = 0,
    wrapping: str = "plain",
    view: Callable[[int, int], Image.Image] = scene,
) -> dict[str, list[str]]:
    """NTO-format files for `cities` ({code: number of landmarks}); returns the landmark names per city.

    Landmark k of the whole dataset (counted over cities in order) is drawn with view(k, v).
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    names_by_city: dict[str, list[str]] = {}
    landmark = first_landmark
    for city, count in cities.items():
        fieldnames, rows = read_fixture_places(city)
        names = unique_names(rows, count)
        write_places_csv(raw_dir / f"{city}_places.csv", fieldnames, [r for r in rows if r["Name"] in names])
        image_rows = []
        for name in names:
            for number in range(photos_per_landmark):
                image_rows.append((name, encode_field(jpeg_bytes(view(landmark, number)), wrapping)))
            landmark += 1
        write_images_csv(raw_dir / f"{city}_images.csv", image_rows)
        names_by_city[city] = names
    return names_by_city


def huge_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A black greyscale PNG of width × height pixels written row by row through zlib, never held decoded:
    40,000 × 40,000 is a 1.5 MB file that decodes to 1.6 GB (issue #31, row 1)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(9)
    rows = bytes(width + 1) * 1000  # each row: filter byte 0, then the pixels
    parts = [compressor.compress(rows) for _ in range(height // 1000)]
    parts += [compressor.compress(bytes(width + 1) * (height % 1000)), compressor.flush()]
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
