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
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.language.locale)

    def percent(self, share: float) -> str:
        return format_percent(share, locale=self.language.locale)

    def join(self, items: list[str]) -> str:
        return format_list(items, locale=self.language.locale) if items else ""

    def has(self, key: str) -> bool:
        return key in self.keys


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
