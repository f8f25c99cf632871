"""Per-user rate limiting: a sliding window of recent requests."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

# Requests (photos and searches) one user may make per window; more get a polite "wait" reply.
REQUESTS_PER_WINDOW = 5
WINDOW_SECONDS = 10.0


class UserRateLimiter:
    def __init__(
        self,
        limit: int = REQUESTS_PER_WINDOW,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._recent: dict[int, deque[float]] = defaultdict(deque)

    def allow(self, user_id: int) -> bool:
        """Record a request and say whether it is within the limit (refused ones are not counted)."""
        now = self._clock()
        recent = self._recent[user_id]
        while recent and now - recent[0] >= self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            return False
        recent.append(now)
        return True
