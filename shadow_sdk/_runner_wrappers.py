"""Workflow runners that wrap another, and one that spares the sandbox repeated questions.

While a workflow task's payloads are decoded, and again while its completion is encoded
(three passes: codec, external storage, references), temporalio asks the workflow
instance for a serialization context and a storage context for every payload it visits:
a command's input, then each of its headers. A sandboxed instance answers each question
by running code in the sandbox, which in a profile of a worker with encrypted headers
took about a seventh of its busy time. The answer cannot change while one command's
payloads are visited, nor for the workflow's own payloads (the answer for no command),
so :class:`ContextCachingRunner` remembers the last answer of each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import temporalio.worker

if TYPE_CHECKING:
    from collections.abc import Sequence

    import temporalio.converter
    import temporalio.workflow
    from temporalio.bridge.proto.workflow_activation import WorkflowActivation
    from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion

# The base classes' signatures name private temporalio types (a workflow's definition, a
# command's info); they are passed through untouched, as Any.


class WrappingRunner(temporalio.worker.WorkflowRunner):
    """Runs workflows with ``runner``, each instance wrapped by :meth:`wrap`."""

    def __init__(self, runner: temporalio.worker.WorkflowRunner) -> None:
        self.runner = runner

    @classmethod
    def around(
        cls, runner: temporalio.worker.WorkflowRunner
    ) -> Self | temporalio.worker.WorkflowRunner:
        """``runner`` wrapped, unless it is wrapped by this class already."""
        return runner if isinstance(runner, cls) else cls(runner)

    def wrap(
        self, instance: temporalio.worker.WorkflowInstance
    ) -> temporalio.worker.WorkflowInstance:
        """The instance the worker drives in place of ``instance``."""
        return instance

    def prepare_workflow(self, defn: Any) -> None:
        """See base class."""
        self.runner.prepare_workflow(defn)

    def create_instance(
        self, det: temporalio.worker.WorkflowInstanceDetails
    ) -> temporalio.worker.WorkflowInstance:
        """See base class."""
        return self.wrap(self.runner.create_instance(det))

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        """See base class."""
        self.runner.set_worker_level_failure_exception_types(types)


class WrappedInstance(temporalio.worker.WorkflowInstance):
    """Passes every call on to ``instance``; subclasses change what they must."""

    def __init__(self, instance: temporalio.worker.WorkflowInstance) -> None:
        self.instance = instance

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        """See base class."""
        return self.instance.activate(act)

    def get_serialization_context(
        self, command_info: Any
    ) -> temporalio.converter.SerializationContext | None:
        """See base class."""
        return self.instance.get_serialization_context(command_info)

    def get_external_store_context(
        self, command_info: Any
    ) -> temporalio.converter.StorageDriverStoreContext:
        """See base class."""
        return self.instance.get_external_store_context(command_info)

    def get_info(self) -> temporalio.workflow.Info:
        """See base class."""
        return self.instance.get_info()

    def get_thread_id(self) -> int | None:
        """See base class."""
        return self.instance.get_thread_id()


class ContextCachingRunner(WrappingRunner):
    """Runs workflows with ``runner``, asking each instance once per command for contexts."""

    def wrap(
        self, instance: temporalio.worker.WorkflowInstance
    ) -> temporalio.worker.WorkflowInstance:
        """See base class."""
        return _ContextCachingInstance(instance)


_NOTHING = object()


class _ContextCachingInstance(WrappedInstance):
    def __init__(self, instance: temporalio.worker.WorkflowInstance) -> None:
        super().__init__(instance)
        # The command each answer is for, compared by identity: temporalio makes a new
        # command info for every command it visits, and the reference kept here keeps the
        # identity from being reused.
        self._serialization: tuple[object, Any] = (_NOTHING, None)
        self._store: tuple[object, Any] = (_NOTHING, None)

    def get_serialization_context(
        self, command_info: Any
    ) -> temporalio.converter.SerializationContext | None:
        command, context = self._serialization
        if command is not command_info:
            context = self.instance.get_serialization_context(command_info)
            self._serialization = (command_info, context)
        return context  # type: ignore[no-any-return]

    def get_external_store_context(
        self, command_info: Any
    ) -> temporalio.converter.StorageDriverStoreContext:
        command, context = self._store
        if command is not command_info:
            context = self.instance.get_external_store_context(command_info)
            self._store = (command_info, context)
        return context  # type: ignore[no-any-return]
