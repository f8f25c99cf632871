"""The languages the guide speaks: one registry line each.

A line says what every part needs: the bot (its message catalog `bot/locales/<code>.po`, the /lang
keyboard, the command menu and descriptions Telegram shows per client language, which Telegram
clients get it by default), CLDR (plural rules, numbers, lists: through Babel), and the data
(which Wikipedia edition describes landmarks in it, where a name comes from when it has none).
Adding a language is a catalog plus one line here (docs/architecture.md, "Where to add a …").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str  # the guide's code: catalog file name, callback data, enrichment keys
    name: str  # the language's name in itself, on the /lang keyboard
    locale: str  # CLDR locale (Babel) for plural rules, numbers and lists
    wikipedia: str  # the Wikipedia edition (subdomain) for descriptions
    # Telegram sends a client's language as an IETF tag (`zh-hans`, `de-at`, `fa`): tags whose primary
    # subtag is listed here get this language until the user picks another with /lang.
    telegram: tuple[str, ...]
    # Where a landmark's name and description come from when this language has none, in order; the
    # guide's last resort is the original name transliterated.
    fallback: tuple[str, ...] = ("en",)
    rtl: bool = False
    # Wikidata's language codes for labels and descriptions, best first (default: the guide's code).
    wikidata: tuple[str, ...] = ()
    # espeak-ng's voice for the language (`espeak-ng --voices`; default: the guide's code): the guide's
    # default voice for narration when no Piper voice of the language is configured (core.speech).
    espeak: str = ""

    @property
    def espeak_voice(self) -> str:
        return self.espeak or self.code

    @property
    def family(self) -> str:
        """The primary language subtag ("zh" for zh-Hans): what a Piper voice's config names."""
        return self.code.split("-")[0].lower()

    @property
    def label_codes(self) -> tuple[str, ...]:
        return self.wikidata or (self.code,)


LANGUAGES: tuple[Language, ...] = (
    # CIS visitors mostly read Russian (ATOR): their client languages get it.
    Language("ru", "Русский", "ru", "ru", ("ru", "uk", "be", "kk", "ky", "uz", "tg", "tk", "hy", "az"), ("en",)),
    Language("en", "English", "en", "en", ("en",), (), espeak="en-us"),
    Language("zh-Hans", "简体中文", "zh_Hans", "zh", ("zh",), wikidata=("zh-hans", "zh-cn", "zh"), espeak="cmn"),
    Language("ar", "العربية", "ar", "ar", ("ar",), rtl=True),
    Language("tr", "Türkçe", "tr", "tr", ("tr",)),
    Language("de", "Deutsch", "de", "de", ("de",)),
    Language("fa", "فارسی", "fa", "fa", ("fa",), rtl=True),
)
DEFAULT_LANGUAGE = "en"  # for clients whose language the guide does not speak
CODES: tuple[str, ...] = tuple(language.code for language in LANGUAGES)
_BY_CODE = {language.code: language for language in LANGUAGES}
_BY_TELEGRAM = {tag: language for language in LANGUAGES for tag in language.telegram}


def language(code: str) -> Language:
    """The registry line of a guide language code (KeyError for an unknown one)."""
    return _BY_CODE[code]


def closest_language(language_code: str | None) -> str:
    """The guide language for a Telegram client's IETF tag: the tag itself when the guide speaks it,
    else its primary subtag's, else DEFAULT_LANGUAGE (`zh-hant` → zh-Hans, `de-AT` → de, `pt-br` → en)."""
    tag = (language_code or "").strip().lower()
    for code in CODES:
        if code.lower() == tag:
            return code
    found = _BY_TELEGRAM.get(tag.split("-")[0])
    return found.code if found else DEFAULT_LANGUAGE


def name_chain(code: str) -> tuple[str, ...]:
    """The languages a landmark's name or description is looked up in for `code`, in order."""
    return (code, *(c for c in language(code).fallback if c != code))
