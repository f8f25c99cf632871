"""The one base class for everything a user (or an admin's files) can cause.

Entry points catch `GuideError` and print its message as one line: every subclass's message names
what is wrong and what to do about it. Anything else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations


class GuideError(Exception):
    """A problem the user can act on; `str(error)` is a one-line, presentable message."""
