import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageDraw

from prep.checks.collage import grid_lines, is_collage
from prep.checks.colour import colour_scores
from prep.checks.duplicates import HashedPhoto, find_duplicates, perceptual_hash
from prep.checks.interior import indoor_probability
from prep.checks.outliers import find_outliers
from tests.helpers.cleaning_set import collage, colour_cast, grayscale, real_photos, recompressed, sepia


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return real_photos()


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_grayscale_with_jpeg_chroma_noise_is_flagged(photos) -> None:
    assert colour_scores(_pixels(recompressed(grayscale(photos["coffee"]), 40))).grayscale


def test_grey_scene_with_a_few_colourful_tourists_is_not_grayscale(photos) -> None:
    scene = grayscale(photos["motorcycle"])
    draw = ImageDraw.Draw(scene)
    for i, colour in enumerate([(220, 30, 30), (30, 60, 220), (240, 200, 0)]):
        draw.rectangle([40 + 90 * i, 150, 52 + 90 * i, 180], fill=colour)  # ~1.5 % of the pixels
    assert not colour_scores(_pixels(scene)).grayscale
    assert not colour_scores(_pixels(photos["china"])).grayscale


def test_sepia_is_flagged_but_a_warm_colour_photo_is_not(photos) -> None:
    assert colour_scores(_pixels(sepia(photos["coffee"]))).sepia
    assert colour_scores(_pixels(sepia(photos["rocket"], (40, 70, 120)))).sepia  # other single tints too
    for name in ("coffee", "chelsea", "china", "flower"):
        warm = colour_cast(photos[name], (1.2, 1.0, 0.75))
        assert not colour_scores(_pixels(warm)).sepia, name
        assert not colour_scores(_pixels(photos[name])).sepia, name
    assert not colour_scores(_pixels(grayscale(photos["coffee"]))).sepia  # grey is its own reason


def test_collages_with_and_without_gutters_are_flagged(photos) -> None:
    images = list(photos.values())
    assert is_collage(grid_lines(_pixels(collage(images[:4], 2, 2))))
    assert is_collage(grid_lines(_pixels(collage(images[4:8], 2, 2, gutter=8))))
    assert is_collage(grid_lines(_pixels(collage(images[1:4], 1, 3, gutter=5, gutter_colour=(0, 0, 0)))))


def test_natural_straight_edges_and_textures_are_not_collages(photos) -> None:
    for name in ("rocket", "astronaut", "motorcycle", "china"):
        assert not is_collage(grid_lines(_pixels(photos[name]))), name
    brick = Image.fromarray(skimage.data.brick()).convert("RGB").resize((320, 240))
    assert not is_collage(grid_lines(_pixels(brick)))
    # A tower against the sky exactly at the middle: one straight line is not a grid.
    facade = Image.new("RGB", (320, 240), (120, 170, 230))
    ImageDraw.Draw(facade).rectangle([160, 0, 320, 240], fill=(150, 120, 90))
    assert len(grid_lines(_pixels(facade))) <= 1 and not is_collage(grid_lines(_pixels(facade)))


def _hashed(path: str, image: Image.Image, colour: bool = True, sha: str | None = None) -> HashedPhoto:
    return HashedPhoto(path, "X", sha or path, perceptual_hash(image), image.width * image.height, colour)


def test_duplicates_keep_the_colour_then_the_largest_member(photos) -> None:
    original = photos["chelsea"]
    members = [
        _hashed("a_gray.jpg", grayscale(original), colour=False),
        _hashed("b_small.jpg", original.resize((160, 120))),
        _hashed("c_original.jpg", original),
        _hashed("d_exact.jpg", original, sha="c_original.jpg"),
        _hashed("e_other.jpg", photos["coffee"]),
    ]
    found = {d.path: d for d in find_duplicates(members)}
    assert set(found) == {"a_gray.jpg", "b_small.jpg", "d_exact.jpg"}
    assert all(d.kept == "c_original.jpg" for d in found.values())
    assert found["d_exact.jpg"].distance == 0 and found["d_exact.jpg"].exact
    assert not found["b_small.jpg"].exact and not found["a_gray.jpg"].exact


def test_duplicates_are_only_looked_for_within_a_landmark(photos) -> None:
    image = photos["rocket"]
    a = HashedPhoto("a.jpg", "X", "same", perceptual_hash(image), 1, True)
    b = HashedPhoto("b.jpg", "Y", "same", perceptual_hash(image), 1, True)
    assert find_duplicates([a, b]) == []


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_outliers_only_noise_points_not_a_second_mode() -> None:
    rng = np.random.default_rng(0)
    centre, interior, stranger = rng.normal(size=(3, 64))
    main = centre + 0.15 * rng.normal(size=(30, 64))
    second = interior + 0.15 * rng.normal(size=(12, 64))
    vectors = _unit(np.vstack([main, second, stranger[None, :]]))
    paths = [f"p{i}" for i in range(len(vectors))]
    found = find_outliers(paths, ["X"] * len(paths), vectors)
    assert [o.path for o in found] == ["p42"]
    assert found[0].method == "dbscan" and found[0].distance > found[0].threshold


def test_small_landmarks_use_the_centroid_rule() -> None:
    rng = np.random.default_rng(1)
    centre, stranger = rng.normal(size=(2, 64))
    vectors = _unit(np.vstack([centre + 0.1 * rng.normal(size=(6, 64)), stranger[None, :]]))
    found = find_outliers([f"p{i}" for i in range(7)], ["X"] * 7, vectors)
    assert [(o.path, o.method) for o in found] == [("p6", "centroid")]
    assert find_outliers(["a", "b", "c"], ["X"] * 3, vectors[:3]) == []  # too few to judge
    same = np.repeat(vectors[:1], 12, axis=0)
    assert find_outliers([f"s{i}" for i in range(12)], ["X"] * 12, same) == []


def test_indoor_probability_follows_the_closer_prompt_ensemble() -> None:
    indoor, outdoor = np.eye(2, 8, dtype=np.float32)
    photos = _unit(np.array([[0.9, 0.1, 0, 0, 0, 0, 0, 0], [0.1, 0.9, 0, 0, 0, 0, 0, 0]], dtype=np.float32))
    probability = indoor_probability(photos, indoor, outdoor)
    assert probability[0] > 0.99 and probability[1] < 0.01
