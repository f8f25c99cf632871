"""/reindex end to end, and the `python -m bot` process: start-up, menu, SIGTERM, missing token."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.index import PhotoIndex
from core.languages import LANGUAGES
from core.service import Guide
from tests.helpers.bot import ADMIN, TOKEN, bot_env, bot_settings, running_bot, start_bot_process
from tests.helpers.datagen import jpeg_bytes, scene

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not

REPO = Path(__file__).parents[2]


@pytest.fixture
async def own_bot(fake, built_dataset, model_dirs, encoders, tmp_path):
    """A bot over a private copy of the dataset, free to be rebuilt."""
    dataset = built_dataset.copy_to(tmp_path)
    guide = Guide(PhotoIndex.load(dataset.artifacts_dir), encoders.image, encoders.text, data_dir=dataset.data_dir)
    async with running_bot(bot_settings(fake, dataset, model_dirs), guide):
        yield fake, dataset, guide


def _add_photos(dataset, count: int) -> None:
    folder = dataset.data_dir / "images" / "EKB" / PhotoIndex.load(dataset.artifacts_dir).photos[0].xid
    for i in range(count):
        (folder / f"added_{i}.jpg").write_bytes(jpeg_bytes(scene(0, 500 + i)))


async def test_non_admin_is_refused(own_bot) -> None:
    fake, _, guide = own_bot
    before = guide.index
    await fake.send(7, text="/reindex")
    reply = (await fake.wait_replies(7))[0]
    assert "administrators only" in reply.text
    await asyncio.sleep(0.2)
    assert guide.index is before


async def test_admin_reindex_reports_and_swaps_while_queries_are_answered(own_bot) -> None:
    fake, dataset, guide = own_bot
    before = len(guide.index)
    _add_photos(dataset, 150)
    await fake.send(ADMIN, text="/reindex")
    started = (await fake.wait_replies(ADMIN))[0]
    assert "Rebuilding the index" in started.text

    # While it runs: another admin request is refused, and a tourist gets an answer.
    await fake.send(ADMIN, text="/reindex")
    await fake.send_photo(55, jpeg_bytes(scene(3, 77)))
    await fake.wait_replies(55)
    texts = lambda: [c.text for c in fake.replies(ADMIN)]  # noqa: E731
    await fake.wait_for(lambda: any("Index updated" in t for t in texts()), timeout=120)
    assert any("already running" in t for t in texts())
    done = next(t for t in texts() if "Index updated" in t)
    assert f"{before + 150} photos" in done and "150 embedded" in done
    assert len(guide.index) == before + 150
    assert fake.replies(55)[0].text.startswith("This is most likely")


async def test_reindex_with_nothing_changed_says_up_to_date(own_bot) -> None:
    fake, _, guide = own_bot
    before = guide.index
    await fake.send(ADMIN, text="/reindex", language_code="ru")
    await fake.wait_for(lambda: any("уже актуален" in c.text for c in fake.replies(ADMIN)))
    assert guide.index is before


async def test_failed_reindex_keeps_the_old_index_serving(own_bot) -> None:
    fake, dataset, guide = own_bot
    before = guide.index
    (dataset.data_dir / "places.csv").unlink()
    await fake.send(ADMIN, text="/reindex")
    await fake.wait_for(lambda: any("Reindex failed" in c.text for c in fake.replies(ADMIN)))
    failure = next(c.text for c in fake.replies(ADMIN) if "Reindex failed" in c.text)
    assert "places.csv" in failure
    assert guide.index is before
    await fake.send_photo(56, jpeg_bytes(scene(1, 78)))
    assert (await fake.wait_replies(56))[0].text.startswith("This is most likely")
    # And the slot is free again for the next attempt.
    await fake.send(ADMIN, text="/reindex")
    await fake.wait_for(lambda: sum("Reindex failed" in c.text for c in fake.replies(ADMIN)) == 2)


async def test_a_failed_started_message_releases_the_reindex_slot(own_bot) -> None:
    """Issue #16 row 11: Telegram answered 500 to "reindex started"; a later /reindex must run."""
    fake, _, guide = own_bot
    fake.fail("sendMessage", times=1, status=500)
    await fake.send(ADMIN, text="/reindex")
    await fake.wait_for(lambda: fake.sent("sendMessage:500"))
    await fake.send(ADMIN, text="/reindex")
    await fake.wait_for(lambda: any("up to date" in c.text for c in fake.replies(ADMIN)), timeout=60)
    assert not any("already running" in c.text for c in fake.replies(ADMIN))


async def test_shutdown_cancels_a_running_reindex_and_keeps_the_old_index(
    built_dataset, model_dirs, encoders, tmp_path
) -> None:
    """Issue #16 row 12: SIGTERM during /reindex stops the build at its next batch, not at its end."""
    import time

    from bot.reindex import Reindexer
    from core import BuildCancelled
    from core.artifacts import open_cache

    dataset = built_dataset.copy_to(tmp_path)
    _add_photos(dataset, 200)

    class Slow:
        def __init__(self, inner) -> None:
            self.inner = inner
            self.model_name, self.cache_key, self.dim = inner.model_name, inner.cache_key, inner.dim
            self.fingerprint = inner.fingerprint

        def encode_images(self, images):
            time.sleep(0.2)  # a full-size model on a small VPS: a batch takes a while
            return self.inner.encode_images(images)

    guide = Guide(PhotoIndex.load(dataset.artifacts_dir), Slow(encoders.image), encoders.text)
    before = guide.index
    reindexer = Reindexer(guide, dataset.data_dir, dataset.artifacts_dir)
    reindexer.claim()
    task = asyncio.create_task(reindexer.run(lambda *a: asyncio.sleep(0)))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    reindexer.shutdown()
    with pytest.raises(BuildCancelled):
        await asyncio.wait_for(task, timeout=10)
    assert time.monotonic() - started < 2
    reindexer.claim()  # the slot was released: a new claim does not raise ReindexBusyError
    assert guide.index is before and PhotoIndex.load(dataset.artifacts_dir).location == before.location
    with open_cache(dataset.artifacts_dir) as cache:  # what was embedded is kept for the next build
        kept = cache.get(
            encoders.image.cache_key, [cache.hash_file(p) for p in (dataset.data_dir / "images").rglob("added_*")]
        )
    assert 0 < len(kept) < 200


async def test_process_starts_sets_menus_answers_and_exits_0_on_sigterm(
    fake, built_dataset, model_dirs, tmp_path
) -> None:
    dataset = built_dataset.copy_to(tmp_path)
    alive = tmp_path / "alive"
    env = bot_env(fake, dataset, model_dirs, HEALTH_FILE=str(alive))
    health = [sys.executable, "-m", "bot.health"]
    assert subprocess.run(health, env=env, cwd=tmp_path, capture_output=True).returncode == 1  # not running yet
    process = await start_bot_process(env, tmp_path)
    try:
        # A menu and descriptions per client language of the registry, then the default (English) ones.
        tags = [tag for entry in LANGUAGES for tag in entry.telegram]
        await fake.wait_for(lambda: len(fake.sent("setMyShortDescription")) > len(tags), timeout=60)
        languages = {c.params.get("language_code") for c in fake.sent("setMyCommands")}
        assert languages == {*tags, None} and {"ru", "en", "zh", "ar", "tr", "de", "fa", "uk"} <= languages
        described = {c.params.get("language_code"): c.params["description"] for c in fake.sent("setMyDescription")}
        assert described["fa"].startswith("جاذبه") and described["uk"] == described["ru"]
        for _ in range(100):  # the heartbeat starts once polling runs
            if alive.exists():
                break
            await asyncio.sleep(0.1)
        assert subprocess.run(health, env=env, cwd=tmp_path, capture_output=True).returncode == 0
        await fake.send_photo(60, jpeg_bytes(scene(0, 90)))
        assert (await fake.wait_replies(60, timeout=30))[0].text.startswith("This is most likely")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert TOKEN not in stderr.decode() and TOKEN.split(":")[1] not in stderr.decode()


async def test_process_builds_a_missing_index_before_polling(fake, built_dataset, model_dirs, tmp_path) -> None:
    dataset = built_dataset.copy_to(tmp_path)
    env = bot_env(fake, dataset, model_dirs, ARTIFACTS_DIR=str(tmp_path / "new-artifacts"))
    process = await start_bot_process(env, tmp_path)
    try:
        await fake.wait_for(lambda: fake.sent("setMyCommands"), timeout=90)
        assert PhotoIndex.load(tmp_path / "new-artifacts").manifest.count == len(PhotoIndex.load(dataset.artifacts_dir))
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0


async def test_missing_token_is_one_clear_line(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    env["PYTHONPATH"] = str(REPO)
    process = await start_bot_process(env, tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    message = stderr.decode().strip()
    assert message.count("\n") == 0 and "TELEGRAM_BOT_TOKEN" in message and "BotFather" in message


async def test_stopping_the_bot_during_reindex_cancels_the_build_first(
    fake, built_dataset, model_dirs, encoders, tmp_path
) -> None:
    """Issue #21 row 9: PTB's stop() waited for a /reindex task before anything cancelled it (34.5 s and a
    finished build, then Docker's SIGKILL). The bot's own stop sequence must end within seconds."""
    import time

    from bot.__main__ import _stop
    from bot.app import build_application

    dataset = built_dataset.copy_to(tmp_path)
    _add_photos(dataset, 200)
    guide = Guide(PhotoIndex.load(dataset.artifacts_dir), encoders.image, encoders.text, data_dir=dataset.data_dir)
    before = guide.index
    real_encode = guide.image_encoder.encode_images

    def slow_encode(images):
        time.sleep(1.0)  # a full-size model on a small VPS: 7 batches take 7 s
        return real_encode(images)

    guide.image_encoder.encode_images = slow_encode  # type: ignore[method-assign]
    try:
        application = build_application(bot_settings(fake, dataset, model_dirs), guide)
        await application.initialize()
        await application.updater.start_polling(poll_interval=0.0, timeout=1)
        await application.start()
        await fake.send(ADMIN, text="/reindex")
        await fake.wait_for(lambda: any("Rebuilding" in c.text for c in fake.replies(ADMIN)))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await _stop(application)
        assert time.monotonic() - started < 3.5  # at the next batch, not after the remaining ~6 s
    finally:
        guide.image_encoder.encode_images = real_encode  # type: ignore[method-assign]
    assert guide.index is before  # the build was cancelled, the old index kept
