"""A foreign tourist's guide (issue #32), through the real bot against the fake Bot API, in Chinese, Arabic
and German: their city names, the fallback marker in their language, nearness asked in their own words,
text search that admits a miss, shares that add up, lists, numbers and directions as they write them."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from html import escape

import pytest

from bot.texts import text
from core import Guide, PhotoIndex
from core.calibration import TextCalibration
from core.dataset import Dataset
from core.enrichment import Enrichment, LandmarkInfo
from tests.helpers.bot import serving_built, wait_answers

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not

LANGS = ("zh-Hans", "ar", "de")
CITY_NAMES = {
    "Екатеринбург": {"en": "Yekaterinburg", "zh-Hans": "叶卡捷琳堡", "ar": "يكاترينبورغ", "de": "Jekaterinburg"},
    "Нижний Новгород": {
        "en": "Nizhny Novgorod",
        "zh-Hans": "下诺夫哥罗德",
        "ar": "نيجني نوفغورود",
        "de": "Nischni Nowgorod",
    },
}
# Phrasings of "what is near me?" that are in no catalog.
NEARBY_ASKED = {
    "zh-Hans": "我附近有啥好玩的？",
    "ar": "شو في أماكن قريبة مني؟",
    "de": "Gibt's hier in der Nähe was zu sehen?",
    "ru": "а что интересного поблизости",
    "en": "anything worth seeing around here?",
    "tr": "yakınlarda gezilecek ne var",
    "fa": "این اطراف چی دیدنی هست؟",
}
PERCENT = re.compile(r"(\d+)\s?‎?%|%(\d+)")


@pytest.fixture
async def foreign_bot(fake, built_dataset, model_dirs, encoders, tmp_path):
    """Landmark 0 named in English only, both cities named in every test language, and an index whose
    text calibration reaches no threshold (as on a dataset whose names search poorly)."""
    dataset = built_dataset.copy_to(tmp_path)
    catalog = Dataset(dataset.data_dir)
    first = next(lm for lm in catalog.landmarks().values() if lm.name == built_dataset.names["EKB"][0])
    catalog.write_enrichment(Enrichment({first.xid: LandmarkInfo(names={"en": "Dynamo Stadium"})}, CITY_NAMES))
    unreached = TextCalibration(40, 10, 0.5, ((0.1, 0.6, 1.0), (0.2, 0.7, 0.5), (0.3, 0.8, 0.1)))

    def without_a_text_threshold(index: PhotoIndex) -> None:
        index.text_calibration = unreached

    async with serving_built(
        fake, dataset, model_dirs, encoders, tmp_path / "state.json", without_a_text_threshold
    ) as guide:
        yield fake, first, guide


def _photo_of(guide: Guide, xid: str) -> bytes:
    return guide.index.photo_path(guide.index.photos_of(xid)[0], guide.data_dir).read_bytes()


@pytest.mark.parametrize("lang", LANGS)
async def test_cities_are_named_in_the_tourists_language_in_the_greeting_and_the_card(foreign_bot, lang) -> None:
    fake, first, guide = foreign_bot
    user = 700 + LANGS.index(lang)
    await fake.send(user, text="/start", language_code=lang)
    greeting = (await fake.wait_replies(user))[0].text
    assert CITY_NAMES["Екатеринбург"][lang] in greeting and CITY_NAMES["Нижний Новгород"][lang] in greeting
    assert "Yekaterinburg" not in greeting and "Nizhny" not in greeting
    await fake.send_photo(user, _photo_of(guide, first.xid), language_code=lang)
    card = (await wait_answers(fake, user, 2))[-1]  # after the greeting
    assert card.method == "sendPhoto" and card.text.splitlines()[2].startswith(CITY_NAMES["Екатеринбург"][lang])


@pytest.mark.parametrize("lang", LANGS)
async def test_a_name_in_english_is_marked_in_the_readers_language(foreign_bot, lang) -> None:
    fake, first, guide = foreign_bot
    user = 710 + LANGS.index(lang)
    await fake.send_photo(user, _photo_of(guide, first.xid), language_code=lang)
    title = (await wait_answers(fake, user))[0].text.splitlines()[1]
    marker = text("name_in:en", lang)
    assert "Dynamo Stadium" in title and f"<i>({marker})</i>" in title and escape(first.name) in title
    assert "English" not in title  # no language name spliced in from code


@pytest.mark.parametrize("lang", LANGS)
async def test_the_shares_of_one_photo_add_up_to_at_most_100_and_none_reads_0(foreign_bot, lang) -> None:
    fake, first, guide = foreign_bot
    user = 720 + LANGS.index(lang)
    categories = text("categories", lang)
    for view in range(3):  # other landmarks' photos too: answers with and without a card
        xid = list(guide.index.indexed_xids)[view * 3]
        await fake.send_photo(user, _photo_of(guide, xid), language_code=lang)
        await fake.wait_for(lambda done=view: len([r for r in fake.replies(user) if categories in r.text]) > done)
    answered = _answers(fake.replies(user))
    assert len(answered) == 3
    for card, others in answered:
        shares = [int(a or b) for a, b in PERCENT.findall(card.splitlines()[2] if card else "")]
        candidates = [line for line in others.splitlines() if re.match(r"^\d\. ", line)]
        shares += [int(a or b) for line in candidates for a, b in PERCENT.findall(line.rsplit("—", 1)[-1])]
        assert sum(shares) <= 100 + len(shares), (card, others)  # each rounded: at most half a point off
        assert not re.search(r"(?<!\d)0\s?‎?%|%0(?!\d)", others + card)


def _answers(replies) -> list[tuple[str, str]]:
    """(card caption or "", the candidates list) per photo answer."""
    pairs, card = [], ""
    for reply in replies:
        if reply.method == "sendPhoto":
            card = reply.text
        elif re.search(r"^\d\. ", reply.text, re.M):
            pairs.append((card, reply.text))
            card = ""
    return pairs


@pytest.mark.parametrize("lang", [*LANGS, "ru", "en", "tr", "fa"])
async def test_what_is_near_asked_in_the_tourists_own_words_gets_the_nearby_list(foreign_bot, lang) -> None:
    fake, first, guide = foreign_bot
    user = 730 + list(NEARBY_ASKED).index(lang)
    await fake.send(user, language_code=lang, location={"latitude": first.lat + 0.002, "longitude": first.lon})
    await fake.wait_replies(user)
    await fake.send(user, text=NEARBY_ASKED[lang], language_code=lang)
    reply = (await fake.wait_replies(user, 2))[-1]
    assert reply.method == "sendMessage" and reply.text.startswith(text("near_you", lang)), reply.text
    assert not fake.sent("sendMediaGroup", user)
    directions = [text(f"dir:{d}", lang) for d in ("N", "NE", "E", "SE", "S", "SW", "W", "NW")]
    assert all("." not in d and d not in ("N", "NE", "SW", "С", "ЮЗ") for d in directions)  # words, not "ج.غ"
    assert text("dir:S", lang) in reply.text.splitlines()[1]  # the landmark lies 220 m to the south


@pytest.mark.parametrize("lang", LANGS)
async def test_text_search_admits_a_miss_when_no_threshold_reaches_the_precision(foreign_bot, lang) -> None:
    """The stored curve never reaches 90 %: every text answer says so and the closest photos are marked."""
    fake, _, _ = foreign_bot
    user = 750 + LANGS.index(lang)
    await fake.send(
        user,
        text={"zh-Hans": "弗拉基米尔的金门", "ar": "البوابة الذهبية", "de": "Goldenes Tor"}[lang],
        language_code=lang,
    )
    note = (await fake.wait_replies(user))[0]
    assert note.text == text("no_match", lang)
    album = (await fake.wait_for(lambda: fake.sent("sendMediaGroup", user)))[0]
    assert all(f"({text('closest_photo', lang)})" in item["caption"] for item in album.params["media"])


async def test_arabic_and_persian_lists_and_numbers_follow_cldr(foreign_bot) -> None:
    fake, first, guide = foreign_bot
    await fake.send_photo(760, _photo_of(guide, list(guide.index.indexed_xids)[4]), language_code="ar")
    await fake.wait_for(lambda: [r for r in fake.replies(760) if text("categories", "ar") in r.text], timeout=30)
    categories = next(r.text for r in fake.replies(760) if text("categories", "ar") in r.text).splitlines()[-1]
    assert ", " not in categories and ("، " in categories or categories.count("%") == 1)
    await fake.send(761, language_code="fa", location={"latitude": first.lat + 0.02, "longitude": first.lon})
    near = (await fake.wait_replies(761))[0].text
    assert re.search("[۰-۹]", near) and not re.search(r"\d\s?(m|km)\b", near)  # Persian digits (CLDR: arabext)


def test_the_fixture_marks_its_index_as_unreached() -> None:
    curve = TextCalibration(40, 10, 0.5, ((0.1, 0.6, 1.0),))
    assert curve.threshold(0.9) == math.inf and replace(curve, curve=((0.1, 0.95, 1.0),)).threshold(0.9) == 0.1
