"""Long running: a large job in chunks, resumed from heartbeats, continued as new."""

from .activities import JobActivities, resume_point
from .models import Chunk, Job, JobInput, JobResult, Progress
from .services import RecordSource
from .workflow import INVALID_JOB, LongRunningWorkflow

__all__ = [
    "INVALID_JOB",
    "Chunk",
    "Job",
    "JobActivities",
    "JobInput",
    "JobResult",
    "LongRunningWorkflow",
    "Progress",
    "RecordSource",
    "resume_point",
]
