"""A city's name in every language, from its Wikidata item: "Wladimir", "弗拉基米尔", "فلاديمير".

The dataset names its cities in Russian ("Владимир"). The city's item is found from its landmarks:
their "located in the administrative territorial entity" (P131) walked up, level by level, to the first
item with a label equal to the city's name; when no landmark has P131 (or the walk finds no such item),
by searching Wikidata for the name (`wbsearchentities`), keeping only an item with that label whose
coordinates lie within CITY_MATCH_KM of the city's landmarks (a search for "Владимир" also finds the
given name and a prince). The item's labels in the guide's languages are the city's names; a language
without one falls back at read time (core.enrichment.city_name) along its chain, then to transliteration.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from core import GeoPoint, language
from prep.wikimedia import WIKIDATA_BATCH, FetchError, WikiClient, item_ids, json_object, nested_text, statement_values

# How many P131 levels are walked up from a landmark (district → city district → city → region).
MAX_P131_LEVELS = 4
# A searched item is the city only when it lies this close to the city's landmarks.
CITY_MATCH_KM = 50.0
SEARCH_LIMIT = 7
KM_PER_DEGREE = 111.32


@dataclass(frozen=True)
class CityQuery:
    """What is known of a city before asking: its name as the dataset has it, the P131 items its
    landmarks name, and where its landmarks are."""

    name: str
    located_in: frozenset[str]
    centre: GeoPoint | None


def located_in(entities: Iterable[dict]) -> frozenset[str]:
    """The administrative units (P131) the given items say they lie in: where the walk up starts."""
    return frozenset(q for entity in entities for q in item_ids(statement_values(entity, "P131")))


def city_labels(client: WikiClient, city: CityQuery, langs: tuple[str, ...], failures: list[str]) -> dict[str, str]:
    """{language: name} from the city's Wikidata item ({} when it is not found); failed requests are
    appended to `failures` and leave the city as it was."""
    try:
        entity = _walk_up(client, city, langs) or _search(client, city, langs)
    except FetchError as exc:
        failures.append(f"city {city.name}: {exc}")
        return {}
    if entity is None:
        return {}
    return {lang: name for lang in langs if (name := _label(entity, lang))}


def _walk_up(client: WikiClient, city: CityQuery, langs: tuple[str, ...]) -> dict | None:
    frontier, seen = set(city.located_in), set[str]()
    for _ in range(MAX_P131_LEVELS):
        frontier -= seen
        if not frontier:
            return None
        seen |= frontier
        entities = _fetch(client, sorted(frontier), langs)
        for qid in sorted(entities):
            if _named(entities[qid], city.name):
                return entities[qid]
        frontier = {parent for entity in entities.values() for parent in item_ids(statement_values(entity, "P131"))}
    return None


def _search(client: WikiClient, city: CityQuery, langs: tuple[str, ...]) -> dict | None:
    params = {
        "action": "wbsearchentities",
        "search": city.name,
        "language": "ru",
        "uselang": "ru",
        "type": "item",
        "limit": str(SEARCH_LIMIT),
    }
    hits = client.action(client.settings.wikidata_api_url, params).get("search")
    ids = [str(h.get("id")) for h in hits or [] if isinstance(h, dict) and str(h.get("id", "")).startswith("Q")]
    entities = _fetch(client, ids, langs)
    for qid in ids:  # the search's own order: the best match first
        entity = entities.get(qid)
        if entity is not None and _named(entity, city.name) and _near(entity, city.centre):
            return entity
    return None


def _fetch(client: WikiClient, ids: list[str], langs: tuple[str, ...]) -> dict[str, dict]:
    entities: dict[str, dict] = {}
    for start in range(0, len(ids), WIKIDATA_BATCH):
        entities.update(client.entities(ids[start : start + WIKIDATA_BATCH], (*langs, "ru"), claims=True))
    return {qid: entity for qid, entity in entities.items() if "missing" not in entity}


def _named(entity: dict, name: str) -> bool:
    """Whether any of the item's labels is the city's name (case and spacing aside)."""
    wanted = " ".join(name.casefold().split())
    labels = json_object(entity.get("labels"))
    return any(" ".join(nested_text(labels, code, "value").casefold().split()) == wanted for code in labels)


def _near(entity: dict, centre: GeoPoint | None) -> bool:
    if centre is None:
        return True
    for value in statement_values(entity, "P625"):
        lat, lon = json_object(value).get("latitude"), json_object(value).get("longitude")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            dy = (lat - centre.lat) * KM_PER_DEGREE
            dx = (lon - centre.lon) * KM_PER_DEGREE * math.cos(math.radians(centre.lat))
            return math.hypot(dx, dy) <= CITY_MATCH_KM
    return False


def _label(entity: dict, lang: str) -> str:
    labels = entity.get("labels")
    return next((v for code in language(lang).label_codes if (v := nested_text(labels, code, "value"))), "")


def centre_of(points: Iterable[tuple[float | None, float | None]]) -> GeoPoint | None:
    """The mean of the points that have both coordinates (None if none has)."""
    known = [(lat, lon) for lat, lon in points if lat is not None and lon is not None]
    if not known:
        return None
    return GeoPoint(sum(p[0] for p in known) / len(known), sum(p[1] for p in known) / len(known))
