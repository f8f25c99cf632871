"""Fixtures of the bot tests: a fake Bot API server and the real Application polling it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core import Guide, PhotoIndex
from tests.helpers.bot import bot_settings, running_bot
from tests.helpers.fake_telegram import FakeTelegram
from tests.helpers.models import BACKENDS, BuiltDataset, ModelDirs, encoders_for


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def shared_guide(request: pytest.FixtureRequest, built_dataset: BuiltDataset) -> Guide:
    """The conversation tests run on both runtimes."""
    encoders = encoders_for(request, request.param)
    index = PhotoIndex.load(built_dataset.artifacts_dir)
    # As bot_settings: the fixed similarity rule for cards, and every text answer an album (the tiny
    # random text model's calibration would call every text answer unsure; its own tests cover that).
    return Guide(index, encoders.image, encoders.text, data_dir=built_dataset.data_dir, text_match_threshold=-1.0)


@pytest.fixture
async def bot(fake: FakeTelegram, built_dataset: BuiltDataset, model_dirs: ModelDirs, shared_guide: Guide, tmp_path):
    settings = bot_settings(fake, built_dataset, model_dirs, bot_state_file=tmp_path / "state.json")
    async with running_bot(settings, shared_guide):
        yield fake
