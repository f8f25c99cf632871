"""Decoding untrusted bytes is bounded by what it would allocate, on every path (issue #16 rows 4, 5, 14)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.imaging import (
    MAX_ASPECT_RATIO,
    ImageDecodeError,
    ImageShapeError,
    ImageTooLargeError,
    decode_image,
    image_format,
)

REPO = Path(__file__).parents[2]


def _png(size: tuple[int, int], mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(100, 400_000), (1_000_000, 25), (1, 2)])
def test_elongated_images_are_refused_from_the_header(size: tuple[int, int]) -> None:
    data = _png(size)
    if max(size) / min(size) > MAX_ASPECT_RATIO:
        with pytest.raises(ImageShapeError, match="elongated"):
            decode_image(data, draft=True)
    else:
        assert decode_image(data).size == size


def test_an_elongated_png_costs_the_process_almost_no_memory() -> None:
    """The 137 KB PNG of 100×400,000 px that took a bot from 622 MB to 3.3 GB: < 100 MB now, end to end
    through decoding and the model's preprocessing, measured as peak RSS in a fresh process."""
    code = """
import io, resource, sys
from PIL import Image
from core.imaging import ImageDecodeError, decode_image
from core.preprocess import ClipPreprocessing
buffer = io.BytesIO()
Image.new("L", (100, 400_000)).save(buffer, "PNG", optimize=True)
data = buffer.getvalue()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    ClipPreprocessing()([decode_image(data, draft=True)])
    print("decoded")
except ImageDecodeError as exc:
    print("refused")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(data), (after - before) / 1024)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    verdict, size, grown_mb = result.stdout.split()
    assert verdict == "refused" and int(size) < 200_000
    assert float(grown_mb) < 100


@pytest.mark.parametrize("fmt", ["DDS", "ICNS", "TGA", "PCX", "SGI"])
def test_formats_no_photo_comes_in_are_refused_before_decoding(fmt: str) -> None:
    data = _encoded(Image.new("RGB", (64, 64), (10, 20, 30)), fmt)
    assert image_format(data) is None
    with pytest.raises(ImageDecodeError, match="not an image we can read"):
        decode_image(data)


def test_any_decoder_exception_is_unreadable_not_a_crash(monkeypatch) -> None:
    from PIL import PngImagePlugin

    data = _encoded(Image.new("RGB", (64, 64)), "PNG")
    for error in (NotImplementedError("no"), MemoryError(), __import__("struct").error("x")):

        def broken(self, error=error):
            raise error

        monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", broken)
        with pytest.raises(ImageDecodeError, match="damaged"):
            decode_image(data)


def test_a_huge_jpeg_decodes_reduced_instead_of_being_refused() -> None:
    """60 MP, as phones send them as files: decoded at 1/8 per side for the model."""
    photo = Image.new("RGB", (9000, 6700), (120, 140, 160))
    data = _encoded(photo, "JPEG", quality=50)
    decoded = decode_image(data, draft=True)
    assert decoded.size == (1125, 838)
    with pytest.raises(ImageTooLargeError):  # the same pixels as PNG cannot be decoded reduced
        decode_image(_png((9000, 6700)), draft=True)


def test_ordinary_formats_still_decode() -> None:
    image = Image.new("RGB", (320, 240), (200, 100, 50))
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"):
        assert decode_image(_encoded(image, fmt)).size == (320, 240), fmt


# Every way an image is opened, on the bot's, the CLI's and prep's paths (issue #31, row 1).
OPENERS = """
from pathlib import Path
from core.imaging import decode_image, image_format, photo_extension, read_gps, telegram_photo
from core.contributions import basic_check
from core.dataset import Dataset
from prep.checks.decode import read_photo
from prep.review_page import write_thumbnail
OPENERS = {
    "read_gps": read_gps,
    "image_format": image_format,
    "photo_extension": photo_extension,
    "telegram_photo": telegram_photo,
    "decode_image": lambda data: decode_image(data, draft=True),
    "contribution": lambda data: basic_check(data, Dataset(Path("/nonexistent")), "x"),
    "clean": read_photo,
    "thumbnail": lambda data: write_thumbnail(Path(sys.argv[1]), Path(sys.argv[1] + ".thumb.jpg")),
}
"""


def _peak_growth_mb(path: Path, code: str) -> dict[str, float]:
    """Runs `code` on the file at `path` in a fresh process: per opener, its outcome and how far the peak RSS
    rose above the process's peak after its imports."""
    script = f"""
import json, resource, sys
{OPENERS}
data = Path(sys.argv[1]).read_bytes()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {{}}
for name, opener in OPENERS.items():
    try:
        value = opener(data)
        outcome = f"{{value.mode}} {{value.size}}" if hasattr(value, "mode") else repr(value)[:40]
    except Exception as exc:
        outcome = type(exc).__name__
    out[name] = [outcome, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024]
print(json.dumps(out))
{code}
"""
    result = subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[0])


def test_a_huge_png_sent_as_a_file_is_refused_on_every_path_without_being_decoded(huge_png_file: Path) -> None:
    """1.5 MB, 40,000 × 40,000 px: reading its GPS once took the bot from 530 MB to 2.1 GB (the container has
    700 MB). Every opener now looks at the header's pixel count first: the peak rises by less than 60 MB."""
    assert huge_png_file.stat().st_size < 2_000_000
    outcomes = _peak_growth_mb(huge_png_file, "")
    assert outcomes["read_gps"][0] == "None" and outcomes["image_format"][0] == "'PNG'"
    for name in ("telegram_photo", "decode_image", "clean"):
        assert outcomes[name][0] == "ImageTooLargeError", (name, outcomes[name])
    assert outcomes["contribution"][0].startswith("'unreadable") and outcomes["thumbnail"][0] == "None"
    assert max(grown for _, grown in outcomes.values()) < 60, outcomes


def test_a_40_megapixel_png_costs_one_decoded_frame(tmp_path: Path) -> None:
    """The largest PNG accepted, with an alpha channel: the decode is reduced before it is converted or
    rotated, so the peak is the decoded frame (160 MB), not three copies of it (~440 MB)."""
    path = tmp_path / "big.png"
    Image.new("RGBA", (7300, 5470), (10, 200, 30, 128)).save(path, "PNG")
    outcomes = _peak_growth_mb(path, "")
    assert outcomes["decode_image"][0].startswith("RGB (305, 228)")
    assert outcomes["decode_image"][1] < 230, outcomes


def test_core_recognize_answers_a_huge_png_within_the_memory_of_an_ordinary_photo(
    huge_png_file: Path, built_dataset, model_dirs, tmp_path: Path
) -> None:
    env = os.environ | {
        "DATA_DIR": str(built_dataset.data_dir),
        "ARTIFACTS_DIR": str(built_dataset.artifacts_dir),
        "IMAGE_MODEL": str(model_dirs.clip),
        "TEXT_MODEL": str(model_dirs.text),
    }
    ordinary = tmp_path / "photo.jpg"
    ordinary.write_bytes(_encoded(Image.new("RGB", (640, 480), (90, 120, 200)), "JPEG"))

    def peak_mb(image: Path) -> tuple[int, float]:
        code = (
            "import atexit, resource, runpy, sys\n"
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "atexit.register(lambda: print('PEAK', peak(), file=sys.stderr))\n"
            f"sys.argv = ['core', 'recognize', {str(image)!r}]\n"
            "runpy.run_module('core', run_name='__main__')\n"
        )
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
        peak = next(line for line in result.stderr.splitlines() if line.startswith("PEAK"))
        return result.returncode, int(peak.split()[1]) / 1024

    code, huge = peak_mb(huge_png_file)
    assert code == 2
    _, normal = peak_mb(ordinary)
    assert huge < normal + 40, (huge, normal)
