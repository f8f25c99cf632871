"""Rate limiting per sender: a sliding window of recent requests, keyed by user (or by chat for updates
that carry no user, such as channel posts), with idle senders dropped so the table cannot grow forever."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

# Requests (photos and searches) one sender may make per window; more get a polite "wait" reply.
REQUESTS_PER_WINDOW = 5
WINDOW_SECONDS = 10.0
# Requests between sweeps of senders idle for a whole window.
SWEEP_EVERY = 1000


class UserRateLimiter:
    def __init__(
        self,
        limit: int = REQUESTS_PER_WINDOW,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._recent: dict[int, deque[float]] = {}
        self._calls = 0

    def __len__(self) -> int:
        """Senders currently tracked."""
        return len(self._recent)

    def allow(self, sender: int) -> bool:
        """Record a request and say whether it is within the limit (refused ones are not counted)."""
        now = self._clock()
        self._calls += 1
        if self._calls % SWEEP_EVERY == 0:
            self._sweep(now)
        recent = self._recent.setdefault(sender, deque())
        while recent and now - recent[0] >= self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            return False
        recent.append(now)
        return True

    def forget(self, sender: int) -> None:
        """Drop what is kept about a sender (/forget)."""
        self._recent.pop(sender, None)

    def _sweep(self, now: float) -> None:
        idle = [key for key, recent in self._recent.items() if not recent or now - recent[-1] >= self.window]
        for key in idle:
            del self._recent[key]
