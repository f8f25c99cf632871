"""The formatting of answers, in every language of the registry; the words themselves live in the
message catalogs (bot/i18n.py, bot/locales/*.po)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from bot.i18n import catalog
from core import (
    CODES,
    Landmark,
    LandmarkText,
    Loop,
    Nearby,
    PhotoCredit,
    Recognition,
    closest_language,
    language,
    normalised_licence,
    trusted_link,
)

Lang = str  # a guide language code of the registry (core.languages): "ru", "zh-Hans", …
LANGUAGES: tuple[Lang, ...] = CODES
# The bot's commands, in menu order; their descriptions are catalog messages "command:<name>".
COMMANDS = ("start", "help", "nearby", "walk", "lang", "privacy", "about", "forget")


def language_for(language_code: str | None) -> Lang:
    """The default language for a Telegram user's client language (core.languages.closest_language)."""
    return closest_language(language_code)


def text(key: str, lang: Lang, **values: object) -> str:
    return catalog(lang).text(key, **values)


def plural(key: str, count: float, lang: Lang, **values: object) -> str:
    """A counted phrase in `lang`'s plural form for `count`: "3 места", "5 мест", "3 places"."""
    return catalog(lang).plural(key, count, **values)


def commands(lang: Lang) -> list[tuple[str, str]]:
    """The command menu Telegram shows a client in `lang`: (command, description)."""
    return [(name, text(f"command:{name}", lang)) for name in COMMANDS]


def category_name(kind: str, lang: Lang) -> str:
    """A category's name in `lang`; a kind no catalog knows reads as its slug."""
    key = f"kind:{kind}"
    if catalog(lang).has(key):
        return text(key, lang)
    return kind.replace("_", " ").capitalize()


def embedded(name: str, lang: Lang) -> str:
    """A name inside a right-to-left message, isolated (U+2068 … U+2069) so that a Latin or Cyrillic
    name and the numbers beside it keep their order instead of being reordered by the Arabic text."""
    return f"\u2068{name}\u2069" if language(lang).rtl else name


def percent(score: float, lang: Lang) -> str:
    """A share as the language writes percentages: "92%", "92 %" (de, ru), "%92" (tr), "۹۲٪" (fa)."""
    return catalog(lang).percent(round(score, 2))


# Below this a guess's share is said in words ("unlikely"): "0 %" five times over reads as a broken answer.
MIN_SHOWN_SHARE = 0.01


def share_text(share: float, lang: Lang) -> str:
    """How likely a guess is, as the reply shows it: a percentage, or "unlikely" under MIN_SHOWN_SHARE."""
    return percent(share, lang) if round(share, 2) >= MIN_SHOWN_SHARE else text("unlikely", lang)


def distance_text(metres: float, lang: Lang) -> str:
    """ "350 m", "1.2 km", "12 km" (Russian: "1,2 км"), numbers and units as `lang` writes them."""
    book = catalog(lang)
    if metres < 1000:
        return f"{book.number(round(metres, -1))} {book.text('unit:m')}"
    value = book.number(metres / 1000, 1 if metres < 10_000 else 0)
    return f"{value} {book.text('unit:km')}"


def format_nearby(places: Sequence[Nearby], names: Sequence[str], lang: Lang, ttl_hours: float) -> str:
    """The nearest landmarks, named in `lang` (`names`, as their cards name them), with distance and direction."""
    lines = [text("near_you", lang)]
    for rank, (place, name) in enumerate(zip(places, names, strict=True), 1):
        where = f"{distance_text(place.distance_m, lang)} {text('dir:' + place.direction, lang)}"
        lines.append(f"{rank}. <b>{embedded(escape(clip_text(name, NAME_LIMIT)), lang)}</b> — {where}")
    lines += ["", text("near_kept", lang, hours=plural("n_hours", ttl_hours, lang))]
    return "\n".join(lines)


def _location_note(result: Recognition, lang: Lang) -> str | None:
    if result.location is None:
        return None
    if not result.prior_applied:
        return text("located_far", lang)
    return text("located_exif" if result.location.source == "exif" else "located_shared", lang)


def join_names(names: Sequence[str], lang: Lang) -> str:
    """ "A, B, and C" / "A, B и C" / "A、B和C": the language's own list pattern (CLDR)."""
    return catalog(lang).join(list(names))


def photo_caption(name: str, city: str) -> str:
    """An album photo's caption (Telegram: ≤ 1,024 characters), names clipped at a word."""
    name, city = clip_text(name, NAME_LIMIT), clip_text(city, NAME_LIMIT)
    return f"{name}, {city}" if city else name


def album_caption(name: str, city: str, credit: PhotoCredit | None, lang: Lang, weak: bool = False) -> str:
    """An album photo's caption in Telegram HTML: the place (marked when it is only the closest, no sure
    match), and its author and licence when it needs them."""
    caption = escape(photo_caption(name, city))
    if weak:
        caption += f" <i>({text('closest_photo', lang)})</i>"
    return f"{caption}\n{credit_line(credit, lang)}" if credit is not None else caption


def credit_line(credit: PhotoCredit, lang: Lang) -> str:
    """ "Photo: Author, CC BY-SA 4.0" with the author linked to the file's page and the licence to its text
    (what CC BY and BY-SA ask of whoever shows the photo); a link to any other page is shown as text."""

    def linked(label: str, url: str) -> str:
        label = escape(clip_text(label, CREDIT_LIMIT))
        return f'<a href="{escape(url, quote=True)}">{label}</a>' if (url := trusted_link(url)) else label

    author, license_ = (
        linked(credit.author, credit.source_url),
        linked(licence_name(credit.license, lang), credit.license_url),
    )
    return text("photo_credit", lang, author=author, license=license_)


def licence_name(licence: str, lang: Lang) -> str:
    """A licence as the reader says it where the catalog has it ("Gemeinfrei", "公有领域"), else its short name."""
    key = f"licence:{normalised_licence(licence)}"
    return text(key, lang) if catalog(lang).has(key) else licence


# Telegram's limits: a photo caption is 1,024 characters, a message 4,096.
CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
# Characters of an inline button's label (Telegram shows about this many on a phone).
BUTTON_LABEL_LIMIT = 60
# Characters of a name or city shown at most (the published names are far shorter).
NAME_LIMIT = 150
# Characters of a photo's author or licence name shown at most (Commons authors can be long credits).
CREDIT_LIMIT = 80
# Characters of the list of cities in /start and /help (a harvested country has hundreds).
CITIES_LIMIT = 600


def clip_text(text_: str, room: int) -> str:
    """Plain text cut to `room` characters at a word boundary, with an ellipsis."""
    if len(text_) <= room:
        return text_
    cut = text_[: max(0, room - 1)].rsplit(" ", 1)[0]
    return cut.rstrip(",.;: ") + "…"


def card_title(card: LandmarkText, lang: Lang) -> str:
    """A card's first line: the name in bold, its original beside it, and how it came to be in this script."""
    title = f"<b>{embedded(escape(clip_text(card.name, NAME_LIMIT)), lang)}</b>"
    if card.original and card.original != card.name:
        title += f" ({escape(clip_text(card.original, NAME_LIMIT))})"
    if card.transliterated:
        title += f" <i>({text('transliterated', lang)})</i>"
    elif card.fallback:  # no name in the reader's language: the one shown is in another, and says so
        title += f" <i>({text(f'name_in:{card.fallback}', lang)})</i>"
    return title


def format_sight_card(card: LandmarkText, lang: Lang, credit: PhotoCredit | None) -> str:
    """The card a live location brings when the tourist reaches a sight (Telegram HTML, within CAPTION_LIMIT)."""
    lines = [text("live_arrived", lang), card_title(card, lang)]
    if card.city:
        lines.append(escape(clip_text(card.city, NAME_LIMIT)))
    tail = ["", credit_line(credit, lang)] if credit is not None else []
    fixed = len("\n".join(lines + tail)) + 4
    if card.description:
        lines += ["", f"<i>{escape(clip_text(card.description, CAPTION_LIMIT - fixed - 8))}</i>"]
    return "\n".join(lines + tail)


def format_walk(loop: Loop, names: Sequence[str], lang: Lang) -> str:
    """A walking loop: its sights in walking order with each leg's length, the way back, the total."""
    places = plural("n_places", len(loop.legs), lang)
    lines = [text("walk_title", lang, places=places)]
    for rank, (leg, name) in enumerate(zip(loop.legs, names, strict=True), 1):
        name = embedded(escape(clip_text(name, NAME_LIMIT)), lang)
        lines.append(f"{rank}. <b>{name}</b> — {distance_text(leg.distance_m, lang)}")
    lines.append(text("walk_back", lang, distance=distance_text(loop.back_m, lang)))
    minutes = plural("n_minutes", rounded_minutes(loop.minutes), lang)
    lines += ["", text("walk_total", lang, distance=distance_text(loop.total_m, lang), minutes=minutes)]
    return "\n".join(lines)


def rounded_minutes(minutes: float) -> int:
    """A walk's time as people say it: to the minute under a quarter of an hour, else to five minutes."""
    return max(1, round(minutes) if minutes < 15 else 5 * round(minutes / 5))


def walk_url(loop: Loop) -> str:
    """The loop on Google Maps, on foot: from the start through every sight, in order, and back."""
    start = f"{loop.start.lat:.6f},{loop.start.lon:.6f}"
    stops = "%7C".join(f"{leg.landmark.lat:.6f},{leg.landmark.lon:.6f}" for leg in loop.legs)
    return (
        f"https://www.google.com/maps/dir/?api=1&origin={start}&destination={start}"
        f"&waypoints={stops}&travelmode=walking"
    )


def format_card(result: Recognition, card: LandmarkText, lang: Lang) -> str:
    """The caption of the best landmark's card (Telegram HTML, within CAPTION_LIMIT)."""
    hit = result.landmarks[0]
    title = card_title(card, lang)
    details = [escape(clip_text(card.city, NAME_LIMIT))] if card.city else []
    if hit.distance_m is not None and result.prior_applied:
        details.append(distance_text(hit.distance_m, lang))
    details.append(share_text(result.shown_share(0), lang))
    lines = [text("recognized", lang), title, " · ".join(details)]
    tail = [""] + ([note] if (note := _location_note(result, lang)) else [])
    if result.photo_credit is not None:
        tail.append(credit_line(result.photo_credit, lang))
    fixed = len("\n".join(lines + tail)) + 4
    if card.description:
        lines += ["", f"<i>{escape(clip_text(card.description, CAPTION_LIMIT - fixed - 8))}</i>"]
    if len(tail) > 1:
        lines += tail
    # Lengths above count tags and escapes too, so the visible caption stays within Telegram's limit;
    # the text is never cut afterwards (that could split an HTML tag).
    return "\n".join(lines)


def format_others(result: Recognition, names: Sequence[LandmarkText], lang: Lang, skip_first: bool) -> str:
    """The candidates (after the card's, when there is one) and the categories."""
    header = text("also", lang) if skip_first else text("not_sure", lang)
    lines = [header]
    for rank, (hit, card) in enumerate(zip(result.landmarks, names, strict=True), 1):
        if skip_first and rank == 1:
            continue
        away = f", {distance_text(hit.distance_m, lang)}" if hit.distance_m is not None and result.prior_applied else ""
        name = embedded(escape(clip_text(card.name, NAME_LIMIT)), lang)
        city = embedded(escape(clip_text(card.city, NAME_LIMIT)), lang)
        lines.append(f"{rank}. {name}, {city}{away} — {share_text(result.shown_share(rank - 1), lang)}")
    if len(lines) == 1:
        lines = []
    if categories := merged_categories(result, lang):
        shares = catalog(lang).items([f"{escape(n)} {share_text(sc, lang)}" for n, sc in categories])
        lines += ["", f"<b>{text('categories', lang)}:</b> {shares}"]
    if not skip_first and (note := _location_note(result, lang)):
        lines += ["", note]
    return "\n".join(lines).strip()


def merged_categories(result: Recognition, lang: Lang) -> list[tuple[str, float]]:
    """Categories by their label in `lang`, each once: kinds that read the same, and a kind beside a wider
    one that names it ("monuments" beside "monuments_and_memorials"), are one line with the larger score."""
    kinds = {category.category for category in result.categories}
    merged: dict[str, float] = {}
    for category in result.categories:
        label = category_name(_widest(category.category, kinds), lang)
        merged[label] = max(merged.get(label, 0.0), category.score)
    return sorted(merged.items(), key=lambda item: -item[1])


def _widest(kind: str, kinds: set[str]) -> str:
    """The kind among `kinds` that names `kind` with another ("x" → "x_and_y" or "y_and_x"), else itself."""
    wider = [k for k in kinds if k.startswith(f"{kind}_and_") or k.endswith(f"_and_{kind}")]
    return min(wider, default=kind)


def route_url(landmark: Landmark, start: tuple[float, float] | None) -> str | None:
    """Directions on OpenStreetMap: from the user's location when known, else to the point."""
    if landmark.lat is None or landmark.lon is None:
        return None
    end = f"{landmark.lat:.6f}%2C{landmark.lon:.6f}"
    origin = f"{start[0]:.6f}%2C{start[1]:.6f}" if start else ""
    return f"https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot&route={origin}%3B{end}"


def map_url(landmark: Landmark) -> str | None:
    if landmark.lat is None or landmark.lon is None:
        if landmark.osm:
            return f"https://www.openstreetmap.org/{landmark.osm}"
        return None
    lat, lon = landmark.lat, landmark.lon
    return f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"


def format_search_fallback(hits: Sequence[tuple[str, str]], lang: Lang) -> str:
    """Text instead of an album, for an index too small for one: (name, city) per hit."""
    if not hits:
        return text("nothing_found", lang)
    return "\n".join([text("too_few_photos", lang)] + [f"• {escape(photo_caption(n, c))}" for n, c in hits])
