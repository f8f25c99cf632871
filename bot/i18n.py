"""The bot's message catalogs: `bot/locales/<code>.po`, one per language of the registry (core.languages).

Why gettext `.po` with Babel: it is the format translators' tools (Poedit, Weblate, Crowdin) read and
write, with plural forms in the catalog itself (the header's CLDR-derived Plural-Forms: Russian 3,
Arabic 6, Chinese 1), and Babel brings the rest of CLDR the answers need — numbers ("1,2 км"),
percentages ("%92" in Turkish), lists ("A, B и C", "A、B和C"). Fluent would add a second runtime for
the same CLDR data. Messages are keyed (`msgid "near_you"`): the English catalog is a translation
like the others, and every other catalog carries the English text as a comment for translators.

Placeholders are `str.format` fields (`{hours}`); a test checks every catalog has every message, none
empty or fuzzy, with the same placeholders and HTML tags as English. This module is the catalogs'
one reader; `texts.py` formats answers with it.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel import Locale
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from core import DEFAULT_LANGUAGE, Language, language

LOCALES = Path(__file__).with_name("locales")
# Digits of CLDR's numbering systems that are not Latin, for the locales whose default they are (Persian:
# arabext; generic Arabic defaults to Latin digits in CLDR, Saudi or Egyptian Arabic to arab).
NATIVE_DIGITS = {
    "arab": str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),
    "arabext": str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"),
}


def catalog_path(code: str) -> Path:
    return LOCALES / f"{code}.po"


@dataclass(frozen=True)
class Catalog:
    """One language's messages, plural rules, number and list formats."""

    language: Language
    keys: frozenset[str]
    _translations: Translations

    def text(self, key: str, **values: object) -> str:
        template = self._translations.gettext(key)
        return template.format(**values) if values else template

    def plural(self, key: str, count: float, **values: object) -> str:
        """The form of `key` for `count` ("1 место", "3 места", "5 мест"), with {n} its formatted number."""
        whole = math.floor(count) if count == math.floor(count) else math.ceil(count)
        template = self._translations.ngettext(key, key, int(whole))
        digits = 0 if count == math.floor(count) else 1
        return template.format(n=self.number(count, digits), **values)

    def number(self, value: float, digits: int = 0) -> str:
        """A number as the locale writes it by default (CLDR): its separators and its digits ("۱٫۲" in Persian)."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        formatted = format_decimal(value, format=pattern, locale=self.language.locale, numbering_system="default")
        return self._digits(formatted)

    def percent(self, share: float) -> str:
        """ "92%", "92 %", "%92", "۹۲٪": pattern, digits and sign of the locale's own numbering system (Babel
        keeps the Latin percent sign there)."""
        formatted = format_percent(share, locale=self.language.locale, numbering_system="default")
        return self._digits(formatted.replace("%", _numbering(self.language.locale).percent_sign))

    def join(self, items: list[str]) -> str:
        """ "A, B and C" as the language says it (CLDR's list pattern)."""
        return format_list(items, locale=self.language.locale) if items else ""

    def items(self, items: list[str]) -> str:
        """Items of a list that reads as a list, not a sentence ("dome 60%, church 50%"): the catalog's
        `list_separator` between them ("、" in Chinese, "، " in Arabic and Persian)."""
        return self.text("list_separator").join(items)

    def _digits(self, formatted: str) -> str:
        """Babel formats with Latin digits whatever the numbering system: the locale's own digits in their place."""
        native = _numbering(self.language.locale).digits
        return formatted.translate(native) if native else formatted

    def has(self, key: str) -> bool:
        return key in self.keys


@dataclass(frozen=True)
class Numbering:
    """A locale's default numbering system as replies need it: its digits (None: Latin) and percent sign."""

    digits: dict[int, int] | None  # a str.translate table
    percent_sign: str


@cache
def _numbering(locale_name: str) -> Numbering:
    """Read from CLDR once per locale (every card's percentages ask for it)."""
    locale = Locale.parse(locale_name)
    system = locale.default_numbering_system
    return Numbering(NATIVE_DIGITS.get(system), locale.number_symbols.get(system, {}).get("percentSign", "%"))


@cache
def catalog(code: str) -> Catalog:
    """The catalog of a registry language (read once); messages it lacks come from English."""
    entry = language(code)
    with catalog_path(code).open("rb") as file:
        po = read_po(file, locale=Locale.parse(entry.locale))
    compiled = io.BytesIO()
    write_mo(compiled, po)
    compiled.seek(0)
    translations = Translations(compiled)
    if code != DEFAULT_LANGUAGE:
        translations.add_fallback(catalog(DEFAULT_LANGUAGE)._translations)
    keys = frozenset(message.id if isinstance(message.id, str) else message.id[0] for message in po if message.id)
    return Catalog(entry, keys, translations)


# Telegram's limits on what the catalogs feed it (Bot API).
MESSAGE_LIMITS = {"description": 512, "short_description": 120}
COMMAND_DESCRIPTION_LIMIT = 256
# A non-English message equal to the English one and at least this long is taken as not translated
# ("Wikipedia", "km", "Hotels" may rightly read the same).
UNTRANSLATED_MIN_LENGTH = 20
_FIELD = re.compile(r"{(\w*)[^{}]*}")
_TAG = re.compile(r"</?[a-z]+>")


def catalog_problems(path: Path, reference: Path) -> list[str]:
    """What is wrong with the catalog at `path` against the English one: missing, extra, empty, fuzzy or
    untranslated messages, placeholders or HTML tags that differ, texts over Telegram's limits."""
    with path.open("rb") as file:
        po = read_po(file)
    with reference.open("rb") as file:
        english = {_key(m.id): m for m in read_po(file) if m.id}
    found = {_key(m.id): m for m in po if m.id}
    problems = [f"missing: {key}" for key in english if key not in found]
    problems += [f"not in English: {key}" for key in found if key not in english]
    for key, message in found.items():
        if key in english:
            problems += [f"{key}: {problem}" for problem in _message_problems(message, english[key], path != reference)]
    return problems


def _key(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def _message_problems(message, english, translated: bool) -> list[str]:
    forms = list(message.string) if isinstance(message.string, tuple) else [message.string]
    source = list(english.string) if isinstance(english.string, tuple) else [english.string]
    problems = ["fuzzy"] if message.fuzzy else []
    if not all(forms):
        return [*problems, "empty"]
    wanted = set().union(*(_fields(s) for s in source))
    if isinstance(message.string, tuple):  # one form may say "one place" in words, the last has every field
        if not all(_fields(form) <= wanted for form in forms) or _fields(forms[-1]) != wanted:
            problems.append(f"placeholders {sorted(wanted)} broken")
    elif _fields(forms[0]) != wanted:
        problems.append(f"placeholders {sorted(_fields(forms[0]))} instead of {sorted(wanted)}")
    if sorted(_TAG.findall(forms[0])) != sorted(_TAG.findall(source[0])):
        problems.append("HTML tags differ from English")
    if translated and forms == source and len(forms[0]) >= UNTRANSLATED_MIN_LENGTH:
        problems.append("not translated")
    key = _key(message.id)
    limit = MESSAGE_LIMITS.get(key, COMMAND_DESCRIPTION_LIMIT if key.startswith("command:") else None)
    if limit is not None and len(forms[0]) > limit:
        problems.append(f"{len(forms[0])} characters, Telegram takes {limit}")
    return problems


def _fields(template: str) -> set[str]:
    return set(_FIELD.findall(template))
