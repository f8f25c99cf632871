import pytest

from bot.i18n import catalog
from bot.texts import (
    CAPTION_LIMIT,
    category_name,
    format_card,
    format_others,
    format_search_fallback,
    language_for,
    map_url,
    merged_categories,
    route_url,
    text,
)
from core.catalog import Landmark
from core.enrichment import Enrichment, LandmarkInfo, describe
from core.ranking import vote
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
        ("de", "de"),
        ("de-AT", "de"),
        ("zh-hans", "zh-Hans"),
        ("zh-hant", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("ar-EG", "ar"),
        ("fa", "fa"),
        ("tr", "tr"),
        ("pt-br", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_default_language_follows_the_client(code, lang) -> None:
    assert language_for(code) == lang


def test_every_kind_of_the_real_places_files_has_a_human_name() -> None:
    kinds = set()
    for city in ("EKB", "NN", "Vladimir", "Yaroslavl"):
        for row in read_fixture_places(city)[1]:
            kinds |= {k.strip() for k in row["Kind"].split(",")}
    missing = {kind for kind in kinds if not catalog("en").has(f"kind:{kind}")} - {"interesting_places"}
    assert not missing
    assert category_name("churches", "ru") == "Церкви" and category_name("churches", "en") == "Churches"
    assert category_name("brand_new_kind", "en") == "Brand new kind"


ENRICHED = Enrichment(
    {
        "C1": LandmarkInfo(
            {"en": "Church on the Blood"},
            frozenset(),
            {"en": "A church. " * 300},
            {"en": "https://en.wikipedia.org/wiki/C"},
        )
    },
    {"Екатеринбург": {"en": "Yekaterinburg"}},
)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_card_names_the_landmark_in_the_users_language_within_the_caption_limit(lang) -> None:
    result = vote([0.95, 0.9, 0.5], ["C1", "C1", "B1"], LANDMARKS)
    card = describe(CHURCH, ENRICHED, lang)
    caption = format_card(result, card, lang)
    lines = caption.splitlines()
    assert lines[0] == text("recognized", lang)
    if lang == "en":
        assert lines[1] == "<b>Church on the Blood</b> (Храм &lt;на&gt; Крови)" and lines[2].startswith(
            "Yekaterinburg · "
        )
        assert "<i>A church." in caption and caption.rstrip().endswith("…</i>")  # the long description is cut
    else:
        assert lines[1] == "<b>Храм &lt;на&gt; Крови</b>" and lines[2].startswith("Екатеринбург · ")
    visible = caption.replace("<b>", "").replace("</b>", "").replace("<i>", "").replace("</i>", "")
    assert len(visible) <= CAPTION_LIMIT and caption.count("<i>") == caption.count("</i>")


def test_a_russian_name_without_an_english_label_is_transliterated_and_marked() -> None:
    tower = Landmark("T1", "Водонапорная башня", "Нижний Новгород", kinds=("towers",))
    card = describe(tower, Enrichment(), "en")
    assert card.transliterated and card.name == "Vodonapornaya bashnya" and card.city == "Nizhny Novgorod"
    result = vote([0.95], ["T1"], {"T1": tower})
    assert "(transliterated)" in format_card(result, card, "en")


@pytest.mark.parametrize("lang", ["en", "zh-Hans", "ar", "de"])
def test_a_french_or_polish_name_from_the_dataset_is_no_transliteration(lang) -> None:
    """The published Yaroslavl and Vladimir rows hold Polish and French names: they read as they are."""
    for name in ("Cerkiew św. Dymitra Sołuńskiego w Jarosławiu", "église arménienne de Vladimir", "Bridge & Co"):
        church = Landmark("Q1", name, "Ярославль", kinds=("churches",))
        card = describe(church, Enrichment(), lang)
        assert card.name == name and not card.transliterated and not card.fallback
        caption = format_card(vote([0.95], ["Q1"], {"Q1": church}), card, lang)
        assert text("transliterated", lang) not in caption


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_others_list_the_rest_and_human_categories(lang) -> None:
    result = vote([0.95, 0.9, 0.5], ["C1", "C1", "B1"], LANDMARKS)
    cards = [describe(h.landmark, Enrichment(), lang) for h in result.landmarks]
    others = format_others(result, cards, lang, skip_first=True)
    assert others.splitlines()[0] == text("also", lang) and "2. " in others and "1. " not in others
    assert ("Церкви" if lang == "ru" else "Churches") in others
    assert "churches" not in others and "interesting" not in others.lower()


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_unsure_answer_says_so_and_still_guesses(lang) -> None:
    result = vote([0.3], ["B1"], LANDMARKS)
    cards = [describe(BRIDGE, Enrichment(), lang)]
    reply = format_others(result, cards, lang, skip_first=False)
    assert reply.splitlines()[0] == text("not_sure", lang) and "1. " in reply and "<b>" not in reply.splitlines()[1]


def test_kinds_with_the_same_label_render_once() -> None:
    """«Другие храмы 66 %, Другие храмы 10 %» was other_churches and other_temples."""
    twins = {
        "T1": Landmark("T1", "t", "c", kinds=("other_churches",)),
        "T2": Landmark("T2", "u", "c", kinds=("other_temples",)),
    }
    result = vote([0.9, 0.85], ["T1", "T2"], twins)
    assert {c.category for c in result.categories} == {"other_churches", "other_temples"}
    merged = merged_categories(result, "ru")
    assert [label for label, _ in merged] == ["Другие храмы"]
    assert merged[0][1] == max(c.score for c in result.categories)


@pytest.mark.parametrize("lang", ["en", "zh-Hans", "ar", "de"])
def test_a_kind_beside_a_wider_one_that_names_it_is_shown_once(lang) -> None:
    """Issue #32: "Monuments 60 %, Monuments and memorials 55 %" from the dataset's two kinds."""
    pair = {
        "M1": Landmark("M1", "m", "c", kinds=("monuments", "monuments_and_memorials")),
        "M2": Landmark("M2", "n", "c", kinds=("monuments_and_memorials",)),
    }
    result = vote([0.9, 0.85], ["M1", "M2"], pair)
    labels = [label for label, _ in merged_categories(result, lang)]
    assert labels == [text("kind:monuments_and_memorials", lang)]


def test_links_come_from_coordinates_and_osm() -> None:
    assert map_url(CHURCH) == "https://www.openstreetmap.org/?mlat=56.844000&mlon=60.609000#map=17/56.844000/60.609000"
    assert map_url(Landmark("X", "x", "y", osm="node/5")) == "https://www.openstreetmap.org/node/5"
    assert map_url(BRIDGE) is None
    assert route_url(CHURCH, (56.8, 60.6)).endswith("route=56.800000%2C60.600000%3B56.844000%2C60.609000")
    assert route_url(CHURCH, None).endswith("route=%3B56.844000%2C60.609000") and route_url(BRIDGE, None) is None


def test_search_fallback_text() -> None:
    assert "Bridge &amp; Co, Нижний Новгород" in format_search_fallback([("Bridge & Co", "Нижний Новгород")], "en")
    assert format_search_fallback([], "ru") == text("nothing_found", "ru")


def test_a_name_from_another_language_is_marked_with_that_language() -> None:
    card = describe(CHURCH, ENRICHED, "de")  # no German label: the English one, marked
    assert card.name == "Church on the Blood" and card.fallback == "en"
    result = vote([0.95], ["C1"], LANDMARKS)
    caption = format_card(result, card, "de")
    assert "<b>Church on the Blood</b>" in caption and "<i>(englischer Name)</i>" in caption
    assert "Yekaterinburg" in caption and "\xa0%" in caption  # the city along the chain; German percent


@pytest.mark.parametrize("lang", ["ar", "fa"])
def test_names_inside_right_to_left_answers_are_isolated(lang) -> None:
    result = vote([0.95, 0.9, 0.5], ["C1", "C1", "B1"], LANDMARKS)
    cards = [describe(h.landmark, ENRICHED, lang) for h in result.landmarks]
    caption = format_card(result, cards[0], lang)
    assert "<b>\u2068Church on the Blood\u2069</b>" in caption  # the English name, isolated
    others = format_others(result, cards, lang, skip_first=True)
    assert "\u2068" in others and others.count("\u2068") == others.count("\u2069")
    assert "\u2068" not in format_card(result, describe(CHURCH, ENRICHED, "de"), "de")


@pytest.mark.parametrize(("lang", "expected"), [("de", "Gemeinfrei"), ("zh-Hans", "公有领域"), ("ar", "ملكية عامة")])
def test_licence_names_are_in_the_readers_language_where_a_translation_exists(lang, expected) -> None:
    from bot.texts import credit_line
    from core.dataset import PhotoCredit

    public = PhotoCredit("Ann", "Public domain", "", "https://commons.wikimedia.org/wiki/File:A.jpg")
    assert expected in credit_line(public, lang) and "Public domain" not in credit_line(public, lang)
    free = PhotoCredit("Ann", "CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0", "")
    assert ">CC BY-SA 4.0</a>" in credit_line(free, lang)  # a licence's own short name stays as it is
