"""Location in the bot (issue #11): nearby, the prior on the next photos, live locations, /forget."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from html import escape

import pytest

from core import PhotoIndex
from tests.helpers.bot import answers, bot_settings, running_bot, wait_answers
from tests.helpers.datagen import jpeg_bytes, scene
from tests.helpers.fake_telegram import FakeTelegram
from tests.helpers.models import CITIES

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not


@pytest.fixture(scope="module")
def places(built_dataset) -> list[tuple[str, str, float, float]]:
    """(xid, name, lat, lon) of landmark k of the generated dataset."""
    index = PhotoIndex.load(built_dataset.artifacts_dir)
    by_name = {lm.name: lm for lm in index.landmarks.values()}
    ordered = [by_name[name] for city in CITIES for name in built_dataset.names[city]]
    return [(lm.xid, lm.name, lm.lat, lm.lon) for lm in ordered]


def _location(lat: float, lon: float, **extra) -> dict:
    return {"location": {"latitude": lat, "longitude": lon, **extra}}


async def test_a_shared_location_gets_the_nearest_landmarks(bot: FakeTelegram, places, shared_guide) -> None:
    xid, _, lat, lon = places[0]
    await bot.send(301, **_location(lat, lon))
    reply = (await bot.wait_replies(301))[0]
    text = reply.text
    # Named as the English card names it (transliterated here), not in the dataset's Cyrillic.
    name = shared_guide.index.describe(xid, "en").name
    assert text.startswith("📍 Near you:") and f"1. <b>{name}</b>" in text and "0 m" in text
    assert text.count("\n") >= 5 and "next 3 hours" in text
    assert not re.search("[а-яА-Я]", text)
    *maps, walk = reply.params["reply_markup"]["inline_keyboard"]
    assert len(maps) == 5 and all(row[0]["url"].startswith("https://www.openstreetmap.org/") for row in maps)
    assert walk == [{"text": "🚶 Walk a loop", "callback_data": "walk"}]


async def test_a_location_then_a_photo_applies_the_prior(bot: FakeTelegram, places) -> None:
    _, name, lat, lon = places[3]
    await bot.send(302, **_location(lat + 0.0005, lon), language_code="ru")  # ~55 m away
    await bot.wait_replies(302)
    await bot.send_photo(302, jpeg_bytes(scene(3, 400)), language_code="ru")
    card = (await wait_answers(bot, 302, 2))[-1]
    lines = card.text.splitlines()
    assert card.method == "sendPhoto" and lines[1] == f"<b>{escape(name)}</b>" and " · 60 м · " in lines[2]
    assert "С учётом вашей геопозиции" in card.text
    route = card.params["reply_markup"]["inline_keyboard"][1][1]["url"]
    assert f"route={lat + 0.0005:.6f}%2C{lon:.6f}%3B" in route  # from where the tourist stands


async def test_a_location_far_from_everything_says_so_and_changes_nothing(bot: FakeTelegram) -> None:
    await bot.send(303, **_location(-33.8688, 151.2093))  # Sydney
    assert "No landmark I know is near you" in (await bot.wait_replies(303))[0].text
    await bot.send_photo(303, jpeg_bytes(scene(1, 401)))
    reply = (await wait_answers(bot, 303, 2))[-1].text
    assert "recognised by the photo alone" in reply and " km" not in reply


async def test_live_location_updates_move_the_stored_point(bot: FakeTelegram, places) -> None:
    _, name, lat, lon = places[5]
    message_id = await bot.share_live_location(304, lat + 0.009, lon)  # 1 km north
    await bot.wait_replies(304)
    await bot.move_live_location(304, message_id, lat + 0.00225, lon, at=time.time() + 60)  # 250 m: no card
    await bot.send_photo(304, jpeg_bytes(scene(5, 402)))
    replies = await wait_answers(bot, 304, 2)
    await asyncio.sleep(0.2)
    assert len(answers(bot, 304)) == 2  # the move itself is not answered (no sight within TRIGGER_RADIUS_M)
    assert "Using the location you shared" in replies[-1].text


async def test_forget_deletes_the_location_and_the_language(
    fake, built_dataset, model_dirs, shared_guide, tmp_path, places
) -> None:
    state = tmp_path / "state.json"
    settings = bot_settings(fake, built_dataset, model_dirs, bot_state_file=state)
    _, _, lat, lon = places[2]
    async with running_bot(settings, shared_guide):
        await fake.send(305, text="/lang ru")
        await fake.send(305, **_location(lat, lon))
        await fake.wait_replies(305, 2)
    assert "305" in json.loads(state.read_text())["users"]
    async with running_bot(settings, shared_guide):
        await fake.send(305, text="/forget")
        assert "удалил всё" in (await fake.wait_replies(305, 3))[-1].text
        # On disk when the bot says so, not at the next flush (a kill now must not bring it back).
        assert "305" not in json.loads(state.read_text())["users"]
        await fake.send_photo(305, jpeg_bytes(scene(2, 403)), language_code="en")
        reply = (await wait_answers(fake, 305, 4))[-1].text
        assert "📍" not in reply and reply.startswith(("This is most likely", "🤔"))  # English again
    # Neither the language nor the location came back; only that the consent question was asked anew.
    assert json.loads(state.read_text())["users"].get("305", {}) in ({}, {"consent_asked": True})


async def test_through_the_bot_a_location_within_150_m_gives_top1_at_least_095(bot: FakeTelegram, places) -> None:
    rng = random.Random(7)
    right = 0
    for k, (_, name, lat, lon) in enumerate(places):
        user = 400 + k
        radius, angle = 150 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        near = (
            lat + radius * math.cos(angle) / 111_320,
            lon + radius * math.sin(angle) / (111_320 * math.cos(math.radians(lat))),
        )
        await bot.send(user, **_location(*near))
        await bot.wait_replies(user)
        await bot.send_photo(user, jpeg_bytes(scene(k, 404)), language_code="ru")
        reply = (await wait_answers(bot, user, 2, timeout=30))[-1].text
        right += reply.splitlines()[1] in (f"<b>{escape(name)}</b>", f"1. {escape(name)}")
    assert right / len(places) >= 0.95


@pytest.mark.parametrize("lat, lon", [(91, 0), (0, 181), (123, 500)])
async def test_a_location_off_the_earth_is_refused_and_photos_still_work(bot: FakeTelegram, lat, lon) -> None:
    await bot.send(320, **_location(lat, lon))
    assert "not a point on Earth" in (await bot.wait_replies(320))[0].text
    await bot.send(320, edited=True, **_location(lat + 1, lon + 1))  # a live location moving off the map
    await bot.send_photo(320, jpeg_bytes(scene(1, 77)))
    reply = (await wait_answers(bot, 320, 2))[-1].text
    assert reply.startswith(("This is most likely", "🤔")) and "📍" not in reply
