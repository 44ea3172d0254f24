"""What a result cache reports: requests and errors as metrics, one warning per streak of errors.

Metrics go through a Temporal :class:`~temporalio.common.MetricMeter`: the
``metric_meter`` the cache was given, else the activity's when called inside an
activity (which adds the activity's ``namespace``, ``task_queue`` and
``activity_type``), else the default runtime's. Counters are bound to their
labels once per meter, so that counting a hit is one call:

* ``shadow_cache_requests_total{cache, tier, outcome}``: each call counts once
  at ``tier="memory"`` (``hit`` when served from memory or by joining an
  identical call in flight, else ``miss``), and each memory miss that Redis
  answers once at ``tier="redis"`` (a value that does not decode is a ``miss``;
  a failed lookup counts as an error only). Calls that did not run the function
  = memory hits + Redis hits.
* ``shadow_cache_errors_total{cache, error}``: Redis and decoding failures, by
  exception class name.

Labels are bounded: never a key or an argument.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import pydantic
import temporalio.activity
import temporalio.common
import temporalio.runtime

if TYPE_CHECKING:
    from shadow_sdk.resilience._redis import RedisConnection

CACHE_REQUESTS: Final = "shadow_cache_requests"
"""Counter of calls by ``cache``, ``tier`` and ``outcome`` (``shadow_cache_requests_total``)."""
CACHE_ERRORS: Final = "shadow_cache_errors"
"""Counter of cache failures by ``cache`` and ``error`` (``shadow_cache_errors_total``)."""

logger = logging.getLogger("shadow_sdk.resilience")


class Counters:
    """A cache's counters on one meter, with their labels bound once.

    Attributes:
        meter: The meter they count on.
        cache: The cache's name, their ``cache`` label.
        memory_hit: ``tier="memory", outcome="hit"``.
        memory_miss: ``tier="memory", outcome="miss"``.
    """

    def __init__(self, meter: temporalio.common.MetricMeter, cache: str) -> None:
        self.meter = meter
        self.cache = cache
        self._requests = meter.create_counter(
            CACHE_REQUESTS, "Calls of cached functions by tier and outcome"
        )
        self._errors = meter.create_counter(CACHE_ERRORS, "Result cache failures by error")
        self._bound: dict[tuple[str, str], temporalio.common.MetricCounter] = {}
        self.memory_hit = self.requests("memory", "hit")
        self.memory_miss = self.requests("memory", "miss")

    def requests(self, tier: str, outcome: str) -> temporalio.common.MetricCounter:
        """The counter of ``tier`` and ``outcome``."""
        counter = self._bound.get((tier, outcome))
        if counter is None:
            counter = self._requests.with_additional_attributes(
                {"cache": self.cache, "tier": tier, "outcome": outcome}
            )
            self._bound[tier, outcome] = counter
        return counter

    def errors(self, label: str) -> temporalio.common.MetricCounter:
        """The counter of errors of class ``label``."""
        counter = self._bound.get(("error", label))
        if counter is None:
            counter = self._errors.with_additional_attributes({"cache": self.cache, "error": label})
            self._bound["error", label] = counter
        return counter


class CacheReports:
    """Counts and logs for one cache, which passes its current name and meter at each use.

    Args:
        redis: The cache's Redis connection, whose password never reaches a log.
    """

    def __init__(self, redis: RedisConnection | None) -> None:
        self._redis = redis
        self._counters: Counters | None = None
        self._streaks: dict[str, int] = {}

    def counters(self, name: str, meter: temporalio.common.MetricMeter | None) -> Counters:
        """The counters of ``meter``, or of the meter in use when it is ``None``."""
        if meter is None:
            if temporalio.activity.in_activity():
                meter = temporalio.activity.metric_meter()
            else:
                meter = temporalio.runtime.Runtime.default().metric_meter
        counters = self._counters
        if counters is None or counters.meter is not meter or counters.cache != name:
            counters = self._counters = Counters(meter, name)
        return counters

    def error(
        self,
        name: str,
        meter: temporalio.common.MetricMeter | None,
        kind: str,
        error: Exception,
        subject: str | None,
    ) -> None:
        """Count ``error`` and log it, as a warning if it starts a streak of its ``kind``.

        Args:
            name: The cache's name.
            meter: The meter the cache was given, or ``None``.
            kind: ``"redis"`` or ``"value"``: each has its own streak.
            error: What went wrong.
            subject: The cached function's name, for a value that is unusable.
        """
        label = type(error).__name__.lstrip("_")
        self.counters(name, meter).errors(label).add(1)
        streak = self._streaks.get(kind, 0) + 1
        self._streaks[kind] = streak
        of = f" of {subject}" if subject is not None else ""
        what = "Redis failed" if kind == "redis" else f"a value{of} is unusable"
        # One warning per streak: an outage must not write one line per call.
        level = logging.WARNING if streak == 1 else logging.DEBUG
        logger.log(
            level,
            "result cache %r: %s (%s: %s); calls go on without the cache",
            name,
            what,
            label,
            self._describe(error),
        )

    def recovered(self, name: str, kind: str) -> None:
        """End the streak of errors of ``kind``, saying so if there was one."""
        streak = self._streaks.pop(kind, 0)
        if streak:
            what = "Redis" if kind == "redis" else "cached values"
            logger.info("result cache %r: %s usable again after %d errors", name, what, streak)

    def _describe(self, error: Exception) -> str:
        """The error's message, without what may be customer data or the Redis password."""
        if isinstance(error, pydantic.ValidationError):
            # Its message quotes the invalid input, which is a cached result.
            problems = error.errors(include_url=False, include_input=False, include_context=False)
            text = "; ".join(
                f"{'.'.join(map(str, problem['loc'])) or 'value'}: {problem['msg']}"
                for problem in problems
            )
        else:
            text = str(error) or "no details"
        return self._redis.redact(text) if self._redis is not None else text
