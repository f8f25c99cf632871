"""Every user-facing string, in Russian and English, and the formatting of answers."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Literal

from core import Landmark, LandmarkText, Nearby, Recognition

Lang = Literal["ru", "en"]
LANGUAGES: tuple[Lang, ...] = ("ru", "en")
# Telegram clients in these languages get Russian by default; everyone else English.
RUSSIAN_SPEAKING = frozenset({"ru", "uk", "be", "kk"})

MESSAGES: dict[str, dict[Lang, str]] = {
    "start": {
        "ru": "Здравствуйте! Я узнаю достопримечательности: {cities} — {count} мест.\n\n"
        "📷 Пришлите фото — скажу, что на нём, расскажу и покажу на карте.\n"
        "🔎 Напишите текст, например «{example}», — пришлю подходящие фотографии.\n"
        "📍 Отправьте геопозицию — покажу, что рядом.\n\nПодробнее: /help",
        "en": "Hello! I recognise landmarks of {cities} — {count} places.\n\n"
        "📷 Send a photo and I will tell you what it shows, what it is and where it is.\n"
        "🔎 Send any text, like “{example}”, and I will find matching photos.\n"
        "📍 Share your location and I will list what is near.\n\nMore: /help",
    },
    "help": {
        "ru": "<b>Что я умею</b>\n"
        "📷 <b>Фото → достопримечательность.</b> Пришлите снимок (можно файлом, без сжатия): отвечу пятью "
        "наиболее вероятными местами и категориями с уверенностью и дам ссылку на карту.\n"
        "🔎 <b>Текст → фото.</b> Напишите, например, <i>«белый собор у реки»</i> или "
        "<i>«{example}»</i> — пришлю 5 подходящих фотографий.\n"
        "Я знаю {count} мест: {cities}.\n\n"
        "📍 <b>Где я?</b> Отправьте геопозицию (📎 → Геопозиция, можно трансляцию): покажу ближайшие места, а "
        "фото в следующие {ttl} ч. узнаю с учётом того, где вы. Фото, отправленное файлом, несёт свои "
        "координаты (EXIF), и тогда они важнее; в сжатых фото Telegram их удаляет.\n\n"
        "<b>Что я храню:</b> выбранный язык, последнюю геопозицию ({ttl} ч.), мои ответы на ваши фото и ваши "
        "оценки ✓/✗, а сами фото — только с вашего согласия. Подробно: /privacy; /forget удаляет всё.\n\n"
        "/lang — язык (русский / English)\n/privacy — что я храню\n/forget — забыть всё обо мне\n"
        "/help — эта справка",
        "en": "<b>What I can do</b>\n"
        "📷 <b>Photo → landmark.</b> Send a photo (as a file too, to avoid compression): I answer with the "
        "5 most likely places and categories, with confidences and a map link.\n"
        "🔎 <b>Text → photos.</b> Write, for example, <i>“white cathedral by the river”</i> or "
        "<i>“{example}”</i> and get 5 matching photos.\n"
        "I know {count} places in {cities}.\n\n"
        "📍 <b>Where am I?</b> Share your location (📎 → Location, live too): I list the nearest places, and "
        "for the next {ttl} h your photos are recognised knowing where you are. A photo sent as a file "
        "carries its own coordinates (EXIF), which then win; Telegram strips them from compressed photos.\n\n"
        "<b>What I keep:</b> your chosen language, your last shared location ({ttl} h), my answers to your "
        "photos and your ✓/✗ ratings, and the photos themselves only if you agreed. Details: /privacy; "
        "/forget deletes it all.\n\n"
        "/lang — language (русский / English)\n/privacy — what I keep\n/forget — forget everything about me\n"
        "/help — this help",
    },
    "also": {"ru": "Другие варианты:", "en": "Other candidates:"},
    "route": {"ru": "🧭 Маршрут", "en": "🧭 Route"},
    "wikipedia": {"ru": "📖 Википедия", "en": "📖 Wikipedia"},
    "more_photos": {"ru": "🖼 Ещё фото", "en": "🖼 More photos"},
    "transliterated": {"ru": "транслитерация", "en": "transliterated"},
    "no_match": {
        "ru": "Ничего не подходит хорошо. Вот самое близкое:",
        "en": "Nothing matches well. The closest I have:",
    },
    "right": {"ru": "✓ Верно", "en": "✓ Right"},
    "wrong": {"ru": "✗ Неверно", "en": "✗ Wrong"},
    "none_of_these": {"ru": "Ничего из этого", "en": "None of these"},
    "dont_know": {"ru": "Не знаю", "en": "Don't know"},
    "thanks": {"ru": "Спасибо, учту!", "en": "Thanks, noted!"},
    "already": {"ru": "Вы уже ответили — спасибо!", "en": "You already answered — thanks!"},
    "consent_ask": {
        "ru": "Можно я сохраню ваши фото, чтобы лучше узнавать места? Их увидят только администраторы; "
        "/forget удалит всё. Без согласия я сохраняю только ваши оценки ответов, без фото.",
        "en": "May I keep your photos to improve recognition? Only the administrators see them; /forget deletes "
        "everything. Without consent I keep only your ✓/✗ ratings, without the photos.",
    },
    "consent_yes": {"ru": "Да, можно", "en": "Yes, keep them"},
    "consent_no": {"ru": "Нет", "en": "No"},
    "consent_saved_yes": {
        "ru": "Спасибо! Фото с вашими оценками помогут мне учиться. /privacy — что я храню.",
        "en": "Thank you! Photos you rate will help me learn. /privacy says what I keep.",
    },
    "consent_saved_no": {
        "ru": "Хорошо, фото не сохраняю. /privacy — что я храню.",
        "en": "Fine, I won't keep your photos. /privacy says what I keep.",
    },
    "privacy": {
        "ru": "<b>Что я храню</b>\n• выбранный язык;\n• последнюю геопозицию ({ttl} ч.);\n"
        "• для статистики — мои ответы на ваши фото и ваши оценки ✓/✗;\n"
        "• сами фото — только если вы согласились; фото, которое администратор добавил в коллекцию "
        "достопримечательности, остаётся в ней.\n/forget удаляет всё остальное.",
        "en": "<b>What I keep</b>\n• your chosen language;\n• your last shared location ({ttl} h);\n"
        "• for statistics, my answers to your photos and your ✓/✗ ratings;\n"
        "• the photos themselves only if you agreed; a photo an administrator added to a landmark's "
        "collection stays there.\n/forget deletes all the rest.",
    },
    "review_empty": {"ru": "Нет фото на проверку.", "en": "No contributions to review."},
    "review_item": {
        "ru": "На проверку: {left}. Пользователь: {label} ({kind}). Бот ответил: {answer}.",
        "en": "To review: {left}. The user says: {label} ({kind}). The bot answered: {answer}.",
    },
    "approve": {"ru": "✓ Принять", "en": "✓ Approve"},
    "reject": {"ru": "✗ Отклонить", "en": "✗ Reject"},
    "another": {"ru": "Другое место", "en": "Another landmark"},
    "rejected": {"ru": "Отклонено.", "en": "Rejected."},
    "approved": {
        "ru": "Добавлено в датасет: {detail}. После /reindex оно в индексе. Следующее: /review",
        "en": "Added to the dataset: {detail}. /reindex puts it into the index. Next: /review",
    },
    "not_approved": {
        "ru": "Не добавлено: {detail}. Фото осталось на проверке.",
        "en": "Not added: {detail}. It stays pending.",
    },
    "near_you": {"ru": "📍 Рядом с вами:", "en": "📍 Near you:"},
    "near_none": {
        "ru": "📍 Рядом нет известных мне мест (ближайшее — дальше {km} км).",
        "en": "📍 No landmark I know is near you (the nearest is over {km} km away).",
    },
    "near_kept": {
        "ru": "Фото, которые вы пришлёте в ближайшие {ttl} ч., я узнаю с учётом этого места.",
        "en": "Photos you send in the next {ttl} h are recognised knowing you are here.",
    },
    "bad_location": {
        "ru": "📍 Эта геопозиция не похожа на точку на Земле — я её не сохранил. Отправьте её ещё раз.",
        "en": "📍 That location is not a point on Earth, so I did not keep it. Please share it again.",
    },
    "located_shared": {"ru": "📍 С учётом вашей геопозиции.", "en": "📍 Using the location you shared."},
    "located_exif": {"ru": "📍 С учётом координат из файла фото.", "en": "📍 Using the location stored in the photo."},
    "located_far": {
        "ru": "📍 Рядом с этим местом нет известных мне мест — узнаю только по фото.",
        "en": "📍 No landmark I know is near that location — recognised by the photo alone.",
    },
    "forgotten": {
        "ru": "Готово: я удалил всё, что хранил о вас (язык, геопозицию, оценки, фото).",
        "en": "Done: everything I kept about you (language, location, ratings, photos) is deleted.",
    },
    "lang_choose": {"ru": "Выберите язык:", "en": "Choose a language:"},
    "lang_set": {"ru": "Готово, теперь говорю по-русски.", "en": "Done, English it is."},
    "recognized": {"ru": "Это, скорее всего:", "en": "This is most likely:"},
    "not_sure": {
        "ru": "🤔 Не уверен, что на фото известная мне достопримечательность. Ближе всего:",
        "en": "🤔 I'm not sure this is a landmark I know. The closest guesses:",
    },
    "categories": {"ru": "Категории", "en": "Categories"},
    "nothing_found": {
        "ru": "В моей базе пока нет фотографий — попросите администратора собрать индекс.",
        "en": "My collection has no photos yet — ask the administrator to build the index.",
    },
    "map": {"ru": "🗺 На карте", "en": "🗺 Map"},
    "too_few_photos": {
        "ru": "Для альбома мало фотографий в базе. Лучшее совпадение:",
        "en": "Too few photos in my collection for an album. The best match:",
    },
    "empty_query": {
        "ru": "Напишите, что найти, например «собор на набережной».",
        "en": "Write what to look for, e.g. “cathedral on the embankment”.",
    },
    "too_big": {
        "ru": "Файл больше 20 МБ — Telegram не даёт ботам скачивать такие. Пришлите фото поменьше.",
        "en": "The file is over 20 MB, which Telegram does not let bots download. Please send a smaller photo.",
    },
    "bad_image": {
        "ru": "Не получается открыть это изображение — возможно, файл повреждён. Пришлите обычное фото JPEG или PNG.",
        "en": "I can't open this image — the file may be damaged. Please send an ordinary JPEG or PNG photo.",
    },
    "too_many_pixels": {
        "ru": "Изображение слишком большое: PNG, WebP, TIFF и HEIC больше 40 мегапикселей не открываю. "
        "Пришлите его как JPEG или фото поменьше.",
        "en": "The image is too large: PNG, WebP, TIFF and HEIC over 40 megapixels are not opened. "
        "Please send it as JPEG or a smaller photo.",
    },
    "too_elongated": {
        "ru": "Это изображение слишком вытянутое для фотографии (стороны больше 10:1). Пришлите обычное фото.",
        "en": "This image is too elongated to be a photo (sides over 10:1). Please send an ordinary photo.",
    },
    "not_image_file": {
        "ru": "Это файл, а не изображение. Пришлите фото — или файл JPEG/PNG.",
        "en": "That's a file, not an image. Send a photo, or a JPEG/PNG file.",
    },
    "unsupported": {
        "ru": "Я понимаю только фотографии и текст. Пришлите фото достопримечательности или напишите, что найти.",
        "en": "I understand photos and text only. Send a photo of a landmark or write what to look for.",
    },
    "edited": {
        "ru": "Исправленные сообщения я не перечитываю — отправьте запрос заново.",
        "en": "I don't re-read edited messages — please send your request again.",
    },
    "unknown_command": {"ru": "Не знаю такой команды. Смотрите /help.", "en": "I don't know that command. See /help."},
    "rate_limited": {
        "ru": "Слишком много запросов подряд — подождите несколько секунд, пожалуйста.",
        "en": "That's a lot of requests at once — please wait a few seconds.",
    },
    "expired": {
        "ru": "Эта кнопка устарела — пришлите фото ещё раз.",
        "en": "This answer has expired — please send the photo again.",
    },
    "error": {
        "ru": "Что-то пошло не так. Попробуйте ещё раз чуть позже.",
        "en": "Something went wrong. Please try again a bit later.",
    },
    "not_admin": {
        "ru": "Эта команда только для администраторов бота.",
        "en": "This command is for the bot's administrators only.",
    },
    "reindex_busy": {
        "ru": "Пересборка индекса уже идёт — дождитесь её окончания.",
        "en": "A reindex is already running — please wait for it to finish.",
    },
    "reindex_started": {
        "ru": "⏳ Пересобираю индекс из {data_dir}… Бот продолжает отвечать.",
        "en": "⏳ Rebuilding the index from {data_dir}… The bot keeps answering.",
    },
    "reindex_progress": {"ru": "⏳ {stage}: {done} из {total}", "en": "⏳ {stage}: {done} of {total}"},
    "reindex_done": {
        "ru": "✅ Индекс обновлён за {seconds:.1f} с: {photos} фото, {landmarks} мест; новых эмбеддингов "
        "{embedded}, из кэша {from_cache}, пропущено {skipped}.",
        "en": "✅ Index updated in {seconds:.1f} s: {photos} photos, {landmarks} landmarks; {embedded} embedded, "
        "{from_cache} from cache, {skipped} skipped.",
    },
    "reindex_up_to_date": {
        "ru": "✅ Индекс уже актуален: {photos} фото, {landmarks} мест (проверено за {seconds:.1f} с).",
        "en": "✅ The index is already up to date: {photos} photos, {landmarks} landmarks "
        "(checked in {seconds:.1f} s).",
    },
    "reindex_failed": {
        "ru": "❌ Пересборка не удалась, работает прежний индекс. Ошибка: {error}",
        "en": "❌ Reindex failed; the previous index keeps serving. Error: {error}",
    },
}

STAGES: dict[str, dict[Lang, str]] = {
    "hash": {"ru": "проверка файлов", "en": "checking files"},
    "embed": {"ru": "эмбеддинги", "en": "embedding"},
}

COMMANDS: dict[Lang, list[tuple[str, str]]] = {
    "ru": [
        ("start", "Начать"),
        ("help", "Что умеет бот"),
        ("lang", "Язык / Language"),
        ("privacy", "Что бот хранит"),
        ("forget", "Забыть всё обо мне"),
    ],
    "en": [
        ("start", "Start"),
        ("help", "What the bot does"),
        ("lang", "Language / Язык"),
        ("privacy", "What the bot keeps"),
        ("forget", "Forget me"),
    ],
}

# OpenTripMap kinds → human names. Unknown kinds fall back to the slug with spaces.
CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "accomodations": ("Жильё", "Accommodation"),
    "archaeological_museums": ("Археологические музеи", "Archaeology museums"),
    "archaeology": ("Археология", "Archaeology"),
    "architecture": ("Архитектура", "Architecture"),
    "art_galleries": ("Картинные галереи", "Art galleries"),
    "bank": ("Банк", "Bank"),
    "banks": ("Банки", "Banks"),
    "biographical_museums": ("Мемориальные музеи", "Biographical museums"),
    "bridges": ("Мосты", "Bridges"),
    "burial_places": ("Места захоронений", "Burial places"),
    "castles": ("Замки", "Castles"),
    "catholic_churches": ("Католические храмы", "Catholic churches"),
    "cathedrals": ("Соборы", "Cathedrals"),
    "cemeteries": ("Кладбища", "Cemeteries"),
    "children_museums": ("Детские музеи", "Children's museums"),
    "children_theatres": ("Детские театры", "Children's theatres"),
    "churches": ("Церкви", "Churches"),
    "cinemas": ("Кинотеатры", "Cinemas"),
    "circuses": ("Цирки", "Circuses"),
    "concert_halls": ("Концертные залы", "Concert halls"),
    "cultural": ("Культура", "Culture"),
    "defensive_walls": ("Крепостные стены", "Defensive walls"),
    "destroyed_objects": ("Утраченные объекты", "Destroyed objects"),
    "eastern_orthodox_churches": ("Православные храмы", "Orthodox churches"),
    "fashion_museums": ("Музеи моды", "Fashion museums"),
    "foods": ("Еда", "Food"),
    "fortifications": ("Укрепления", "Fortifications"),
    "fortified_towers": ("Крепостные башни", "Fortified towers"),
    "gardens_and_parks": ("Сады и парки", "Gardens and parks"),
    "geological_formations": ("Геологические объекты", "Geological formations"),
    "historic": ("История", "Historic"),
    "historic_architecture": ("Историческая архитектура", "Historic architecture"),
    "historic_districts": ("Исторические районы", "Historic districts"),
    "historic_house_museums": ("Дома-музеи", "Historic house museums"),
    "historic_object": ("Исторические объекты", "Historic objects"),
    "historic_settlements": ("Исторические поселения", "Historic settlements"),
    "historical_places": ("Исторические места", "Historical places"),
    "history_museums": ("Исторические музеи", "History museums"),
    "industrial_facilities": ("Промышленные объекты", "Industrial facilities"),
    "kremlins": ("Кремли", "Kremlins"),
    "local_museums": ("Краеведческие музеи", "Local history museums"),
    "manor_houses": ("Усадьбы", "Manor houses"),
    "military_museums": ("Военные музеи", "Military museums"),
    "monasteries": ("Монастыри", "Monasteries"),
    "monuments": ("Памятники", "Monuments"),
    "monuments_and_memorials": ("Памятники и мемориалы", "Monuments and memorials"),
    "mosques": ("Мечети", "Mosques"),
    "mountain_peaks": ("Вершины", "Mountain peaks"),
    "museums": ("Музеи", "Museums"),
    "museums_of_science_and_technology": ("Музеи науки и техники", "Science and technology museums"),
    "music_venues": ("Музыкальные площадки", "Music venues"),
    "national_museums": ("Национальные музеи", "National museums"),
    "natural": ("Природа", "Nature"),
    "natural_monuments": ("Памятники природы", "Natural monuments"),
    "nature_reserves": ("Заповедники", "Nature reserves"),
    "open_air_museums": ("Музеи под открытым небом", "Open-air museums"),
    "opera_houses": ("Оперные театры", "Opera houses"),
    "other": ("Другое", "Other"),
    "other_archaeological_sites": ("Археологические памятники", "Archaeological sites"),
    "other_bridges": ("Мосты", "Bridges"),
    "other_buildings_and_structures": ("Здания и сооружения", "Buildings and structures"),
    "other_burial_places": ("Места захоронений", "Burial places"),
    "other_churches": ("Другие храмы", "Other churches"),
    "other_hotels": ("Гостиницы", "Hotels"),
    "other_museums": ("Другие музеи", "Other museums"),
    "other_nature_conservation_areas": ("Охраняемые природные территории", "Nature conservation areas"),
    "other_technology_museums": ("Технические музеи", "Technology museums"),
    "other_temples": ("Другие храмы", "Other temples"),
    "other_theatres": ("Театры", "Theatres"),
    "other_towers": ("Башни", "Towers"),
    "planetariums": ("Планетарии", "Planetariums"),
    "puppetries": ("Кукольные театры", "Puppet theatres"),
    "railway_stations": ("Вокзалы", "Railway stations"),
    "religion": ("Религия", "Religion"),
    "restaurants": ("Рестораны", "Restaurants"),
    "rock_formations": ("Скалы", "Rock formations"),
    "science_museums": ("Научные музеи", "Science museums"),
    "sculptures": ("Скульптуры", "Sculptures"),
    "sport": ("Спорт", "Sport"),
    "squares": ("Площади", "Squares"),
    "stadiums": ("Стадионы", "Stadiums"),
    "theatres_and_entertainments": ("Театры и развлечения", "Theatres and entertainment"),
    "tourist_facilities": ("Туристическая инфраструктура", "Tourist facilities"),
    "towers": ("Башни", "Towers"),
    "triumphal_archs": ("Триумфальные арки", "Triumphal arches"),
    "unclassified_objects": ("Прочие объекты", "Unclassified objects"),
    "urban_environment": ("Городская среда", "Urban environment"),
    "view_points": ("Смотровые площадки", "View points"),
    "war_memorials": ("Военные мемориалы", "War memorials"),
    "water_towers": ("Водонапорные башни", "Water towers"),
    "zoos": ("Зоопарки", "Zoos"),
}


def language_for(language_code: str | None) -> Lang:
    """The default language for a Telegram user's client language."""
    primary = (language_code or "").split("-")[0].lower()
    return "ru" if primary in RUSSIAN_SPEAKING else "en"


def text(key: str, lang: Lang, **values: object) -> str:
    template = MESSAGES[key][lang]
    return template.format(**values) if values else template


def category_name(kind: str, lang: Lang) -> str:
    names = CATEGORY_NAMES.get(kind)
    if names is not None:
        return names[0] if lang == "ru" else names[1]
    return kind.replace("_", " ").capitalize()


def percent(score: float) -> str:
    return f"{round(100 * score)}%"


UNITS: dict[Lang, tuple[str, str]] = {"ru": ("м", "км"), "en": ("m", "km")}
DIRECTIONS: dict[Lang, dict[str, str]] = {
    "ru": {"N": "С", "NE": "СВ", "E": "В", "SE": "ЮВ", "S": "Ю", "SW": "ЮЗ", "W": "З", "NW": "СЗ"},
    "en": {d: d for d in ("N", "NE", "E", "SE", "S", "SW", "W", "NW")},
}


def distance_text(metres: float, lang: Lang) -> str:
    """ "350 m", "1.2 km", "12 km" (Russian: "1,2 км")."""
    metre, kilometre = UNITS[lang]
    if metres < 1000:
        return f"{round(metres, -1):.0f} {metre}"
    value = f"{metres / 1000:.1f}" if metres < 10_000 else f"{metres / 1000:.0f}"
    return f"{value.replace('.', ',') if lang == 'ru' else value} {kilometre}"


def format_nearby(places: Sequence[Nearby], lang: Lang, ttl_hours: float) -> str:
    lines = [text("near_you", lang)]
    for rank, place in enumerate(places, 1):
        where = f"{distance_text(place.distance_m, lang)} {DIRECTIONS[lang][place.direction]}"
        lines.append(f"{rank}. <b>{escape(place.landmark.name)}</b>, {escape(place.landmark.city)} — {where}")
    lines += ["", text("near_kept", lang, ttl=f"{ttl_hours:g}")]
    return "\n".join(lines)


def _location_note(result: Recognition, lang: Lang) -> str | None:
    if result.location is None:
        return None
    if not result.prior_applied:
        return text("located_far", lang)
    return text("located_exif" if result.location.source == "exif" else "located_shared", lang)


def join_names(names: Sequence[str], lang: Lang) -> str:
    """ "A, B and C" / "A, B и C"."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} {'и' if lang == 'ru' else 'and'} {names[-1]}"


def photo_caption(name: str, city: str) -> str:
    """An album photo's caption (Telegram: ≤ 1,024 characters), names clipped at a word."""
    name, city = clip_text(name, NAME_LIMIT), clip_text(city, NAME_LIMIT)
    return f"{name}, {city}" if city else name


# Telegram's limits: a photo caption is 1,024 characters, a message 4,096.
CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
# Characters of a name or city shown at most (the published names are far shorter).
NAME_LIMIT = 150
# Characters of the list of cities in /start and /help (a harvested country has hundreds).
CITIES_LIMIT = 600


def clip_text(text_: str, room: int) -> str:
    """Plain text cut to `room` characters at a word boundary, with an ellipsis."""
    if len(text_) <= room:
        return text_
    cut = text_[: max(0, room - 1)].rsplit(" ", 1)[0]
    return cut.rstrip(",.;: ") + "…"


def format_card(result: Recognition, card: LandmarkText, lang: Lang) -> str:
    """The caption of the best landmark's card (Telegram HTML, within CAPTION_LIMIT)."""
    hit = result.landmarks[0]
    title = f"<b>{escape(clip_text(card.name, NAME_LIMIT))}</b>"
    if card.original and card.original != card.name:
        title += f" ({escape(clip_text(card.original, NAME_LIMIT))})"
    if card.transliterated:
        title += f" <i>({text('transliterated', lang)})</i>"
    details = [escape(clip_text(card.city, NAME_LIMIT))] if card.city else []
    if hit.distance_m is not None and result.prior_applied:
        details.append(distance_text(hit.distance_m, lang))
    details.append(percent(hit.score))
    lines = [text("recognized", lang), title, " · ".join(details)]
    tail = [""] + ([note] if (note := _location_note(result, lang)) else [])
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
        name, city = escape(clip_text(card.name, NAME_LIMIT)), escape(clip_text(card.city, NAME_LIMIT))
        lines.append(f"{rank}. {name}, {city}{away} — {percent(hit.score)}")
    if len(lines) == 1:
        lines = []
    if categories := merged_categories(result, lang):
        lines += [
            "",
            f"<b>{text('categories', lang)}:</b> " + ", ".join(f"{escape(n)} {percent(sc)}" for n, sc in categories),
        ]
    if not skip_first and (note := _location_note(result, lang)):
        lines += ["", note]
    return "\n".join(lines).strip()


def merged_categories(result: Recognition, lang: Lang) -> list[tuple[str, float]]:
    """Categories by their label in `lang`: kinds that read the same are one line, with the larger score."""
    merged: dict[str, float] = {}
    for category in result.categories:
        label = category_name(category.category, lang)
        merged[label] = max(merged.get(label, 0.0), category.score)
    return sorted(merged.items(), key=lambda item: -item[1])


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
