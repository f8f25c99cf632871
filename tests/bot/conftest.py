"""A fake Bot API server and the real Application polling it, with the tiny offline models."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from telegram import Update

from bot.app import build_application
from core.index import PhotoIndex
from core.service import Guide
from core.settings import Settings
from tests.bot.fake_telegram import FakeTelegram
from tests.conftest import BACKENDS, BuiltDataset, ModelDirs, encoders_for

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")  # a proxy in the environment would capture loopback
TOKEN = "123456:TEST-TOKEN-never-logged"
ADMIN = 1


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
    return Guide(
        PhotoIndex.load(built_dataset.artifacts_dir), encoders.image, encoders.text, data_dir=built_dataset.data_dir
    )


def bot_settings(fake: FakeTelegram, dataset: BuiltDataset, models: ModelDirs, **overrides) -> Settings:
    values = dict(
        telegram_bot_token=TOKEN,
        admin_ids=frozenset({ADMIN}),
        data_dir=dataset.data_dir,
        artifacts_dir=dataset.artifacts_dir,
        image_model=str(models.clip),
        text_model=str(models.text),
        telegram_api_url=f"{fake.url}/bot",
        telegram_file_url=f"{fake.url}/file/bot",
        workers=2,
    )
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_bot(settings: Settings, guide: Guide) -> AsyncIterator[None]:
    """The real Application, long-polling the fake server, as `run_polling` would run it."""
    application = build_application(settings, guide)
    async with application:
        await application.start()
        await application.updater.start_polling(poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES)
        try:
            yield
        finally:
            await application.updater.stop()
            await application.stop()


@pytest.fixture
async def bot(fake: FakeTelegram, built_dataset: BuiltDataset, model_dirs: ModelDirs, shared_guide: Guide, tmp_path):
    settings = bot_settings(fake, built_dataset, model_dirs, bot_state_file=tmp_path / "state.pickle")
    async with running_bot(settings, shared_guide):
        yield fake
