"""What counts as asking what is near (bot/nearby_intent.py): free wordings in every language, never a
photo search; descriptive searches that mention nearness stay searches (issue #32)."""

from __future__ import annotations

import pytest

from bot.nearby_intent import asks_what_is_nearby

ASKED = [
    "ماذا يوجد بالقرب مني؟",
    "مالذي يوجد حولي",
    "این نزدیکی چه چیزی هست؟",
    "yakınlarda ne var",
    "Was gibt es hier in der Nähe?",
    "Gibt es hier in der Nähe etwas zu sehen?",
    "我附近有啥好玩的",
    "附近有什么好玩的地方",
    "anything cool around here?",
    "places close to me",
    "что интересного поблизости",
    "чем заняться в округе?",
    "рядом",
    "Nearby",
]
SEARCHED = [
    "белый собор у реки",
    "Church near the river at sunset with golden domes",
    "a white cathedral close to the river at sunset with domes",
    "Dynamo Stadium",
    "Золотые ворота",
    "金门",
    "Kathedrale am Fluss",
    "закат над Волгой и старый мост рядом с набережной вечером",
]


@pytest.mark.parametrize("text", ASKED)
def test_a_short_question_about_nearness_asks_for_the_nearby_list(text: str) -> None:
    assert asks_what_is_nearby(text)


@pytest.mark.parametrize("text", SEARCHED)
def test_a_description_is_a_photo_search_even_when_it_mentions_nearness(text: str) -> None:
    assert not asks_what_is_nearby(text)
