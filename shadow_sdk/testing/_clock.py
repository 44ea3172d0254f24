"""A clock that moves only when a test moves it."""

from __future__ import annotations

from datetime import timedelta

from shadow_sdk._duration import Duration, to_timedelta


class FakeClock:
    """Monotonic seconds that move only when the test says so.

    Pass it where shadow_sdk takes a ``clock`` (a circuit breaker's options, a result
    cache) to test what happens after an open duration or a TTL without waiting.

    Args:
        start: The first reading, in seconds.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, by: Duration) -> None:
        """Move the clock forward by ``by``, seconds or a ``timedelta``."""
        step = to_timedelta(by, "by", non_negative=True)
        self.now += step / timedelta(seconds=1)
