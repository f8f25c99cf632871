"""The landmark card in the user's language (issue #12), the honest greeting, text search that can say no."""

from __future__ import annotations

from html import escape

import pytest

from core import Guide
from core.catalog import Landmark
from core.dataset import Dataset, PhotoCredit
from core.enrichment import Enrichment, LandmarkInfo
from tests.helpers.bot import bot_settings, running_bot, serving_built, wait_answers

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not

DESCRIPTION_RU = "Стадион и спортивный комплекс в стиле конструктивизма, построен в 1934 году."
CREDIT = PhotoCredit(
    "Ann <Example> & Co",
    "CC BY-SA 4.0",
    "https://creativecommons.org/licenses/by-sa/4.0",
    "https://commons.wikimedia.org/wiki/File:Dynamo.jpg",
)
CREDIT_HTML = (
    '<a href="https://commons.wikimedia.org/wiki/File:Dynamo.jpg">Ann &lt;Example&gt; &amp; Co</a>, '
    '<a href="https://creativecommons.org/licenses/by-sa/4.0">CC BY-SA 4.0</a>'
)


@pytest.fixture
async def enriched_bot(fake, built_dataset, model_dirs, encoders, tmp_path):
    """The shared dataset with an English label, description and link for landmark 0, and the published
    Russian description of it, built into an index and served."""
    dataset = built_dataset.copy_to(tmp_path)
    catalog = Dataset(dataset.data_dir)
    landmarks = catalog.landmarks()
    first = next(lm for lm in landmarks.values() if lm.name == built_dataset.names["EKB"][0])
    catalog.write_landmarks(
        [
            Landmark(**{**lm.__dict__, "description": DESCRIPTION_RU}) if lm.xid == first.xid else lm
            for lm in landmarks.values()
        ]
    )
    info = LandmarkInfo(
        names={"en": "Dynamo Stadium"},
        descriptions={"en": "A constructivist sports complex on the river bank. Built in 1934."},
        wikipedia={"en": "https://en.wikipedia.org/wiki/Dynamo_Stadium", "ru": "https://ru.wikipedia.org/wiki/Динамо"},
    )
    catalog.write_enrichment(Enrichment({first.xid: info}, {"Екатеринбург": {"en": "Yekaterinburg"}}))
    # Landmark 0's photos came from Commons: each needs its author and licence wherever it is shown.
    credits = {p.path: CREDIT for p in catalog.photos() if p.xid == first.xid}
    catalog.record_attribution(credits)
    async with serving_built(fake, dataset, model_dirs, encoders, tmp_path / "state.json") as guide:
        yield fake, first, guide


def _photo_of(guide: Guide, xid: str) -> bytes:
    """A dataset photo of the landmark (the tiny random model is not reliable on fresh views of every one)."""
    return guide.index.photo_path(guide.index.photos_of(xid)[0], guide.data_dir).read_bytes()


async def test_an_english_user_gets_the_english_card_with_photo_and_wikipedia(enriched_bot) -> None:
    fake, first, guide = enriched_bot
    photo = _photo_of(guide, first.xid)
    assert guide.recognize(photo).landmarks[0].xid == first.xid
    await fake.send_photo(501, photo, language_code="en")
    card = (await wait_answers(fake, 501))[0]
    lines = card.text.splitlines()
    assert card.method == "sendPhoto" and lines[1] == f"<b>Dynamo Stadium</b> ({escape(first.name)})"
    assert lines[2].startswith("Yekaterinburg · ") and "<i>A constructivist sports complex" in card.text
    assert card.files["photo"][:2] == b"\xff\xd8"
    assert lines[-1] == f"Photo: {CREDIT_HTML}"  # the matched photo is a Commons one: credited, linked
    buttons = {b["text"]: b for row in card.params["reply_markup"]["inline_keyboard"] for b in row}
    assert buttons["📖 Wikipedia"]["url"] == "https://en.wikipedia.org/wiki/Dynamo_Stadium"
    assert set(buttons) == {
        "🔊 Listen",
        "🗣 Show a local",
        "🗺 Map",
        "🧭 Route",
        "📖 Wikipedia",
        "🖼 More photos",
        "✓ Right",
        "✗ Wrong",
    }


async def test_a_russian_user_sees_the_published_description(enriched_bot) -> None:
    fake, first, _ = enriched_bot
    await fake.send_photo(502, _photo_of(enriched_bot[2], first.xid), language_code="ru")
    card = (await wait_answers(fake, 502))[0]
    assert card.text.splitlines()[1] == f"<b>{escape(first.name)}</b>" and f"<i>{DESCRIPTION_RU}</i>" in card.text
    buttons = {b["text"]: b for row in card.params["reply_markup"]["inline_keyboard"] for b in row}
    assert buttons["📖 Википедия"]["url"] == "https://ru.wikipedia.org/wiki/Динамо"


async def test_albums_credit_their_photos_and_about_names_the_sources(enriched_bot) -> None:
    fake, first, guide = enriched_bot
    await fake.send_photo(506, _photo_of(guide, first.xid), language_code="de")
    card = (await wait_answers(fake, 506))[0]
    assert card.text.splitlines()[-1] == f"Foto: {CREDIT_HTML}"
    await fake.press_button(506, f"more:{first.xid}", card, language_code="de")
    album = (await fake.wait_for(lambda: fake.sent("sendMediaGroup", 506)))[0]
    for item in album.params["media"]:
        assert item["parse_mode"] == "HTML" and item["caption"].endswith(f"\nFoto: {CREDIT_HTML}")
    await fake.send(506, text="/about", language_code="de")
    about = (await fake.wait_for(lambda: [r for r in fake.replies(506) if "Wikimedia Commons" in r.text]))[0]
    assert about.text.startswith("<b>Woher die Daten stammen</b>") and "CC0" in about.text and "ODbL" in about.text
    assert "DINOv2" not in about.text  # no place tower answers here: none credited


async def test_an_album_speaks_the_users_language(enriched_bot) -> None:
    fake, first, _ = enriched_bot
    await fake.send(503, text="Динамо", language_code="en")
    album = (await fake.wait_for(lambda: fake.sent("sendMediaGroup", 503)))[0]
    captions = [item["caption"] for item in album.params["media"]]
    assert all("Yekaterinburg" in c or "Nizhny Novgorod" in c for c in captions)
    assert not any(ch in "".join(captions) for ch in "абвгдеёжзийклмнопрстуфхцчшщыэюя")


async def test_the_greeting_names_only_the_index_cities(enriched_bot) -> None:
    fake, _, guide = enriched_bot
    await fake.send(504, text="/start", language_code="en")
    greeting = (await fake.wait_replies(504))[0].text
    assert "Yekaterinburg and Nizhny Novgorod: 14 places" in greeting
    assert "Vladimir" not in greeting and "Yaroslavl" not in greeting
    names = {guide.index.describe(xid, "en").name for xid in guide.index.landmarks}
    assert any(f"“{name}”" in greeting for name in names)  # the example comes from the index
    await fake.send(504, text="/help", language_code="ru")
    help_ = (await fake.wait_replies(504, 2))[-1].text
    assert "Екатеринбург и Нижний Новгород" in help_ and "Владимир" not in help_


async def test_a_query_that_matches_nothing_well_says_so(
    fake, built_dataset, model_dirs, shared_guide, tmp_path
) -> None:
    from core import Guide

    # The guide decides what "well" means: its TEXT_MATCH_THRESHOLD, else the index's calibration.
    picky = Guide(shared_guide.index, shared_guide.image_encoder, shared_guide.text_encoder, text_match_threshold=0.99)
    settings = bot_settings(fake, built_dataset, model_dirs, bot_state_file=tmp_path / "s")
    async with running_bot(settings, picky):
        await fake.send(505, text="золотой купол на закате", language_code="ru")
        note, album = await fake.wait_replies(505, 2)
    assert note.text.startswith("Ничего не подходит хорошо") and len(album.params["media"]) == 3
