"""What a photo's credit may carry to a tourist: a free licence, and links only to pages we know.

- `licence_problem`: Commons files come under many licences, and its API hands over non-free ones too
  ("Fair use", "CC BY-NC-ND 4.0", "All rights reserved"). Only an allow-list of free licences, matched on
  their normalised short names, is accepted; anything else is refused with the reason the report shows.
- `trusted_link`: a credit links the author to the file's page on Commons and the licence to its text;
  any other address (a `descriptionurl` or `LicenseUrl` naming another site) is shown as text, unlinked.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Free licences by their normalised short name (lower case, '-' and '_' as spaces, single spaces):
# public domain marks (Commons' "Public domain", "PD-old", "PD-US", …), CC0, CC BY and CC BY-SA of any
# version with or without a jurisdiction port ("cc by-sa 3.0 de"), the GFDL, the Free Art License, and
# Commons' own "Attribution" and "Copyrighted free use" tags.
FREE_LICENCES = (
    r"public domain( mark)?( [\w.]+)*",
    r"pd( [\w.]+)*",
    r"pdm( 1\.0)?",
    r"cc0( 1\.0)?( universal)?",
    r"cc zero",
    r"cc by( sa)?( \d\.\d(,\d\.\d)*)?( [a-z]{2,3}| international)?",
    r"creative commons attribution( share alike)?( \d\.\d)?( [a-z]{2,3}| international)?",
    r"gfdl( \d\.\d)?( only| or later)?",
    r"fal( 1\.[23])?",
    r"free art license( 1\.[23])?",
    r"attribution( only)?",
    r"copyrighted free use",
)
_FREE = re.compile("|".join(f"(?:{pattern})" for pattern in FREE_LICENCES))
# Words that make a licence non-free whatever else its name says ("cc by-nc-sa 4.0", "non-free media").
_NON_FREE = re.compile(
    r"\b(nc|nd|noncommercial|non commercial|noderivs|no derivatives|non free|fair use|"
    r"all rights reserved|copyrighted)\b"
)

# Pages a credit may link to: each file's page on Commons, and licence texts.
TRUSTED_LINK_HOSTS = frozenset(
    {
        "commons.wikimedia.org",
        "creativecommons.org",
        "www.gnu.org",
        "artlibre.org",
    }
)


def normalised_licence(name: str) -> str:
    return " ".join(name.lower().replace("-", " ").replace("_", " ").split())


def licence_problem(name: str) -> str:
    """ "" when `name` is a free licence a photo may be shown under, else the reason it is refused."""
    normal = normalised_licence(name)
    if not normal:
        return "no licence information"
    if _NON_FREE.search(normal) and normal != "copyrighted free use":
        return "non-free licence"
    if not _FREE.fullmatch(normal):
        return "licence not on the free list"
    return ""


def trusted_link(url: str) -> str:
    """`url` when it is an https address on a host credits may link to, else ""."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme != "https" or parts.username or parts.password or parts.port not in (None, 443):
        return ""
    host = (parts.hostname or "").rstrip(".")
    if host not in TRUSTED_LINK_HOSTS:
        return ""
    if host == "commons.wikimedia.org" and not parts.path.startswith("/wiki/"):
        return ""
    return url.strip()
