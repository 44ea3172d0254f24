"""Saga: undo completed steps, in reverse, when a workflow fails or is cancelled.

A workflow that changes several systems (reserve stock, charge a card, book a
courier) cannot roll them back in one transaction. After each step succeeds it
registers how to undo it; if a later step fails, or the workflow is cancelled,
the registered compensations run, newest first, and the workflow then ends with
the error that started it.

Compared with ``io.temporal.workflow.Saga`` in the Java SDK, which this follows:

* an ``async with`` block compensates by itself on failure *and* on
  cancellation; Java's ``compensate()`` has to be called from a ``catch``, and a
  cancelled workflow in Java needs a detached scope for it;
* a compensation that is an activity is registered with its options, and one
  without a timeout is refused when registered, not when it is finally needed;
* the outcome of every compensation is kept (:attr:`Saga.result`) and, when
  some failed, reported together in one ``SagaCompensationFailed`` error whose
  details list them, with the original error as its cause.

Everything here is workflow code: deterministic, replay-safe, and free of I/O.
Import it in workflow modules through ``workflow.unsafe.imports_passed_through()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import temporalio.exceptions
import temporalio.workflow

from shadow_sdk.resilience._activity_type import activity_definition

COMPENSATION_FAILED = "SagaCompensationFailed"
"""``ApplicationError`` type of a workflow whose compensations did not all succeed."""

Status = Literal["completed", "failed", "skipped"]


@dataclass(frozen=True)
class CompensationOutcome:
    """How one compensation ended.

    Attributes:
        name: The compensation's name: the activity's, or the one given to :meth:`Saga.add`.
        status: ``completed``; ``failed``, with :attr:`error`; or ``skipped``, when an
            earlier compensation failed and the saga does not continue past failures.
        error: What went wrong, for a failed compensation.
    """

    name: str
    status: Status
    error: str | None = None


@dataclass(frozen=True)
class SagaResult:
    """What compensating did: one outcome per registered compensation, in the order run."""

    outcomes: tuple[CompensationOutcome, ...]

    @property
    def failures(self) -> tuple[CompensationOutcome, ...]:
        """The compensations that failed."""
        return tuple(outcome for outcome in self.outcomes if outcome.status == "failed")

    @property
    def succeeded(self) -> bool:
        """Whether every compensation completed."""
        return all(outcome.status == "completed" for outcome in self.outcomes)


@dataclass(frozen=True)
class _Compensation:
    name: str
    run: Callable[[], Awaitable[object]]


@dataclass
class Saga:
    """Compensations registered step by step, run when the block fails or is cancelled.

    ::

        async with Saga() as saga:
            reservation = await workflow.execute_activity(reserve, order, **QUICK)
            saga.add_activity(release, reservation, **QUICK)
            payment = await workflow.execute_activity(charge, order, **EXTERNAL_API)
            saga.add_activity(refund, payment, **EXTERNAL_API)
            await workflow.execute_activity(ship, order, **EXTERNAL_API)

    If ``ship`` fails, ``refund`` then ``release`` run and the workflow fails with
    the shipping error; if the workflow is cancelled while it waits, the same
    compensations run and the workflow ends cancelled. When the block ends
    normally nothing is compensated, nor when it raises an error that fails only
    the workflow task (a bug, which Temporal retries once it is fixed).

    A compensation that itself fails does not stop the others (unless
    ``continue_on_error=False``); the workflow then fails with
    ``SagaCompensationFailed``, whose details are the outcomes and whose cause is
    the original error, even when that was a cancellation: a half-undone change
    must not look like a clean cancel.

    Args:
        parallel: Run compensations concurrently instead of newest first. Only for
            compensations that do not depend on each other's order.
        continue_on_error: Run the remaining compensations after one fails; with
            ``False`` the rest are skipped (in parallel they have all started).
    """

    parallel: bool = False
    continue_on_error: bool = True
    result: SagaResult | None = field(default=None, init=False)
    """What :meth:`compensate` did; ``None`` until it ran."""
    _compensations: list[_Compensation] = field(default_factory=list, init=False, repr=False)

    def add(
        self, compensation: Callable[..., Awaitable[object]], *args: Any, name: str | None = None
    ) -> None:
        """Register an async callable, called with ``args`` to compensate.

        Use it for a compensation that is more than one activity, such as a child
        workflow or a few activities in a row.
        """
        label = name or str(getattr(compensation, "__name__", compensation))
        self._compensations.append(_Compensation(label, lambda: compensation(*args)))

    def add_activity(
        self,
        activity: Callable[..., Any] | str,
        *args: Any,
        **options: Any,
    ) -> None:
        """Register an activity, run with ``args`` and ``options`` to compensate.

        ``options`` are those of :func:`temporalio.workflow.execute_activity` and must
        include ``start_to_close_timeout`` or ``schedule_to_close_timeout``: a
        compensation that can hang forever would keep the workflow open forever.

        Raises:
            ValueError: No timeout is given.
        """
        name = activity if isinstance(activity, str) else _activity_name(activity)
        if not {"start_to_close_timeout", "schedule_to_close_timeout"} & options.keys():
            raise ValueError(
                f"compensation {name!r} needs start_to_close_timeout or schedule_to_close_timeout"
            )

        async def run() -> object:
            return await temporalio.workflow.execute_activity(activity, args=args, **options)

        self._compensations.append(_Compensation(name, run))

    async def compensate(self) -> SagaResult:
        """Run the registered compensations now, once, and return how each ended."""
        if self.result is not None:
            return self.result
        pending = list(reversed(self._compensations))
        self._compensations.clear()
        if self.parallel:
            outcomes = await asyncio.gather(*(_run(compensation) for compensation in pending))
        else:
            outcomes = []
            for compensation in pending:
                if outcomes and outcomes[-1].status == "failed" and not self.continue_on_error:
                    outcomes.append(CompensationOutcome(compensation.name, "skipped"))
                    continue
                outcomes.append(await _run(compensation))
        self.result = SagaResult(tuple(outcomes))
        return self.result

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        if not (
            isinstance(exc, asyncio.CancelledError) or temporalio.workflow.is_failure_exception(exc)
        ):
            # Any other error fails the workflow task, which Temporal retries after a
            # fix: the workflow has not ended, so nothing is undone.
            return
        # A cancelled workflow may still schedule activities once it has caught the
        # cancellation, which is exactly where this runs.
        result = await self.compensate()
        if not result.succeeded:
            raise _compensation_failed(result.outcomes) from exc


async def _run(compensation: _Compensation) -> CompensationOutcome:
    temporalio.workflow.logger.info("compensating: %s", compensation.name)
    try:
        await compensation.run()
    except Exception as error:  # Every failure is reported, none is lost.
        description = _describe(error)
        temporalio.workflow.logger.warning(
            "compensation %s failed: %s", compensation.name, description
        )
        return CompensationOutcome(compensation.name, "failed", description)
    return CompensationOutcome(compensation.name, "completed")


def _compensation_failed(
    outcomes: Sequence[CompensationOutcome],
) -> temporalio.exceptions.ApplicationError:
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    listed = "; ".join(f"{outcome.name}: {outcome.error}" for outcome in failed)
    return temporalio.exceptions.ApplicationError(
        f"{len(failed)} of {len(outcomes)} compensations failed: {listed}",
        [{"name": o.name, "status": o.status, "error": o.error} for o in outcomes],
        type=COMPENSATION_FAILED,
        non_retryable=True,
    )


def _describe(error: BaseException) -> str:
    """The innermost cause's type and message; 'Activity task failed' alone says nothing."""
    while isinstance(error, temporalio.exceptions.FailureError) and error.cause is not None:
        error = error.cause
    if isinstance(error, temporalio.exceptions.ApplicationError) and error.type:
        return f"{error.type}: {error.message}"
    return f"{type(error).__name__}: {error}"


def _activity_name(activity: Callable[..., Any]) -> str:
    _, name = activity_definition(activity)
    if name is None:
        name = getattr(activity, "__name__", None)
    return name if isinstance(name, str) else repr(activity)
