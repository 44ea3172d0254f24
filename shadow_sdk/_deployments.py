"""Rolling out Worker Deployment Versions: which version is current, ramping, drained.

The Temporal client has no methods for these yet; they are calls of the workflow
service, as the Temporal CLI's ``temporal worker deployment`` commands make them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum

import temporalio.client
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionMessage
from temporalio.api.enums.v1 import (
    RoutingConfigUpdateState,
    VersionDrainageStatus,
    WorkerDeploymentVersionStatus,
)
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)

_IDENTITY = "shadow-sdk rollout"
_ROUTING_POLL_SECONDS = 0.2


class VersionStatus(enum.StrEnum):
    """Where a version is in its life, as the server reports it."""

    UNSPECIFIED = "unspecified"
    CREATED = "created"
    """Its workers poll, and no workflow was routed to it yet."""
    CURRENT = "current"
    RAMPING = "ramping"
    DRAINING = "draining"
    """No longer current or ramping; pinned workflows still run on it."""
    DRAINED = "drained"
    """Nothing runs on it any more: its workers can go."""
    INACTIVE = "inactive"


@dataclasses.dataclass(frozen=True)
class VersionSummary:
    """One version of a deployment: its build id and where it is."""

    build_id: str
    status: VersionStatus


@dataclasses.dataclass(frozen=True)
class DeploymentStatus:
    """A Worker Deployment's routing: the current version, the ramping one, every version."""

    name: str
    current_build_id: str | None
    """``None``: new workflows go to unversioned workers."""
    ramping_build_id: str | None
    ramping_percentage: float
    versions: tuple[VersionSummary, ...]
    routing_propagated: bool
    """Whether every task queue of the deployment routes by the latest change yet."""

    def version(self, build_id: str) -> VersionSummary:
        """The version ``build_id``; ``KeyError`` if no worker of it ever polled."""
        for version in self.versions:
            if version.build_id == build_id:
                return version
        raise KeyError(f"no version {build_id!r} in worker deployment {self.name!r}")


class WorkerDeployment:
    """A Worker Deployment of the client's namespace, for the steps of a rollout.

    A version exists once a worker of it polled (``TEMPORAL_DEPLOYMENT_NAME`` and
    ``TEMPORAL_WORKER_BUILD_ID`` set). Make it current, or ramp a share of new workflows
    to it first; once it is current, the old version drains: its pinned workflows finish
    on it, and :meth:`drained` tells when its workers can go.

    Args:
        client: A client of the namespace; its identity is not used for the changes.
        name: The deployment's name (``TEMPORAL_DEPLOYMENT_NAME``).
    """

    def __init__(self, client: temporalio.client.Client, name: str) -> None:
        self.client = client
        self.name = name

    async def describe(self) -> DeploymentStatus:
        """The deployment's routing and versions.

        Raises:
            temporalio.service.RPCError: ``NOT_FOUND`` if no worker of it ever polled.
        """
        response = await self.client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(
                namespace=self.client.namespace, deployment_name=self.name
            )
        )
        info = response.worker_deployment_info
        routing = info.routing_config
        return DeploymentStatus(
            name=info.name,
            current_build_id=routing.current_deployment_version.build_id or None,
            ramping_build_id=routing.ramping_deployment_version.build_id or None,
            ramping_percentage=routing.ramping_version_percentage,
            versions=tuple(
                VersionSummary(summary.deployment_version.build_id, _status(summary.status))
                for summary in info.version_summaries
            ),
            routing_propagated=info.routing_config_update_state
            != RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS,
        )

    async def set_current(self, build_id: str | None) -> None:
        """Send every new workflow (and every auto-upgrading one) to ``build_id``.

        ``None`` sends them to unversioned workers. The version that was current drains.

        Raises:
            temporalio.service.RPCError: The version has no pollers yet, or the name is wrong.
        """
        await self.client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=self.client.namespace,
                deployment_name=self.name,
                build_id=build_id or "",
                identity=_IDENTITY,
            )
        )

    async def set_ramping(self, build_id: str | None, percentage: float) -> None:
        """Send ``percentage`` (0 to 100) of new workflows to ``build_id``, the rest to current.

        ``None`` stops the ramp.

        Raises:
            ValueError: ``percentage`` is not between 0 and 100.
            temporalio.service.RPCError: The version has no pollers yet, or is current.
        """
        if not 0 <= percentage <= 100:
            raise ValueError(f"percentage={percentage!r}: must be between 0 and 100")
        await self.client.workflow_service.set_worker_deployment_ramping_version(
            SetWorkerDeploymentRampingVersionRequest(
                namespace=self.client.namespace,
                deployment_name=self.name,
                build_id=build_id or "",
                percentage=percentage if build_id else 0,
                identity=_IDENTITY,
            )
        )

    async def wait_until_routed(self) -> None:
        """Return once every task queue of the deployment routes by the last change.

        :meth:`set_current` and :meth:`set_ramping` return once the server accepted the
        change; its task queues take it up a moment later, and until then new
        workflows may still start on the version before. Bound the wait with
        ``asyncio.timeout``.
        """
        while True:  # The server offers no notification of it: poll.
            if (await self.describe()).routing_propagated:
                return
            await asyncio.sleep(_ROUTING_POLL_SECONDS)

    async def drained(self, build_id: str) -> bool:
        """Whether nothing runs on ``build_id`` any more, so its workers can be removed.

        The server checks a draining version's open workflows periodically (every few
        minutes by default), so this turns true some time after the last one closed.
        """
        response = await self.client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=self.client.namespace,
                deployment_version=VersionMessage(deployment_name=self.name, build_id=build_id),
            )
        )
        info = response.worker_deployment_version_info
        return (
            info.status == WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED
            or info.drainage_info.status == VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED
        )


def _status(value: int) -> VersionStatus:
    name = WorkerDeploymentVersionStatus.Name(value)  # type: ignore[arg-type]
    return VersionStatus(name.removeprefix("WORKER_DEPLOYMENT_VERSION_STATUS_").lower())
