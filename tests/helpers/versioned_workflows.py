"""Two versions of the same workflows, as two builds of a service would have them.

``Order`` is pinned, and its second version is incompatible with the first: it starts a
timer before it waits, so a run started on the first would fail to replay on it. ``Job``
upgrades automatically, and its second version only answers differently once signalled,
which every history of the first replays through.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior


class _Signalled:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="Order", versioning_behavior=VersioningBehavior.PINNED)
class OrderV1(_Signalled):
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "v1"


@workflow.defn(name="Order", versioning_behavior=VersioningBehavior.PINNED)
class OrderV2(_Signalled):
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(milliseconds=1))  # A command v1's histories lack.
        await workflow.wait_condition(lambda: self.go)
        return "v2"


@workflow.defn(name="Job", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class JobV1(_Signalled):
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "v1"


@workflow.defn(name="Job", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class JobV2(_Signalled):
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "v2"


@workflow.defn(name="Undeclared")
class Undeclared:
    @workflow.run
    async def run(self) -> str:
        return "no behavior"
