"""What 🔊 says, in which voice (issue #33): the language of the text the card shows, line by line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bot.narration import local_words, story
from bot.state import LiveSharing, UserState, parse_state, render_state
from bot.texts import text
from bot.voice_ids import VoiceFileIds
from core import Enrichment, Landmark, LandmarkInfo, Line
from core.enrichment import describe

STADIUM = Landmark("W1", "Стадион «Динамо»", "Екатеринбург", lat=56.8454, lon=60.6003)
INFO = LandmarkInfo(
    names={"en": "Dynamo Stadium", "de": "Dynamo-Stadion"},
    descriptions={"en": "A constructivist sports complex.", "de": "Ein Sportkomplex."},
)


def test_the_story_is_said_in_the_language_each_text_is_in() -> None:
    enrichment = Enrichment({"W1": INFO})
    german = story(describe(STADIUM, enrichment, "de"), "de")
    this_is = text("narration_this_is", "de", name="Dynamo-Stadion")
    assert german == [Line("de", this_is), Line("de", "Ein Sportkomplex.")]
    # No Chinese name or description: a Chinese intro, then the English name and story in the English voice.
    chinese = story(describe(STADIUM, enrichment, "zh-Hans"), "zh-Hans")
    assert chinese == [
        Line("zh-Hans", text("narration_intro", "zh-Hans")),
        Line("en", "Dynamo Stadium."),
        Line("en", "A constructivist sports complex."),
    ]
    # Nothing but the dataset's name: a transliteration is said from its Russian original, in Russian.
    bare = story(describe(STADIUM, Enrichment(), "tr"), "tr")
    assert bare == [
        Line("tr", text("narration_intro", "tr")),
        Line("ru", "Стадион «Динамо»."),
        Line("tr", text("narration_no_story", "tr")),
    ]
    assert local_words(STADIUM) == [Line("ru", f"Стадион «Динамо», Екатеринбург. {text('local_ask', 'ru')}")]
    ask = text("local_ask", "ru")
    said = f"Стадион «Динамо», ул. Ерёмина, 12, Екатеринбург. {ask}"
    assert local_words(STADIUM, "ул. Ерёмина, 12") == [Line("ru", said)]


def test_a_long_description_is_cut_to_a_story_of_a_minute_or_two() -> None:
    long = LandmarkInfo(descriptions={"en": "It was built in the twelfth century by masters from afar. " * 60})
    said = story(describe(STADIUM, Enrichment({"W1": long}), "en"), "en")[-1].text
    assert 900 < len(said) <= 1200 and said.endswith(".")


def test_a_followed_live_location_survives_a_restart_and_forget_leaves_nothing(tmp_path: Path) -> None:
    live = LiveSharing(1042, 1_900_000_000.0, ("W1", "N2"), (56.8, 60.6, 1_899_999_000.0))
    users = parse_state(render_state({7: UserState(lang="de", live=live), 8: UserState()}))
    assert users[7].live == live and users[7].wants_walk is False and 8 not in users
    damaged = {"version": 1, "users": {"9": {"live": {"message_id": "x"}}, "10": {"live": [1, 2]}}}
    assert all(u.live is None for u in parse_state(json.dumps(damaged).encode()).values())


def test_file_ids_are_the_uploading_bots_own_and_a_damaged_store_is_set_aside(tmp_path: Path, caplog) -> None:
    path = tmp_path / "voices" / "telegram_file_ids.json"
    ids = VoiceFileIds(path, bot_id=42)
    ids.remember("a" * 32, "voice-1")
    assert VoiceFileIds(path, bot_id=42).get("a" * 32) == "voice-1"
    assert VoiceFileIds(path, bot_id=43).get("a" * 32) is None  # another bot cannot send this id
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert VoiceFileIds(path, bot_id=42).get("a" * 32) is None
    assert "set aside" in caplog.text and list(tmp_path.glob("voices/telegram_file_ids.json.damaged-*"))
    (tmp_path / "blocked").write_text("")  # a disk that takes nothing: the id lives in memory, said once
    blocked = VoiceFileIds(tmp_path / "blocked" / "ids.json", bot_id=42)
    with caplog.at_level(logging.WARNING):
        blocked.remember("b" * 32, "voice-2")
        blocked.remember("c" * 32, "voice-3")
    assert blocked.get("b" * 32) == "voice-2" and caplog.text.count("not saved") == 1
