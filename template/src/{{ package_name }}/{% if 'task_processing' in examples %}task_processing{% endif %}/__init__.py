"""Task processing: validate a document, process it, notify its owner."""

from .activities import INVALID_TASK, notify, process_task, validate_task
from .models import Notification, ProcessedTask, Task, TaskResult
from .workflow import TaskProcessingWorkflow

__all__ = [
    "INVALID_TASK",
    "Notification",
    "ProcessedTask",
    "Task",
    "TaskProcessingWorkflow",
    "TaskResult",
    "notify",
    "process_task",
    "validate_task",
]
