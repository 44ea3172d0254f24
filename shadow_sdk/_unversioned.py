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

from typing import TYPE_CHECKING, Any

import temporalio.worker

if TYPE_CHECKING:
    from collections.abc import Sequence

    import temporalio.converter
    import temporalio.workflow
    from temporalio.bridge.proto.workflow_activation import WorkflowActivation
    from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion


# The base classes' signatures name private temporalio types (a workflow's definition, a
# command's info); they are passed through untouched, as Any.


class UnversionedRunner(temporalio.worker.WorkflowRunner):
    """Runs workflows with ``runner``, without reporting their versioning behavior."""

    def __init__(self, runner: temporalio.worker.WorkflowRunner) -> None:
        self.runner = runner

    @classmethod
    def around(cls, runner: temporalio.worker.WorkflowRunner) -> UnversionedRunner:
        """``runner`` wrapped, unless it is wrapped already."""
        return runner if isinstance(runner, cls) else cls(runner)

    def prepare_workflow(self, defn: Any) -> None:
        """See base class."""
        self.runner.prepare_workflow(defn)

    def create_instance(
        self, det: temporalio.worker.WorkflowInstanceDetails
    ) -> temporalio.worker.WorkflowInstance:
        """See base class."""
        return _UnversionedInstance(self.runner.create_instance(det))

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        """See base class."""
        self.runner.set_worker_level_failure_exception_types(types)


class _UnversionedInstance(temporalio.worker.WorkflowInstance):
    def __init__(self, instance: temporalio.worker.WorkflowInstance) -> None:
        self.instance = instance

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = self.instance.activate(act)
        if completion.HasField("successful"):
            completion.successful.ClearField("versioning_behavior")
        return completion

    def get_serialization_context(
        self, command_info: Any
    ) -> temporalio.converter.SerializationContext | None:
        return self.instance.get_serialization_context(command_info)

    def get_external_store_context(
        self, command_info: Any
    ) -> temporalio.converter.StorageDriverStoreContext:
        return self.instance.get_external_store_context(command_info)

    def get_info(self) -> temporalio.workflow.Info:
        return self.instance.get_info()

    def get_thread_id(self) -> int | None:
        return self.instance.get_thread_id()
