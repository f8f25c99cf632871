import pytest

from bot.texts import (
    CATEGORY_NAMES,
    MESSAGES,
    category_name,
    format_recognition,
    format_search_fallback,
    language_for,
    map_url,
    text,
    wikidata_url,
)
from core.catalog import Landmark
from core.ranking import NO_RESULT, vote
from tests.helpers.datagen import read_fixture_places

CHURCH = Landmark(
    "C1",
    "Храм <на> Крови",
    "Екатеринбург",
    kinds=("religion", "churches", "interesting_places"),
    lat=56.844,
    lon=60.609,
    wikidata="Q1",
    osm="way/1",
)
BRIDGE = Landmark("B1", "Bridge & Co", "Нижний Новгород", kinds=("architecture", "bridges"))
LANDMARKS = {lm.xid: lm for lm in (CHURCH, BRIDGE)}


@pytest.mark.parametrize(
    ("code", "lang"),
    [
        ("ru", "ru"),
        ("uk", "ru"),
        ("be", "ru"),
        ("kk", "ru"),
        ("ru-RU", "ru"),
        ("en", "en"),
        ("de", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_default_language_follows_the_client(code, lang) -> None:
    assert language_for(code) == lang


def test_every_message_exists_in_both_languages() -> None:
    for key, variants in MESSAGES.items():
        assert set(variants) == {"ru", "en"} and all(variants.values()), key


def test_every_kind_of_the_real_places_files_has_a_human_name() -> None:
    kinds = set()
    for city in ("EKB", "NN", "Vladimir", "Yaroslavl"):
        for row in read_fixture_places(city)[1]:
            kinds |= {k.strip() for k in row["Kind"].split(",")}
    missing = kinds - set(CATEGORY_NAMES) - {"interesting_places"}
    assert not missing
    assert category_name("churches", "ru") == "Церкви" and category_name("churches", "en") == "Churches"
    assert category_name("brand_new_kind", "en") == "Brand new kind"


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_confident_answer_lists_landmarks_and_human_categories(lang) -> None:
    result = vote([0.95, 0.9, 0.5], ["C1", "C1", "B1"], LANDMARKS)
    reply = format_recognition(result, lang)
    lines = reply.splitlines()
    assert lines[0] == text("recognized", lang)
    assert lines[1].startswith("1. <b>Храм &lt;на&gt; Крови</b>, Екатеринбург — ")  # HTML-escaped
    assert "Bridge &amp; Co" in lines[2]
    assert ("Церкви" if lang == "ru" else "Churches") in reply
    assert "churches" not in reply and "interesting" not in reply.lower()


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_unsure_answer_says_so_and_still_guesses(lang) -> None:
    result = vote([0.3], ["B1"], LANDMARKS)
    reply = format_recognition(result, lang)
    assert reply.splitlines()[0] == text("not_sure", lang) and "Bridge" in reply and "<b>" not in reply.splitlines()[1]
    assert format_recognition(NO_RESULT, lang) == text("nothing_found", lang)


def test_links_come_from_coordinates_osm_and_wikidata() -> None:
    assert map_url(CHURCH) == "https://www.openstreetmap.org/?mlat=56.844000&mlon=60.609000#map=17/56.844000/60.609000"
    assert map_url(Landmark("X", "x", "y", osm="node/5")) == "https://www.openstreetmap.org/node/5"
    assert map_url(BRIDGE) is None
    assert wikidata_url(CHURCH) == "https://www.wikidata.org/wiki/Q1" and wikidata_url(BRIDGE) is None


def test_search_fallback_text() -> None:
    assert "Bridge &amp; Co, Нижний Новгород" in format_search_fallback([("Bridge & Co", "Нижний Новгород")], "en")
    assert format_search_fallback([], "ru") == text("nothing_found", "ru")
