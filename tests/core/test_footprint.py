"""The memory a serving process will take, known before its models load, and the container's limit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.encoders import ExportedFile, PlaceManifest, container_limit_mb, expected_footprint
from core.encoders.footprint import LOAD_FACTOR, PROCESS_BASE_MB
from core.encoders.loading import Runtime
from core.settings import Settings


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.max": "734003200\n"}, 700),  # cgroup v2, compose mem_limit: 700m
        ({"memory.max": "max\n"}, None),  # v2, no limit
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None),  # v1 says "none" with a huge number
        ({"memory/memory.limit_in_bytes": "1073741824\n"}, 1024),
        ({}, None),  # no cgroup files at all (macOS, some sandboxes)
    ],
)
def test_the_container_limit_is_read_from_the_cgroup(files, expected, tmp_path: Path) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert container_limit_mb(tmp_path) == expected


def test_the_footprint_follows_the_files_that_would_load(model_dirs, onnx_dir, tmp_path) -> None:
    values = {"image_model": str(model_dirs.clip), "text_model": str(model_dirs.text), "model_dir": onnx_dir}
    onnx = expected_footprint(Runtime("onnx", Settings(**values)))
    torch = expected_footprint(Runtime("torch", Settings(**values)))
    assert onnx is not None and torch is not None
    int8_mb = sum((onnx_dir / name).stat().st_size for name in ("image.int8.onnx", "text.int8.onnx")) / 2**20
    assert onnx.peak_mb == round(PROCESS_BASE_MB["onnx"] + int8_mb * LOAD_FACTOR["int8"])
    assert "image int8" in onnx.describe() and "text int8" in onnx.describe()
    assert torch.peak_mb > PROCESS_BASE_MB["torch"] and "text torch" in torch.describe()
    # The place tower's export counts too, when PLACE_MODEL asks for it (on by default).
    place = tmp_path / "with-place"
    shutil.copytree(onnx_dir, place)
    (place / "place").mkdir()
    PlaceManifest("dinov2-small", "fp", 384, {}, {"int8": ExportedFile("place.int8.onnx")}).write(place / "place")
    (place / "place" / "place.int8.onnx").write_bytes(b"\0" * 2**21)
    both = expected_footprint(Runtime("onnx", Settings(**values | {"model_dir": place, "place_model": "dinov2-small"})))
    assert both is not None and both.peak_mb == round(PROCESS_BASE_MB["onnx"] + (int8_mb + 2) * LOAD_FACTOR["int8"])
    assert "place int8 2 MB" in both.describe()
    off = expected_footprint(Runtime("onnx", Settings(**values | {"model_dir": place, "place_model": "none"})))
    assert off is not None and off.peak_mb == onnx.peak_mb
    # A model named on the hub (files in its cache): no guess.
    assert expected_footprint(Runtime("torch", Settings(image_model="clip-ViT-B-32"))) is None
