"""The bot with the place tower (issue #34, PLACE_MODEL on by default): a tourist's photo answered by both
towers fused, through the real Application against the fake Bot API, and /about crediting the tower."""

from __future__ import annotations

import pytest

from core import Guide, PhotoIndex, build_index, model_id
from core.encoders.place_torch import TorchPlaceEncoder
from prep.random_models import build_place_model
from tests.helpers.bot import bot_settings, running_bot, wait_answers
from tests.helpers.datagen import jpeg_bytes, scene


@pytest.fixture
async def two_tower_bot(fake, built_dataset, model_dirs, encoders, tmp_path):
    dataset = built_dataset.copy_to(tmp_path / "copy")
    place = TorchPlaceEncoder(str(build_place_model(tmp_path / "dinov2-small")))
    text_model = model_id(str(model_dirs.text))
    build_index(dataset.data_dir, dataset.artifacts_dir, encoders.image, text_model=text_model, place_encoder=place)
    guide = Guide(
        PhotoIndex.load(dataset.artifacts_dir),
        encoders.image,
        encoders.text,
        data_dir=dataset.data_dir,
        place_encoder=place,
    )
    async with running_bot(bot_settings(fake, dataset, model_dirs, bot_state_file=tmp_path / "state.json"), guide):
        yield fake, guide


async def test_a_tourists_photo_is_answered_by_both_towers_and_about_credits_the_second(two_tower_bot) -> None:
    fake, guide = two_tower_bot
    photo = jpeg_bytes(scene(3, 77, (640, 480)))  # a new view: CLIP alone is not sure, both towers answer
    expected = guide.recognize(photo)
    assert expected.towers == ("clip-ViT-B-32", "dinov2-small")
    await fake.send_photo(701, photo, language_code="zh-hans")
    answer = (await wait_answers(fake, 701))[0]
    assert guide.index.describe(expected.landmarks[0].xid, "zh-Hans").name in answer.text  # the fused top answer
    await fake.send(701, text="/about", language_code="zh-hans")
    about = (await fake.wait_for(lambda: [r for r in fake.replies(701) if "CLIP" in r.text and "DINOv2" in r.text]))[0]
    assert "区分建筑" in about.text and "dinov2-small" in about.text
