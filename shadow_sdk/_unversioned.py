"""Unversioned workers run workflows that declare a versioning behavior.

A workflow declares how it moves between Worker Deployment Versions with
``@workflow.defn(versioning_behavior=...)``, and temporalio reports that behavior with
every completed workflow task, whether the worker is versioned or not. The server
refuses it from an unversioned worker ("versioning behavior cannot be specified
without deployment options being set with versioned mode"), so every workflow task
fails and the run stalls: the declaration that makes versioned deploys safe would
make local work and unversioned deploys impossible. These runners leave the
behavior out of an unversioned worker's completions, which is what the server
expects of it, and change nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shadow_sdk._runner_wrappers import WrappedInstance, WrappingRunner

if TYPE_CHECKING:
    import temporalio.worker
    from temporalio.bridge.proto.workflow_activation import WorkflowActivation
    from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion


class UnversionedRunner(WrappingRunner):
    """Runs workflows with ``runner``, without reporting their versioning behavior."""

    def wrap(
        self, instance: temporalio.worker.WorkflowInstance
    ) -> temporalio.worker.WorkflowInstance:
        """See base class."""
        return _UnversionedInstance(instance)


class _UnversionedInstance(WrappedInstance):
    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = self.instance.activate(act)
        if completion.HasField("successful"):
            completion.successful.ClearField("versioning_behavior")
        return completion
