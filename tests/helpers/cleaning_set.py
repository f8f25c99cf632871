"""A labelled evaluation set for the cleaning checks: real colour photos shipped with scikit-image
and scikit-learn plus generated landmark scenes, and their bad variants."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from tests.helpers.datagen import jpeg_bytes, scene

SIZE = (320, 240)


def landmark_view(landmark: int, view: int) -> Image.Image:
    """A distinct photo of a generated landmark: another crop, framing and sometimes a mirror image,
    as different tourists' photos are (plain `scene` views are near-duplicates of each other)."""
    rng = np.random.default_rng(landmark * 7919 + view)
    big = scene(landmark, view, size=(480, 360))
    share = 0.5 + 0.035 * (view % 12)  # every view frames the place at its own scale
    width, height = int(480 * share), int(360 * share)
    left, top = int(rng.integers(0, 480 - width)), int(rng.integers(0, 360 - height))
    image = big.crop((left, top, left + width, top + height)).resize(SIZE)
    return ImageOps.mirror(image) if view % 2 else image


def real_photos() -> dict[str, Image.Image]:
    import skimage.data as data
    from sklearn.datasets import load_sample_images

    photos = {
        "astronaut": data.astronaut(),
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "hubble": data.hubble_deep_field(),
        "ihc": data.immunohistochemistry(),
        "retina": data.retina(),
        "motorcycle": data.stereo_motorcycle()[0],
    }
    samples = load_sample_images()
    photos |= {"china": samples.images[0], "flower": samples.images[1]}
    return {name: ImageOps.fit(Image.fromarray(array).convert("RGB"), SIZE) for name, array in photos.items()}


def colour_photos(scenes: int = 24) -> dict[str, Image.Image]:
    photos = real_photos()
    photos |= {f"scene{i}": scene(i, 0) for i in range(scenes)}
    return photos


def grayscale(image: Image.Image) -> Image.Image:
    return image.convert("L").convert("RGB")


def sepia(image: Image.Image, tone: tuple[int, int, int] = (112, 66, 20)) -> Image.Image:
    return ImageOps.colorize(image.convert("L"), black=(0, 0, 0), white=(255, 255, 255), mid=tone)


def colour_cast(image: Image.Image, gains: tuple[float, float, float] = (1.15, 1.0, 0.8)) -> Image.Image:
    pixels = np.asarray(image, np.float32) * np.array(gains, np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def recompressed(image: Image.Image, quality: int = 55) -> Image.Image:
    return Image.open(io.BytesIO(jpeg_bytes(image, quality))).convert("RGB")


def collage(
    images: list[Image.Image],
    rows: int,
    cols: int,
    gutter: int = 0,
    gutter_colour: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    width, height = SIZE
    cell_w, cell_h = (width - gutter * (cols - 1)) // cols, (height - gutter * (rows - 1)) // rows
    canvas = Image.new("RGB", SIZE, gutter_colour)
    for index, image in enumerate(images[: rows * cols]):
        row, col = divmod(index, cols)
        canvas.paste(ImageOps.fit(image, (cell_w, cell_h)), (col * (cell_w + gutter), row * (cell_h + gutter)))
    return canvas


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    labels: frozenset[str]  # the reasons this sample should be flagged for


def evaluation_set() -> list[Sample]:
    photos = colour_photos()
    names = list(photos)
    samples: list[Sample] = []

    def add(name: str, image_or_bytes, *labels: str) -> None:
        data = image_or_bytes if isinstance(image_or_bytes, bytes) else jpeg_bytes(image_or_bytes, 90)
        samples.append(Sample(name, data, frozenset(labels)))

    for i, (name, image) in enumerate(photos.items()):
        add(name, image)
        add(f"{name}-gray", grayscale(image), "grayscale")
        add(f"{name}-gray-jpeg", recompressed(grayscale(image)), "grayscale")
        add(f"{name}-cast", colour_cast(image, (1.15, 1.0, 0.8) if i % 2 else (0.85, 1.0, 1.2)))
        if i % 2 == 0:
            add(f"{name}-sepia", sepia(image), "sepia")
        else:
            add(f"{name}-blue-tint", sepia(image, (40, 70, 120)), "sepia")
        others = [photos[names[(i + k) % len(names)]] for k in range(4)]
        if i % 4 == 0:
            add(f"{name}-collage2x2", collage(others, 2, 2), "collage")
        elif i % 4 == 1:
            add(f"{name}-collage2x2-gutter", collage(others, 2, 2, gutter=8), "collage")
        elif i % 4 == 2:
            add(f"{name}-collage1x3", collage(others, 1, 3), "collage")
        else:
            add(f"{name}-collage1x3-gutter", collage(others, 1, 3, gutter=6, gutter_colour=(20, 20, 20)), "collage")
        if i % 3 == 0:
            original = jpeg_bytes(image, 90)
            add(f"{name}-truncated", original[: len(original) * 2 // 3], "unreadable")
        if i % 3 == 1:
            add(f"{name}-tiny", image.resize((48, 36)), "tiny")
    return samples


# --- the labelled set as a folder dataset, and precision/recall per check -----------------------------

CHECK_OF_REASON = {
    "unreadable": "unreadable",
    "tiny": "tiny",
    "duplicate": "duplicates",
    "grayscale": "grayscale",
    "sepia": "sepia",
    "collage": "collage",
    "outlier": "outliers",
}


def write_quality_dataset(data_dir, outlier_landmarks: int = 6, views: int = 12) -> dict[str, frozenset[str]]:
    """Write the evaluation set as a folder dataset; returns the labels of every photo path.

    Variants of one kind share a landmark folder (so that only deliberate copies are duplicates of
    each other); the duplicate folder holds originals with exact, recompressed and resized copies;
    the outlier folders hold views of one generated landmark plus one unrelated real photo.
    """
    from core.catalog import Landmark, write_places

    labels: dict[str, frozenset[str]] = {}
    landmarks = []

    def put(xid: str, name: str, data: bytes, label: frozenset[str]) -> None:
        path = f"images/TEST/{xid}/{name}.jpg"
        target = data_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        labels[path] = label
        if xid not in [lm.xid for lm in landmarks]:
            landmarks.append(Landmark(xid, xid, "Test", ("architecture",), city_code="TEST"))

    for sample in evaluation_set():
        kind = sample.name.split("-", 1)[1] if "-" in sample.name else "original"
        put(f"K_{kind}", sample.name, sample.data, sample.labels)

    photos = real_photos()
    for i, (name, image) in enumerate(list(photos.items())[:6]):
        original = jpeg_bytes(image, 92)
        put("D_dups", f"{name}-a-original", original, frozenset())
        put("D_dups", f"{name}-b-exact", original, frozenset({"duplicate"}))
        if i % 2:
            put("D_dups", f"{name}-c-recompressed", jpeg_bytes(recompressed(image, 70), 70), frozenset({"duplicate"}))
        else:
            put("D_dups", f"{name}-c-resized", jpeg_bytes(image.resize((256, 192)), 85), frozenset({"duplicate"}))

    strangers = list(photos.values())
    for landmark in range(outlier_landmarks):
        xid = f"O_{landmark}"
        for view in range(views):
            put(xid, f"view{view}", jpeg_bytes(landmark_view(100 + landmark, view), 90), frozenset())
        put(xid, "stranger", jpeg_bytes(strangers[landmark % len(strangers)], 90), frozenset({"outlier"}))
    write_places(data_dir / "places.csv", landmarks)
    return labels


# Only the O_ folders are landmarks (views of one place); the others gather unrelated photos by kind,
# where "unlike the rest of the landmark" has no meaning.
SCOPE = {"outlier": "images/TEST/O_"}


def precision_recall(labels: dict[str, frozenset[str]], findings) -> dict[str, dict[str, float]]:
    """Per check: true/false positives, misses, precision and recall over every finding."""
    flagged: dict[str, set[str]] = {reason: set() for reason in CHECK_OF_REASON}
    for finding in findings:
        flagged.setdefault(finding.reason, set()).add(finding.path)
    table = {}
    for reason, check in CHECK_OF_REASON.items():
        scope = SCOPE.get(reason, "")
        positives = {path for path, label in labels.items() if reason in label and path.startswith(scope)}
        hits = {path for path in flagged.get(reason, set()) if path.startswith(scope)}
        tp, fp, fn = len(hits & positives), len(hits - positives), len(positives - hits)
        table[check] = {
            "positives": len(positives),
            "true_pos": tp,
            "false_pos": fp,
            "missed": fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / len(positives) if positives else 1.0,
        }
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    lines = [f"{'check':<11} {'positives':>9} {'flagged':>8} {'false +':>8} {'precision':>9} {'recall':>7}"]
    for check, row in table.items():
        lines.append(
            f"{check:<11} {row['positives']:>9} {row['true_pos'] + row['false_pos']:>8} "
            f"{row['false_pos']:>8} {row['precision']:>9.2f} {row['recall']:>7.2f}"
        )
    return "\n".join(lines)


# The workflow tests run the pixel checks and duplicates: their verdicts do not depend on the model.
PIXEL_CHECKS = "unreadable,tiny,duplicates,grayscale,sepia,collage"


def snapshot(data_dir: Path) -> dict[str, str]:
    """Every file under images/ with its hash."""
    return {
        p.relative_to(data_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((data_dir / "images").rglob("*"))
        if p.is_file()
    }


def inject_bad_photos(dataset) -> dict[str, str]:
    """One bad photo of each kind into the first landmark; returns {path: expected reason}."""
    from core.dataset import list_photos

    first = list_photos(dataset.data_dir)[0]
    folder = dataset.data_dir / Path(first.path).parent
    rel = Path(first.path).parent.as_posix()
    photos = list(real_photos().values())
    original = (dataset.data_dir / first.path).read_bytes()
    bad = {
        "z_gray.jpg": (jpeg_bytes(grayscale(landmark_view(40, 1))), "grayscale"),
        "z_collage.jpg": (jpeg_bytes(collage(photos[:4], 2, 2, gutter=8)), "collage"),
        "z_truncated.jpg": (jpeg_bytes(scene(0, 31))[:600], "unreadable"),
        "z_copy.jpg": (original, "duplicate"),
        "z_tiny.jpg": (jpeg_bytes(scene(0, 32).resize((40, 30))), "tiny"),
    }
    for name, (data, _) in bad.items():
        (folder / name).write_bytes(data)
    return {f"{rel}/{name}": reason for name, (_, reason) in bad.items()}


@dataclass
class ReviewPage:
    """The review page as a browser's parser sees it."""

    candidates: list[dict] = field(default_factory=list)  # a figure's data-* attributes plus its img's src
    originals: list[dict] = field(default_factory=list)
    ordinary: list[dict] = field(default_factory=list)
    badges: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)


def parse_review_page(path: Path) -> ReviewPage:
    from html.parser import HTMLParser

    page = ReviewPage()

    class Parser(HTMLParser):
        figure: dict | None = None
        in_badge = in_caption = False

        def handle_starttag(self, tag, attrs):
            attributes = dict(attrs)
            classes = (attributes.get("class") or "").split()
            if tag == "figure":
                self.figure = {k: v for k, v in attributes.items() if k.startswith("data-")}
                kind = next(c for c in ("candidate", "original", "ordinary") if c in classes)
                {"candidate": page.candidates, "original": page.originals, "ordinary": page.ordinary}[kind].append(
                    self.figure
                )
            elif tag == "img" and self.figure is not None:
                self.figure.update(src=attributes.get("src"), loading=attributes.get("loading"))
            elif tag == "span" and "badge" in classes:
                self.in_badge = True
            elif tag == "figcaption":
                self.in_caption = True

        def handle_endtag(self, tag):
            if tag == "figure":
                self.figure = None
            elif tag == "span":
                self.in_badge = False
            elif tag == "figcaption":
                self.in_caption = False

        def handle_data(self, data):
            if self.in_badge:
                page.badges.append(data)
            elif self.in_caption:
                page.captions.append(data)

    parser = Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return page
