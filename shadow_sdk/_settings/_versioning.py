"""Worker Deployment Versioning: the version a worker is, and what workflows do on a new one."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints

from shadow_sdk._settings._types import SettingsPart

MAX_NAME_LENGTH = 255
"""What the Temporal server accepts by default (its ``limit.workerBuildIdSize``)."""

_Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NAME_LENGTH)]


class VersioningSettings(SettingsPart):
    """Which Worker Deployment Version this worker is, if any.

    The variable names are the Temporal Worker Controller's, which sets them in each
    version's pods. The deployment name decides: set, the worker is a version of that
    deployment and needs a build id; unset, the worker is unversioned, as for local work,
    and ignores a build id. An image can therefore carry its build id wherever it runs.
    """

    temporal_deployment_name: _Name | None = None
    """The Worker Deployment this worker belongs to, usually the service's name."""
    temporal_worker_build_id: _Name | None = None
    """This worker's version within the deployment: an image tag or a commit."""
    worker_default_versioning_behavior: Literal["pinned", "auto-upgrade", "none"] = "pinned"
    """What a workflow that declares no behavior does when a new version becomes current.

    ``pinned``: it finishes on the version that started it, so no change to workflow code
    can break it (the old version keeps running until its workflows are done).
    ``auto-upgrade``: it moves to the current version at its next task, so changed code
    must stay compatible with its history. ``none``: every workflow must declare its own
    (``@workflow.defn(versioning_behavior=...)``); the worker refuses one that does not.
    """

    @property
    def versioned(self) -> bool:
        """Whether this worker runs as a Worker Deployment Version."""
        return self.temporal_deployment_name is not None

    def _problems(self) -> list[str]:
        problems = []
        name = self.temporal_deployment_name
        if name is not None and self.temporal_worker_build_id is None:
            problems.append(
                "TEMPORAL_WORKER_BUILD_ID: a versioned worker needs a build id besides "
                f"TEMPORAL_DEPLOYMENT_NAME={name!r}; unset the name for an unversioned worker"
            )
        return [*super()._problems(), *problems]
