"""The sliding windows in which a circuit breaker counts calls, failures and slow calls.

Both keep running totals, so recording a call and reading the totals cost the
same whatever the window's size; neither grows with traffic. They are not
thread-safe: the breaker calls them with its lock held.
"""

from __future__ import annotations

import math


class CountWindow:
    """The outcomes of the last ``size`` calls, as a ring of bit flags."""

    # Each byte of the ring is one call: bit 1 set for any call, 2 if it failed, 4 if slow.
    _ring: bytearray
    _next: int
    _calls: int
    _failures: int
    _slow: int

    def __init__(self, size: int) -> None:
        self._size = size
        self.clear()

    def add(self, now: float, failed: bool, slow: bool) -> tuple[int, int, int]:
        """Record a call that ended at ``now``; returns the totals, as :meth:`totals` does."""
        ring, index = self._ring, self._next
        old = ring[index]
        new = 1 + 2 * failed + 4 * slow
        # A call like the one it replaces changes no total: the common case, kept short.
        if old != new:
            ring[index] = new
            if old:
                self._failures += (new >> 1 & 1) - (old >> 1 & 1)
                self._slow += (new >> 2) - (old >> 2)
            else:
                self._calls += 1
                self._failures += failed
                self._slow += slow
        index += 1
        self._next = 0 if index == self._size else index
        return self._calls, self._failures, self._slow

    def totals(self, now: float) -> tuple[int, int, int]:
        """Calls, failures and slow calls in the window."""
        return self._calls, self._failures, self._slow

    def clear(self) -> None:
        """Forget every call."""
        self._ring = bytearray(self._size)
        self._next = 0
        self._calls = self._failures = self._slow = 0


class TimeWindow:
    """The outcomes of the last ``seconds`` seconds, one bucket per second.

    A call leaves the window between ``seconds - 1`` and ``seconds`` seconds
    after it ended: when the clock reaches the ``seconds``-th whole second after
    the one it ended in.
    """

    _latest: int | None
    _calls: int
    _failures: int
    _slow: int

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds
        self.clear()

    def _advance(self, now: float) -> int:
        """Empty the buckets of seconds that left the window; return the bucket of ``now``."""
        second = math.floor(now)
        latest = self._latest
        if latest is None or second > latest:
            if latest is not None:
                for stale in range(latest + 1, latest + 1 + min(second - latest, self._seconds)):
                    index = stale % self._seconds
                    self._calls -= self._bucket_calls[index]
                    self._failures -= self._bucket_failures[index]
                    self._slow -= self._bucket_slow[index]
                    self._bucket_calls[index] = 0
                    self._bucket_failures[index] = 0
                    self._bucket_slow[index] = 0
            self._latest = latest = second
        return latest % self._seconds

    def add(self, now: float, failed: bool, slow: bool) -> tuple[int, int, int]:
        """Record a call that ended at ``now``; returns the totals, as :meth:`totals` does."""
        index = self._advance(now)
        self._bucket_calls[index] += 1
        self._bucket_failures[index] += failed
        self._bucket_slow[index] += slow
        self._calls += 1
        self._failures += failed
        self._slow += slow
        return self._calls, self._failures, self._slow

    def totals(self, now: float) -> tuple[int, int, int]:
        """Calls, failures and slow calls in the window as it is at ``now``."""
        self._advance(now)
        return self._calls, self._failures, self._slow

    def clear(self) -> None:
        """Forget every call."""
        # Bucket i holds second s, where s % seconds == i, while s is in the window.
        self._bucket_calls = [0] * self._seconds
        self._bucket_failures = [0] * self._seconds
        self._bucket_slow = [0] * self._seconds
        self._latest = None
        self._calls = self._failures = self._slow = 0


Window = CountWindow | TimeWindow
"""Either window; a breaker counting ``consecutive_failures`` has none."""
