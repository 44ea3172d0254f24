"""PollHealth reads the SDK core's long-poll metrics to tell whether polls reach Temporal."""

from __future__ import annotations

from shadow_sdk.observability import PollHealth
from shadow_sdk.observability._polls import FAILURES, LATENCY, RECOVERY_QUIET, REQUESTS

POLL = (("operation", "PollWorkflowTaskQueue"),)
FAILED = (("operation", "PollActivityTaskQueue"), ("status_code", "UNAVAILABLE"))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def failed_poll() -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    """What the core records for one poll attempt that fails."""
    return [(REQUESTS, POLL, 1), (FAILURES, FAILED, 1), (LATENCY, POLL, 0.01)]


def test_a_streak_starts_with_the_first_failed_poll_and_lasts_while_polls_fail() -> None:
    clock = Clock()
    polls = PollHealth(clock=clock)
    polls.observe([(REQUESTS, POLL, 1)])
    assert polls.failing_for() == 0

    polls.observe(failed_poll())
    clock.now += 7
    polls.observe(failed_poll())
    clock.now += 3

    assert polls.failing_for() == 10
    assert polls.last_status == "UNAVAILABLE"


def test_a_poll_that_ends_without_failing_ends_the_streak() -> None:
    clock = Clock()
    polls = PollHealth(clock=clock)
    polls.observe(failed_poll())
    clock.now += 5

    polls.observe([(REQUESTS, POLL, 1), (LATENCY, POLL, 0.3)])

    assert polls.failing_for() == 0


def test_an_answering_server_ends_the_streak_once_polls_stay_quiet() -> None:
    """An idle server holds a good poll for a minute: its answer to a health check counts."""
    clock = Clock()
    polls = PollHealth(clock=clock)
    polls.observe(failed_poll())
    clock.now += 2
    polls.server_answered()
    clock.now += RECOVERY_QUIET - 1
    assert polls.failing
    polls.observe(failed_poll())  # Still failing: the answer does not count.
    clock.now += RECOVERY_QUIET
    assert polls.failing

    polls.server_answered()
    clock.now += RECOVERY_QUIET

    assert not polls.failing


def test_other_calls_do_not_count() -> None:
    polls = PollHealth()
    polls.observe([("temporal_long_request_failure", (("operation", "GetWorkflowHistory"),), 1)])
    polls.observe([("temporal_request_failure", (("operation", "StartWorkflowExecution"),), 1)])

    assert not polls.failing
