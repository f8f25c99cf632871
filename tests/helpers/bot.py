"""Running the real Application against the fake Bot API, with settings for the tiny models."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from telegram import Update

from bot.app import build_application
from bot.settings import BotSettings
from core import Guide, Settings
from tests.helpers.fake_telegram import FakeTelegram
from tests.helpers.models import BuiltDataset, ModelDirs

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")  # a proxy in the environment would capture loopback
REPO = Path(__file__).parents[2]
TOKEN = "123456:TEST-TOKEN-never-logged"
ADMIN = 1
CORE_FIELDS = set(Settings.__dataclass_fields__)


def bot_settings(fake: FakeTelegram, dataset: BuiltDataset, models: ModelDirs, **overrides) -> BotSettings:
    """Bot settings for the fake server; overrides may name core or bot fields."""
    core = {
        "data_dir": dataset.data_dir,
        "artifacts_dir": dataset.artifacts_dir,
        "image_model": str(models.clip),
        "text_model": str(models.text),
        # The tiny random model's text→photo similarities are meaningless; the no-match answer has its own test.
        "text_match_threshold": -1.0,
        # The card flows need a fixed rule: the tiny models' calibration calls almost nothing sure
        # (tests/core/test_calibration.py covers the calibrated rule).
        "match_threshold": 0.7,
    }
    core.update({k: v for k, v in overrides.items() if k in CORE_FIELDS})
    values = dict(
        telegram_bot_token=TOKEN,
        admin_ids=frozenset({ADMIN}),
        telegram_api_url=f"{fake.url}/bot",
        telegram_file_url=f"{fake.url}/file/bot",
        workers=2,
    )
    values.update({k: v for k, v in overrides.items() if k not in CORE_FIELDS})
    return BotSettings(core=Settings(**core), **values)


@asynccontextmanager
async def running_bot(settings: BotSettings, guide: Guide) -> AsyncIterator[None]:
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


@asynccontextmanager
async def serving_built(
    fake: FakeTelegram, dataset: BuiltDataset, models: ModelDirs, encoders, state_file: Path, adjust=None
) -> AsyncIterator[Guide]:
    """`dataset` built into an index as `prep build` does, loaded (then changed by `adjust`, if given) and
    served by the real Application against the fake Bot API."""
    from core import PhotoIndex, build_index, model_id

    build_index(dataset.data_dir, dataset.artifacts_dir, encoders.image, text_model=model_id(str(models.text)))
    index = PhotoIndex.load(dataset.artifacts_dir)
    if adjust is not None:
        adjust(index)
    guide = Guide(index, encoders.image, encoders.text, data_dir=dataset.data_dir)
    async with running_bot(bot_settings(fake, dataset, models, bot_state_file=state_file), guide):
        yield guide


def bot_env(fake: FakeTelegram, dataset: BuiltDataset, models: ModelDirs, **extra: str) -> dict[str, str]:
    """The environment `python -m bot` gets from a user's .env, pointed at the fake server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADMIN_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=f"{fake.url}/bot",
        TELEGRAM_FILE_URL=f"{fake.url}/file/bot",
        DATA_DIR=str(dataset.data_dir),
        ARTIFACTS_DIR=str(dataset.artifacts_dir),
        IMAGE_MODEL=str(models.clip),
        TEXT_MODEL=str(models.text),
        LOG_LEVEL="INFO",
        PYTHONPATH=str(REPO),
        MATCH_THRESHOLD="0.7",  # as in bot_settings
    )
    env.update(extra)
    return env


async def start_bot_process(env: dict[str, str], cwd: Path, python: str = sys.executable) -> asyncio.subprocess.Process:
    """`python -m bot` as a separate process, as a user or Docker starts it."""
    return await asyncio.create_subprocess_exec(
        python, "-m", "bot", cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


# Messages that follow an answer: the other candidates, and the one-time consent question.
FOLLOW_UPS = ("Other candidates:", "Другие варианты:", "May I keep your photos", "Можно я сохраню")


def answers(fake: FakeTelegram, chat_id: int) -> list:
    """One reply per answer: a photo's card (or its "not sure" list), not the follow-up with the other candidates."""
    return [c for c in fake.replies(chat_id) if not c.text.startswith(FOLLOW_UPS)]


async def wait_answers(fake: FakeTelegram, chat_id: int, count: int = 1, timeout: float = 20.0) -> list:
    await fake.wait_for(lambda: len(answers(fake, chat_id)) >= count, timeout)
    return answers(fake, chat_id)
