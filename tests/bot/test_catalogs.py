"""The message catalogs: complete in every language, plural rules, numbers and lists as each writes them,
and a new language is a catalog plus one registry line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.i18n import catalog, catalog_path, catalog_problems
from bot.texts import LANGUAGES, distance_text, join_names, percent, plural
from core.languages import CODES

REPO = Path(__file__).parents[2]
ENGLISH = catalog_path("en")


@pytest.mark.parametrize("code", CODES)
def test_every_catalog_is_complete_and_well_formed(code: str) -> None:
    assert catalog_problems(catalog_path(code), ENGLISH) == []


def test_the_check_catches_a_missing_an_untranslated_and_a_broken_message(tmp_path: Path) -> None:
    broken = catalog_path("de").read_text(encoding="utf-8")
    broken = broken.replace('msgid "also"\nmsgstr "Weitere Möglichkeiten:"\n', "")  # missing
    broken = broken.replace("{km} km entfernt", "{kilometres} km entfernt")  # a broken placeholder
    english_error = catalog("en").text("error")
    broken = broken.replace("Etwas ist schiefgegangen. Bitte versuchen Sie es etwas später noch einmal.", english_error)
    broken = broken.replace('msgid "map"\nmsgstr "🗺 Karte"', 'msgid "map"\nmsgstr ""')
    path = tmp_path / "de.po"
    path.write_text(broken, encoding="utf-8")
    problems = catalog_problems(path, ENGLISH)
    assert "missing: also" in problems and "error: not translated" in problems and "map: empty" in problems
    assert any(p.startswith("near_none: placeholders") for p in problems)


@pytest.mark.parametrize(
    ("lang", "count", "expected"),
    [
        ("ru", 1, "1 место"),
        ("ru", 3, "3 места"),
        ("ru", 14, "14 мест"),
        ("ru", 21, "21 место"),
        ("en", 1, "1 place"),
        ("en", 2, "2 places"),
        ("ar", 1, "مكان واحد"),
        ("ar", 2, "مكانان"),
        ("ar", 5, "5 أماكن"),
        ("ar", 11, "11 مكانًا"),
        ("zh-Hans", 3, "3 个地方"),
        ("de", 1, "1 Ort"),
        ("tr", 1002, "1.002 yer"),
        ("fa", 3, "۳ مکان"),  # Persian digits: CLDR's default numbering system for fa (arabext)
    ],
)
def test_counted_phrases_follow_each_languages_plural_rules(lang: str, count: int, expected: str) -> None:
    assert plural("n_places", count, lang) == expected


def test_numbers_percentages_lists_and_distances_as_each_language_writes_them() -> None:
    assert distance_text(1234, "ru") == "1,2 км" and distance_text(1234, "en") == "1.2 km"
    assert distance_text(350, "de") == "350 m" and distance_text(12_400, "zh-Hans") == "12 公里"
    assert percent(0.92, "en") == "92%" and percent(0.92, "tr") == "%92" and percent(0.92, "de") == "92\xa0%"
    assert join_names(["A", "B", "C"], "ru") == "A, B и C" and join_names(["A", "B"], "zh-Hans") == "A和B"
    assert join_names(["A"], "ar") == "A" and join_names([], "en") == ""
    assert plural("n_hours", 1.5, "en") == "1.5 hours" and plural("n_hours", 1, "ru") == "1 час"


def test_right_to_left_languages_are_marked_and_every_language_names_itself() -> None:
    from core.languages import language

    assert [code for code in LANGUAGES if language(code).rtl] == ["ar", "fa"]
    names = {language(code).name for code in LANGUAGES}
    assert len(names) == len(LANGUAGES) and "Deutsch" in names and "简体中文" in names


def test_a_new_language_is_a_catalog_and_one_registry_line(tmp_path: Path) -> None:
    """Spanish, added the documented way in a copy of the code: it is offered and spoken everywhere."""
    for package in ("bot", "core"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    registry = tmp_path / "core" / "languages.py"
    line = '    Language("es", "Español", "es", "es", ("es",)),\n'
    source = registry.read_text(encoding="utf-8")
    registry.write_text(source.replace('    Language("fa",', line + '    Language("fa",', 1), encoding="utf-8")
    english = catalog_path("en").read_text(encoding="utf-8")
    spanish = english.replace('msgstr "Choose a language:"', 'msgstr "Elige un idioma:"')
    spanish = spanish.replace("Language: en", "Language: es")
    (tmp_path / "bot" / "locales" / "es.po").write_text(spanish, encoding="utf-8")
    code = """
import re
from bot.handlers import LANG_PATTERN
from bot.texts import LANGUAGES, commands, language_for, plural, text
assert "es" in LANGUAGES and language_for("es-MX") == "es"
assert re.match(LANG_PATTERN, "lang:es") and not re.match(LANG_PATTERN, "lang:xx")
assert text("lang_choose", "es") == "Elige un idioma:" and plural("n_places", 2, "es") == "2 places"
assert [name for name, _ in commands("es")][:2] == ["start", "help"]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_every_fallback_language_has_its_marker_in_every_catalog() -> None:
    """Issue #32: "(Name auf English)" spliced a language name in from code; the marker is a message."""
    from bot.i18n import catalog
    from core.languages import language

    fallbacks = {code for lang in LANGUAGES for code in language(lang).fallback}
    assert fallbacks == {"en"}
    for lang in LANGUAGES:
        for code in fallbacks:
            assert catalog(lang).has(f"name_in:{code}") and "{" not in catalog(lang).text(f"name_in:{code}")


def test_stats_of_an_empty_store_never_say_none(tmp_path: Path) -> None:
    from core import SqliteContributionStore, stats_summary

    summary = stats_summary(SqliteContributionStore(tmp_path / "contrib").stats())
    assert "None" not in summary and "p50/p95 –/– ms" in summary
