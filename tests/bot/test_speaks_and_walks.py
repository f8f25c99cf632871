"""The guide that speaks and walks (issue #33), through the real bot against the fake Bot API: 🔊 on a card
in all seven languages, 🗣 for a local, /walk, and a live location moving through the city."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import re
import stat
import time
from html import escape
from pathlib import Path

import pytest
import soundfile

from bot.narration import story
from bot.texts import LANGUAGES, text
from core import Enrichment, GeoPoint, Guide, LandmarkInfo, PhotoIndex, Voices, distance_m
from tests.helpers.bot import bot_settings, running_bot, wait_answers
from tests.helpers.fake_telegram import Call, FakeTelegram

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not

DESCRIPTIONS = {
    "ru": "Стадион «Динамо» — спортивный комплекс в стиле конструктивизма.",
    "en": "A constructivist sports complex on the bank of the Iset.",
    "de": "Ein Sportkomplex im Stil des Konstruktivismus am Ufer des Isset.",
}  # no Chinese, Arabic, Turkish or Persian one: those cards fall back to English
ADDRESS = "ул. Ерёмина, 12"  # Wikidata's P6375, as locals write it


@pytest.fixture
def guide(built_dataset, encoders) -> Guide:
    """The built index with landmark 0 described in three languages and named in two."""
    index = PhotoIndex.load(built_dataset.artifacts_dir)
    first = next(lm for lm in index.landmarks.values() if lm.name == built_dataset.names["EKB"][0])
    info = LandmarkInfo(
        names={"en": "Dynamo Stadium", "de": "Dynamo-Stadion"}, descriptions=DESCRIPTIONS, address=ADDRESS
    )
    index.enrichment = Enrichment({first.xid: info})
    return Guide(index, encoders.image, encoders.text, data_dir=built_dataset.data_dir, text_match_threshold=-1.0)


@pytest.fixture
async def speaking(fake: FakeTelegram, built_dataset, model_dirs, guide: Guide, tmp_path: Path):
    """The bot with its own ARTIFACTS_DIR (voices cached there) and its working directory elsewhere."""
    settings = bot_settings(
        fake, built_dataset, model_dirs, bot_state_file=tmp_path / "state.json", artifacts_dir=tmp_path / "artifacts"
    )
    async with running_bot(settings, guide):
        yield fake, guide, tmp_path / "artifacts"


def _first(guide: Guide) -> str:
    return next(xid for xid in guide.index.indexed_xids if guide.index.enrichment.landmarks.get(xid))


def _photo_of(guide: Guide, xid: str) -> bytes:
    return guide.index.photo_path(guide.index.photos_of(xid)[0], guide.data_dir).read_bytes()


def _button(message: Call, starts: str) -> dict:
    buttons = [b for row in message.params["reply_markup"]["inline_keyboard"] for b in row]
    return next(b for b in buttons if b["text"].startswith(starts))


async def _card(fake: FakeTelegram, guide: Guide, user: int, lang: str) -> Call:
    await fake.send_photo(user, _photo_of(guide, _first(guide)), language_code=lang)
    card = (await wait_answers(fake, user))[0]
    assert card.method == "sendPhoto", card.text
    return card


async def _voices(fake: FakeTelegram, user: int, count: int) -> list[Call]:
    await fake.wait_for(lambda: len(fake.sent("sendVoice", user)) >= count, timeout=30)
    return fake.sent("sendVoice", user)


async def _saved_ids(artifacts: Path, condition, timeout: float = 5.0) -> bool:
    """Whether the saved file_ids meet `condition` within `timeout` (saved just after Telegram answers)."""
    path = artifacts / "voices" / "telegram_file_ids.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and condition(json.loads(path.read_text())["files"]):
            return True
        await asyncio.sleep(0.05)
    return False


def _duration(data: bytes) -> float:
    info = soundfile.info(io.BytesIO(data))
    assert info.format == "OGG" and info.subtype == "OPUS"
    return info.duration


async def test_listen_sends_the_story_as_a_voice_message_in_every_language_then_reuses_telegrams_file_id(
    speaking, monkeypatch, tmp_path
) -> None:
    fake, guide, artifacts = speaking
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    uploads: dict[str, bytes] = {}
    for user, lang in enumerate(LANGUAGES, 900):
        card = await _card(fake, guide, user, lang)
        listen, local = _button(card, "🔊"), _button(card, "🗣")
        assert listen["text"] == text("listen", lang) and local["text"] == text("show_local", lang)
        started = time.monotonic()
        await fake.press_button(user, listen["callback_data"], card, language_code=lang)
        voice = (await _voices(fake, user, 1))[0]
        assert time.monotonic() - started < 30 and "voice" in voice.files  # the first press uploads
        assert _duration(voice.files["voice"]) > 2
        assert voice.params["caption"] == guide.index.describe(_first(guide), lang).name
        uploads[lang] = voice.files["voice"]
    assert len(set(uploads.values())) == len(LANGUAGES)  # each language its own narration, never one shared file
    # The English story is the fallback one: Chinese, Arabic, Turkish and Persian say it after their own intro.
    assert _duration(uploads["zh-Hans"]) > _duration(uploads["en"]) * 0.9
    # Every later press re-sends Telegram's file_id: no second upload, and no press swallowed.
    user, lang = 900 + LANGUAGES.index("de"), "de"
    card = fake.sent("sendPhoto", user)[0]
    for _ in range(3):
        await fake.press_button(user, _button(card, "🔊")["callback_data"], card, language_code=lang)
    again = (await _voices(fake, user, 4))[1:]
    first_id = fake.sent("sendVoice", user)[0].params["_result"]["voice"]["file_id"]
    assert [c.params.get("voice") for c in again] == [first_id] * 3 and not any(c.files for c in again)
    # Cache and ids live under ARTIFACTS_DIR, never in the working directory.
    assert len(list((artifacts / "voices").glob("*.ogg"))) == len(LANGUAGES)
    assert await _saved_ids(artifacts, lambda ids: len(ids) == len(LANGUAGES) and first_id in ids.values())
    assert json.loads((artifacts / "voices" / "telegram_file_ids.json").read_text())["bot"] == "123456"
    assert not list(Path.cwd().rglob("*.ogg")) and not (Path.cwd() / "voices").exists()


async def test_a_file_id_telegram_refuses_is_uploaded_again(speaking) -> None:
    fake, guide, artifacts = speaking
    card = await _card(fake, guide, 920, "en")
    data = _button(card, "🔊")["callback_data"]
    await fake.press_button(920, data, card)
    old = (await _voices(fake, 920, 1))[0].params["_result"]["voice"]["file_id"]
    fake.voices.clear()  # Telegram no longer knows the id (another bot token, a purge)
    await fake.press_button(920, data, card)
    fresh = (await _voices(fake, 920, 2))[1]
    new = fresh.params["_result"]["voice"]["file_id"]
    assert "voice" in fresh.files and new != old
    assert await _saved_ids(artifacts, lambda ids: new in ids.values() and old not in ids.values())


async def test_show_a_local_gives_the_russian_name_in_bold_with_its_city_and_a_voice_saying_it(speaking) -> None:
    fake, guide, _ = speaking
    landmark = guide.index.landmarks[_first(guide)]
    card = await _card(fake, guide, 930, "zh-Hans")
    await fake.press_button(930, _button(card, "🗣")["callback_data"], card, language_code="zh-Hans")
    voice = (await _voices(fake, 930, 1))[0]
    shown = next(c for c in fake.sent("sendMessage", 930) if c.text.startswith("<b>"))
    lines = shown.text.splitlines()
    assert lines[0] == f"<b>{escape(landmark.name)}</b>" and lines[1] == escape(ADDRESS)
    assert lines[2] == landmark.city == "Екатеринбург"
    assert re.fullmatch(r"<code>\d+\.\d{5}, \d+\.\d{5}</code>", lines[3])
    assert "Подскажите, пожалуйста, как сюда добраться?" in shown.text and "请问怎么去这里？" in shown.text
    assert shown.params["parse_mode"] == "HTML" and _duration(voice.files["voice"]) > 1


async def test_a_forged_or_stale_voice_button_changes_nothing(speaking) -> None:
    fake, guide, _ = speaking
    card = await _card(fake, guide, 940, "en")
    for forged in ("say:xx:" + _first(guide), "say:en:NOPE", "local:en:../../etc", "say:", "say:en:" + "9" * 60):
        await fake.press_button(940, forged, card)
    await fake.wait_for(lambda: len(fake.sent("answerCallbackQuery")) >= 5)
    assert not fake.sent("sendVoice", 940) and all(
        c.params.get("text") == text("expired", "en") for c in fake.sent("answerCallbackQuery")
    )


@pytest.mark.parametrize("espeak", ["missing", "hangs"])
async def test_a_voice_that_cannot_be_made_is_one_short_message_and_one_log_line(
    fake, built_dataset, model_dirs, guide, tmp_path, caplog, espeak
) -> None:
    binary = tmp_path / "espeak-ng"
    if espeak == "hangs":
        binary.write_text("#!/bin/sh\nsleep 60\n")
        binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    settings = bot_settings(
        fake, built_dataset, model_dirs, bot_state_file=tmp_path / "s.json", artifacts_dir=tmp_path / "a",
        espeak_binary=str(binary), tts_deadline_s=1.0,
    )  # fmt: skip
    with caplog.at_level(logging.INFO):
        async with running_bot(settings, guide):
            card = await _card(fake, guide, 950, "de")
            await fake.press_button(950, _button(card, "🔊")["callback_data"], card, language_code="de")
            await fake.wait_for(lambda: any("Sprachausgabe" in c.text for c in fake.sent("sendMessage", 950)), 15)
    assert not fake.sent("sendVoice", 950)
    made = [r for r in caplog.records if r.name == "bot.narration"]
    assert len(made) == 1 and "voice message not made" in made[0].getMessage() and not made[0].exc_info


def _sights(guide: Guide) -> list[tuple[str, float, float]]:
    return [(xid, lm.lat, lm.lon) for xid in guide.index.indexed_xids if (lm := guide.index.landmarks[xid]).lat]


async def test_walk_is_the_shortest_loop_through_the_sights_near_the_tourist_in_every_language(speaking) -> None:
    fake, guide, _ = speaking
    xid, lat, lon = _sights(guide)[0]
    start = GeoPoint(lat + 0.001, lon)
    near = sorted(_sights(guide), key=lambda s: distance_m(start, GeoPoint(s[1], s[2])))
    near = [s for s in near if distance_m(start, GeoPoint(s[1], s[2])) <= 2500][:5]
    assert len(near) >= 3  # the generated dataset's Yekaterinburg sights are a walk apart
    walked_xids = {s[0] for s in near}
    for user, lang in enumerate(LANGUAGES, 960):
        await fake.send(user, text="/walk", language_code=lang)
        asked = (await fake.wait_replies(user))[0]
        assert asked.text == text("walk_ask", lang)
        assert asked.params["reply_markup"]["keyboard"][0][0]["request_location"]
        await fake.send(user, location={"latitude": start.lat, "longitude": start.lon}, language_code=lang)
        walk = (await fake.wait_replies(user, 2))[1]
        names = [escape(guide.index.describe(s[0], lang).name) for s in near]
        shown = re.findall(r"^\d\. <b>(?:\u2068)?(.+?)(?:\u2069)?</b> — ", walk.text, re.M)
        assert sorted(shown) == sorted(names) and walk.text.startswith(text("walk_title", lang, places="").split()[0])
        others = [escape(guide.index.describe(x, lang).name) for x, _, _ in _sights(guide) if x not in walked_xids]
        assert not any(f"<b>{name}</b>" in walk.text for name in others)
        order = [near[names.index(name)] for name in shown]
        best = min(
            sum(distance_m(a, b) for a, b in itertools.pairwise([start, *[GeoPoint(s[1], s[2]) for s in p], start]))
            for p in itertools.permutations(near)
        )
        walked = [start, *[GeoPoint(s[1], s[2]) for s in order], start]
        assert sum(distance_m(a, b) for a, b in itertools.pairwise(walked)) == pytest.approx(best)
        url = walk.params["reply_markup"]["inline_keyboard"][0][0]["url"]
        assert url.startswith("https://www.google.com/maps/dir/?api=1&") and "travelmode=walking" in url
        waypoints = re.search(r"waypoints=([^&]+)", url).group(1).split("%7C")
        assert waypoints == [f"{s[1]:.6f},{s[2]:.6f}" for s in order]  # all of them, in walking order


async def test_the_walk_button_under_the_nearby_list_and_a_walk_far_from_everything(speaking) -> None:
    fake, guide, _ = speaking
    _, lat, lon = _sights(guide)[1]
    await fake.send(970, location={"latitude": lat, "longitude": lon})
    nearby = (await fake.wait_replies(970))[0]
    await fake.press_button(970, _button(nearby, "🚶")["callback_data"], nearby)
    walk = (await fake.wait_replies(970, 2))[1]
    assert walk.text.startswith("🚶 A walk through") and "In all " in walk.text and "on foot" in walk.text
    await fake.send(971, location={"latitude": -33.8688, "longitude": 151.2093})  # Sydney
    await fake.wait_replies(971)
    await fake.send(971, text="/walk")
    assert (await fake.wait_replies(971, 2))[1].text == text("walk_none", "en", distance="2.5 km")


async def test_a_moving_live_location_brings_each_sights_card_once_and_stops_when_the_sharing_ends(speaking) -> None:
    fake, guide, _ = speaking
    sights = _sights(guide)
    (a, alat, alon), (b, blat, blon), (c, clat, clon) = sights[0], sights[1], sights[2]

    def within_60_m(lat: float, lon: float) -> set[str]:
        return {x for x, y, z in sights if distance_m(GeoPoint(lat, lon), GeoPoint(y, z)) <= 60}

    user, now = 980, time.time()
    message = await fake.share_live_location(user, alat + 0.01, alon, period=3600, at=now)  # ~1.1 km north of A
    assert (await fake.wait_replies(user))[0].text == text("live_following", "en")

    async def move(lat: float, lon: float, after: float, **kw) -> None:
        await fake.move_live_location(user, message, lat, lon, at=now + after, **kw)

    await move(alat + 0.0003, alon, 600)  # 33 m from A
    card = (await fake.wait_replies(user, 2))[1]
    assert card.text.startswith("📍 You are at:") and _button(card, "🔊") and _button(card, "🗣")
    for second in range(1, 31):  # every second, still near A: nothing more
        await move(alat + 0.0002, alon + 0.00001 * second, 600 + second)
    assert distance_m(GeoPoint(alat, alon), GeoPoint(clat, clon)) > 200 and c not in within_60_m(blat, blon)
    await move(clat, clon, 632)  # onto C, hundreds of metres in a second: a GPS jump, no card for C
    await move(blat, blon, 1400)  # walked to B
    await move(alat, alon, 2200)  # back at A: its card came once already
    await move(clat, clon, 2300, period=None)  # the sharing ends here: Telegram's last edit
    await move(clat, clon, 2310)  # a stray edit after the end
    await fake.send(user, text="/start")
    expected = within_60_m(alat + 0.0003, alon) | within_60_m(blat, blon)
    await fake.wait_replies(user, 2 + len(expected))
    await asyncio.sleep(0.3)  # anything sent late would show now
    cards = [r.text for r in fake.replies(user) if r.text.startswith("📍 You are at:")]
    names = {x: guide.index.describe(x, "en").name for x, _, _ in sights}
    assert sorted(n for x, n in names.items() if any(f"<b>{escape(n)}</b>" in t for t in cards)) == sorted(
        names[x] for x in expected
    )
    assert len(cards) == len(expected) and {a, b} <= expected and c not in expected  # each once


async def test_a_live_location_far_from_every_sight_is_followed_and_says_so_once(speaking) -> None:
    fake, _, _ = speaking
    message = await fake.share_live_location(995, -33.8688, 151.2093)  # Sydney
    following, far = await fake.wait_replies(995, 2)
    assert following.text == text("live_following", "en") and far.text.startswith("📍 No landmark I know is near")
    await fake.move_live_location(995, message, -33.8690, 151.2093, at=time.time() + 30)
    await fake.send(995, text="/start")
    assert len(await fake.wait_replies(995, 3)) == 3  # the move itself says nothing more


async def test_live_location_stops_after_forget_and_is_never_followed_for_a_stranger(speaking) -> None:
    fake, guide, _ = speaking
    (_, alat, alon), (_, blat, blon) = _sights(guide)[0], _sights(guide)[1]
    message = await fake.share_live_location(990, alat + 0.01, alon)
    await fake.wait_replies(990)
    await fake.send(990, text="/forget")
    await fake.wait_replies(990, 2)
    await fake.move_live_location(990, message, alat, alon, at=time.time() + 300)
    await fake.move_live_location(991, 12345, blat, blon)  # a sharing this bot never saw begin
    await fake.send(990, text="/start")
    await fake.send(991, text="/start")
    await fake.wait_replies(990, 3)
    await fake.wait_replies(991, 1)
    assert not any(r.text.startswith("📍 You are at:") for r in fake.replies(990) + fake.replies(991))


async def test_a_piper_voice_narrates_its_language_and_about_credits_its_licence(
    fake, built_dataset, model_dirs, guide, tmp_path
) -> None:
    from prep.random_models import build_piper_voice

    build_piper_voice(tmp_path / "voices", "de_DE-random-medium", "de", "de")
    settings = bot_settings(
        fake, built_dataset, model_dirs, bot_state_file=tmp_path / "s.json", artifacts_dir=tmp_path / "a",
        voices_dir=tmp_path / "voices",
    )  # fmt: skip
    async with running_bot(settings, guide):
        for user, lang in ((1001, "de"), (1002, "en")):
            card = await _card(fake, guide, user, lang)
            await fake.press_button(user, _button(card, "🔊")["callback_data"], card, language_code=lang)
            await _voices(fake, user, 1)
        await fake.send(1003, text="/about", language_code="de")
        about = (await fake.wait_replies(1003))[0].text
    german, english = (fake.sent("sendVoice", u)[0].files["voice"] for u in (1001, 1002))
    assert _duration(german) > 1 and _duration(english) > 1
    # The German story was made with the Piper voice: it is kept under the key that names that voice.
    lines = story(guide.index.describe(_first(guide), "de"), "de")
    with_piper, espeak_only = Voices(voices_dir=tmp_path / "voices").key(lines), Voices().key(lines)
    assert (tmp_path / "a" / "voices" / f"{with_piper}.ogg").read_bytes() == german
    assert not (tmp_path / "a" / "voices" / f"{espeak_only}.ogg").exists()
    assert "espeak-ng (GPL-3.0)" in about and "de_DE-random-medium (CC0 (random weights, for tests))" in about
    assert about.splitlines()[-1].startswith("🔊 <b>Stimmen:</b>")
    assert len(list((tmp_path / "a" / "voices").glob("*.ogg"))) == 2
