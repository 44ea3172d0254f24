"""The rollout workflow: deploy a version step by step, steered while it runs."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from contextlib import suppress
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from shadow_sdk.resilience import EXTERNAL_API, QUICK

    from .activities import check_targets, deploy_target
    from .models import Deployment, Rollout, RolloutReport, RolloutState, RolloutStatus

INVALID_INPUT = "InvalidInput"
"""Error type of a rollout or of new targets that break the rules below."""

MAX_TARGETS = 100
"""Most targets in one rollout.

Each step adds about ten events to the workflow's history, which Temporal keeps
small (it warns at 10,240 events). For a larger fleet, make each target a group of hosts.
"""

MAX_INTERVAL_SECONDS = 24 * 60 * 60
"""Longest wait between two steps."""

_TARGET_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")


def target_problems(targets: Sequence[str], known: Collection[str] = ()) -> list[str]:
    """What is wrong with adding ``targets`` to a rollout that has the ``known`` ones.

    Returns:
        One sentence per problem; none if the targets can be added.
    """
    problems = []
    if not targets:
        problems.append("no targets given")
    if len(known) + len(targets) > MAX_TARGETS:
        problems.append(f"a rollout has at most {MAX_TARGETS} targets")
    if invalid := [repr(target) for target in targets if not _TARGET_NAME.match(target)]:
        problems.append(
            f"not target names (lower-case letters, digits, dots, dashes): {', '.join(invalid)}"
        )
    if twice := sorted(target for target, count in Counter(targets).items() if count > 1):
        problems.append(f"given twice: {', '.join(twice)}")
    if again := sorted(set(targets).intersection(known)):
        problems.append(f"already in the rollout: {', '.join(again)}")
    return problems


def rollout_problems(rollout: Rollout) -> list[str]:
    """What is wrong with ``rollout``; none if it can start."""
    problems = target_problems(rollout.targets)
    if not 0 <= rollout.interval_seconds <= MAX_INTERVAL_SECONDS:
        problems.append(f"the interval is not between 0 and {MAX_INTERVAL_SECONDS} seconds")
    return problems


# Pinned: a rollout steps through its targets by the rules it started with; one held
# for days keeps its version's workers for days, until it drains.
@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class RolloutWorkflow:
    """Deploy a version to targets one at a time, waiting ``interval_seconds`` between steps.

    People steer it while it runs:

    * the signals ``pause`` (hold before the next step), ``resume`` and ``cancel``
      (stop after the step in progress, and report the targets skipped);
    * the query ``state``: status, steps done, the target in progress;
    * the update ``add_targets``: its validator rejects bad targets before anything
      is written to history, then its handler checks them with an activity.

    The state is set up by ``__init__`` (``@workflow.init``) because a signal or an
    update can arrive with the start, before ``run`` begins. Each step runs with the
    ``EXTERNAL_API`` preset; a step that still fails when its retries run out fails the rollout.
    """

    @workflow.init
    def __init__(self, rollout: Rollout) -> None:
        self._version = rollout.version
        self._interval = rollout.interval_seconds
        self._pending = list(rollout.targets)
        self._checking: list[str] = []
        self._deployed: list[str] = []
        self._current: str | None = None
        self._next_step_at: datetime | None = None
        self._paused = False
        self._cancel_reason: str | None = None
        self._report: RolloutReport | None = None

    @workflow.run
    async def run(self, rollout: Rollout) -> RolloutReport:
        """Deploy every target, or those before a cancel, and report what was done."""
        if problems := rollout_problems(rollout):
            raise ApplicationError(f"invalid rollout: {'; '.join(problems)}", type=INVALID_INPUT)
        await self._deploy_pending()
        # An add_targets update may still be checking its targets: returning now would
        # cut it off. Wait for it (and any that comes meanwhile), and deploy what it added.
        while not workflow.all_handlers_finished():
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._deploy_pending()
        self._report = RolloutReport(
            version=self._version,
            status="cancelled" if self._cancelling else "completed",
            deployed=self._deployed,
            skipped=self._pending,
            reason=self._cancel_reason,
        )
        return self._report

    @workflow.signal
    def pause(self) -> None:
        """Hold the rollout before its next step; the step in progress finishes."""
        self._paused = True

    @workflow.signal
    def resume(self) -> None:
        """Let a paused rollout go on."""
        self._paused = False

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """Stop after the step in progress; the result lists the targets skipped."""
        if self._cancel_reason is None:
            self._cancel_reason = reason

    @workflow.query
    def state(self) -> RolloutState:
        """Where the rollout stands."""
        status: RolloutStatus = "running"
        if self._report is not None:
            status = self._report.status
        elif self._cancelling:
            status = "cancelling"
        elif self._paused:
            status = "paused"
        return RolloutState(
            status=status,
            paused=self._paused,
            step=len(self._deployed),
            steps=len(self._deployed) + (self._current is not None) + len(self._pending),
            current=self._current,
            next_step_at=self._next_step_at,
        )

    @workflow.update
    async def add_targets(self, targets: list[str]) -> RolloutState:
        """Check new targets, then add them to the end of the rollout; returns its state."""
        # Claimed during the check, so that the validator refuses them to another update.
        self._checking += targets
        try:
            await workflow.execute_activity(check_targets, targets, **QUICK)
        finally:
            for target in targets:
                self._checking.remove(target)
        self._pending += targets
        return self.state()

    @add_targets.validator
    def _validate_add_targets(self, targets: list[str]) -> None:
        """Reject targets that cannot be added; a rejected update leaves no trace in history."""
        known = {*self._deployed, *self._pending, *self._checking}
        if self._current is not None:
            known.add(self._current)
        problems = target_problems(targets, known)
        if self._cancelling:
            problems.insert(0, "the rollout is being cancelled")
        if problems:
            raise ApplicationError("; ".join(problems), type=INVALID_INPUT)

    @property
    def _cancelling(self) -> bool:
        return self._cancel_reason is not None

    async def _deploy_pending(self) -> None:
        """Deploy the pending targets in order until none is left or the rollout is cancelled."""
        while self._pending and not self._cancelling:
            if self._deployed:
                await self._wait_interval()
            await workflow.wait_condition(lambda: not self._paused or self._cancelling)
            if self._cancelling:
                return
            self._current = target = self._pending.pop(0)
            await workflow.execute_activity(
                deploy_target, Deployment(target=target, version=self._version), **EXTERNAL_API
            )
            self._deployed.append(target)
            self._current = None

    async def _wait_interval(self) -> None:
        """Wait the interval between two steps; a cancel ends the wait early."""
        if self._interval <= 0:
            return
        self._next_step_at = workflow.now() + timedelta(seconds=self._interval)
        with suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._cancelling, timeout=self._interval, timeout_summary="interval"
            )
        self._next_step_at = None
