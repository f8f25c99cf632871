"""Whether a tourist's text asks what is near them, in free wording, in any language the guide speaks.

"What is nearby?" typed as text wants the /nearby answer, not photos matching the words. Exact phrases
missed most wordings ("ماذا يوجد بالقرب مني؟", "yakınlarda ne var", "Was gibt's hier in der Nähe?"), so
a text asks for what is near when it is short, names nearness and reads as a question or a request:

- short: at most NEARBY_MAX_WORDS words (NEARBY_MAX_CHARS characters for scripts written without
  spaces) — a long text that mentions nearness ("a white cathedral near the river at sunset") is a
  search for photos;
- nearness: one of the catalogs' `nearby_words` ("рядом", "near", "附近", "بالقرب", "yakın", "Nähe", …);
- a question or a request: a question mark of any script, one of the catalogs' `nearby_cues` ("what",
  "что", "什么", "ماذا", "ne var", "gibt", "چه", "me", …), or a text of one or two words ("nearby",
  "cathedral nearby").

Every language's words count for every reader (a German tourist may type English). The words are data in
the catalogs, which translators extend; matching is by word prefix ("near" → "nearby", "yakın" →
"yakınlarda") for scripts written with spaces, by substring for Chinese and inside Arabic and Persian
words, where prefixes such as "بـ" or "ال" attach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from bot.texts import LANGUAGES, text

# The longest text still taken as a question about what is near (words; characters without spaces).
NEARBY_MAX_WORDS = 10  # German asks in nine: "Gibt es hier in der Nähe etwas zu sehen?"
NEARBY_MAX_CHARS = 16
# A text this short that names nearness asks for it without a question ("рядом", "churches nearby").
NEARBY_BARE_WORDS = 2
# Cue words this short match only as whole words ("me", "ne", "ما"): as prefixes they would be in everything.
WHOLE_WORD_BELOW = 3
QUESTION_MARKS = "?？؟"
_WORD = re.compile(r"[\w\u200c'’-]+")
_NO_SPACES = re.compile(r"[\u3000-\u9fff\uf900-\ufaff]")  # CJK: written without spaces between words
_ATTACHING = re.compile(r"[\u0600-\u06ff]")  # Arabic script: prefixes attach to words


@dataclass(frozen=True)
class Vocabulary:
    phrases: frozenset[str]  # whole texts that ask it (the catalogs' `nearby_phrases`)
    words: tuple[str, ...]  # nearness
    cues: tuple[str, ...]  # a question or a request


@cache
def vocabulary() -> Vocabulary:
    def entries(key: str) -> set[str]:
        return {e.strip().casefold() for code in LANGUAGES for e in text(key, code).split("|") if e.strip()}

    words, cues = sorted(entries("nearby_words")), sorted(entries("nearby_cues"))
    return Vocabulary(frozenset(entries("nearby_phrases")), tuple(words), tuple(cues))


def asks_what_is_nearby(query: str) -> bool:
    """Whether `query` asks what is near the sender (see the module docstring)."""
    said = " ".join(query.casefold().split())
    bare = said.strip(" \t.!¡¿" + QUESTION_MARKS + "。！…")
    vocab = vocabulary()
    if bare in vocab.phrases:
        return True
    words = _WORD.findall(bare)
    if not words or len(words) > NEARBY_MAX_WORDS or (_NO_SPACES.search(bare) and len(bare) > NEARBY_MAX_CHARS):
        return False
    if not any(_mentions(bare, words, word) for word in vocab.words):
        return False
    if len(words) <= NEARBY_BARE_WORDS or any(mark in said for mark in QUESTION_MARKS):
        return True
    return any(_mentions(bare, words, cue) for cue in vocab.cues)


def _mentions(said: str, words: list[str], entry: str) -> bool:
    """Whether the text holds `entry`: a phrase or CJK/Arabic-script word as a substring, a short word as a
    whole word, any other as the start of a word."""
    if " " in entry or _NO_SPACES.search(entry):
        return entry in said
    if len(entry) < WHOLE_WORD_BELOW:
        return entry in words
    if _ATTACHING.search(entry):
        return any(entry in word for word in words)
    return any(word.startswith(entry) for word in words)
