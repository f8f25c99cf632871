import threading

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.imaging import ImageDecodeError
from core.index import PhotoIndex
from core.ranking import RankingParams
from core.service import EmptyQueryError, Guide
from tests.helpers.datagen import jpeg_bytes, scene
from tests.helpers.models import BACKENDS, CITIES, BuiltDataset, encoders_for

FRESH_VIEWS = range(50, 54)  # views the index has never seen


@pytest.fixture(scope="module", params=BACKENDS)
def guide(request: pytest.FixtureRequest, built_dataset: BuiltDataset) -> Guide:
    """The same tests run on both runtimes (the index was built with the torch one)."""
    encoders = encoders_for(request, request.param)
    return Guide(PhotoIndex.load(built_dataset.artifacts_dir), encoders.image, encoders.text)


def _expected_names(built_dataset: BuiltDataset) -> list[str]:
    return [name for city in CITIES for name in built_dataset.names[city]]


def test_fresh_views_are_recognised_far_above_chance(guide: Guide, built_dataset: BuiltDataset) -> None:
    names = _expected_names(built_dataset)
    top1 = top5 = total = 0
    for landmark, name in enumerate(names):
        for view in FRESH_VIEWS:
            result = guide.recognize(jpeg_bytes(scene(landmark, view)))
            ranked = [hit.landmark.name for hit in result.landmarks]
            top1 += ranked[0] == name
            top5 += name in ranked
            total += 1
    chance = 1 / len(names)
    assert top1 / total >= 0.8 > 10 * chance
    assert top5 / total >= 0.95


def test_result_has_five_landmarks_five_categories_and_confidences(guide: Guide) -> None:
    result = guide.recognize(jpeg_bytes(scene(0, 60)))
    assert len(result.landmarks) == 5 and len(result.categories) == 5
    assert all(a.score >= b.score for a, b in zip(result.landmarks, result.landmarks[1:], strict=False))
    assert sum(h.score for h in result.landmarks) <= 1.0 + 1e-6
    assert "interesting_places" not in {c.category for c in result.categories}
    # Categories are kinds of the returned landmarks.
    kinds = {k for hit in result.landmarks for k in hit.landmark.kinds}
    assert {c.category for c in result.categories} <= kinds


def test_an_unrelated_photo_scores_below_every_landmark_view(guide: Guide, built_dataset: BuiltDataset) -> None:
    cat = Image.fromarray(skimage.data.chelsea())
    cat_similarity = guide.recognize(cat).best_similarity
    views = [guide.recognize(scene(i, 70)).best_similarity for i in range(len(_expected_names(built_dataset)))]
    assert cat_similarity < min(views)
    threshold = (cat_similarity + min(views)) / 2
    strict = Guide(guide.index, guide.image_encoder, guide.text_encoder, RankingParams(match_threshold=threshold))
    assert not strict.recognize(cat).match
    assert strict.recognize(scene(0, 70)).match
    assert strict.recognize(cat).landmarks  # guesses are still given


def test_any_pillow_mode_and_exif_rotation_are_accepted(guide: Guide) -> None:
    base = scene(1, 80)
    expected = guide.recognize(base).landmarks[0].xid
    for mode in ("L", "RGBA", "P", "CMYK", "I;16"):
        assert guide.recognize(base.convert(mode) if mode != "I;16" else base.convert("L").convert("I;16")).landmarks
    rotated = base.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    import io

    buffer = io.BytesIO()
    rotated.save(buffer, "JPEG", exif=exif.tobytes(), quality=90)
    assert guide.recognize(buffer.getvalue()).landmarks[0].xid == expected


@pytest.mark.parametrize("data", [b"", b"not an image", jpeg_bytes(scene(0, 0))[:300]])
def test_undecodable_bytes_raise_a_clear_error(guide: Guide, data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        guide.recognize(data)


def test_decompression_bomb_is_refused_before_decoding(guide: Guide) -> None:
    import io

    buffer = io.BytesIO()
    Image.new("L", (10_000, 5_000)).save(buffer, "PNG")  # 50 MP of zeros compresses to a few KB
    assert len(buffer.getvalue()) < 200_000
    with pytest.raises(ImageDecodeError, match="too large"):
        guide.recognize(buffer.getvalue())


@pytest.mark.parametrize("query", ["Храм на Крови", "church by the river", "Нижегородский кремль"])
def test_text_search_returns_five_photos_in_russian_and_english(guide: Guide, query: str) -> None:
    hits = guide.search(query)
    assert len(hits) == 5
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert all(hit.path.is_file() and hit.name and hit.city for hit in hits)
    assert len({hit.path for hit in hits}) == 5


def test_long_query_is_truncated_and_empty_query_refused(guide: Guide) -> None:
    assert len(guide.search("собор " * 2000)) == 5
    for empty in ("", "   \n\t"):
        with pytest.raises(EmptyQueryError):
            guide.search(empty)


def test_swap_replaces_the_index_while_queries_run(guide: Guide, built_dataset: BuiltDataset) -> None:
    fresh = PhotoIndex.load(built_dataset.artifacts_dir)
    local = Guide(guide.index, guide.image_encoder, guide.text_encoder)
    vector = guide.image_encoder.encode_images([scene(2, 90)])[0]
    expected = local.recognize_vector(vector).landmarks[0].xid
    errors: list[BaseException] = []

    def query() -> None:
        try:
            for _ in range(50):
                assert local.recognize_vector(vector).landmarks[0].xid == expected
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=query) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        local.swap(fresh)
        local.swap(guide.index)
    for thread in threads:
        thread.join()
    assert not errors
    local.swap(fresh)
    assert local.index is fresh


def test_swap_refuses_an_index_for_another_model(guide: Guide, built_dataset: BuiltDataset) -> None:
    from dataclasses import replace

    from core.artifacts import ArtifactsError

    other = PhotoIndex.load(built_dataset.artifacts_dir)
    other.manifest = replace(other.manifest, image_model="clip-ViT-L-14")
    with pytest.raises(ArtifactsError):
        guide.swap(other)
    assert guide.index is not other
    assert np.isfinite(guide.recognize(scene(0, 1)).best_similarity)
