"""The long running workflow: a large job in chunks, continuing as new to bound its history."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from shadow_sdk.resilience import LONG_RUNNING

    from .activities import JobActivities
    from .models import Chunk, Job, JobInput, JobResult, Progress

INVALID_JOB = "InvalidInput"
"""Error type of a job that can never run; the presets never retry it."""


def problems(job: Job) -> list[str]:
    """What makes ``job`` impossible to run; empty if nothing does."""
    return [
        f"{name} is {value}, not at least 1"
        for name, value in (
            ("records", job.records),
            ("chunk_size", job.chunk_size),
            ("chunks_per_run", job.chunks_per_run),
        )
        if value < 1
    ]


# Auto-upgrade: a pinned run keeps its version through every continue-as-new, so the
# job would hold the old workers to its end. Guard each change with workflow.patched.
@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class LongRunningWorkflow:
    """Process a job chunk by chunk, one heartbeating activity per chunk.

    Each chunk runs with the ``LONG_RUNNING`` preset: a worker that dies is
    noticed by the missed heartbeats, and the retry resumes from the last one.
    Every activity adds events to the workflow's history, which Temporal caps
    (about 50,000 events, and it slows down well before that), so after
    ``chunks_per_run`` chunks, or earlier when the server suggests it, the
    workflow continues as new: the same workflow id starts a fresh run with an
    empty history, handed the progress so far. A job of any size therefore
    completes as one workflow, however many runs it takes.
    """

    @workflow.init
    def __init__(self, job_input: JobInput) -> None:
        self._progress = job_input.progress

    @workflow.query
    def progress(self) -> Progress:
        """How far the job has got, counted from its first record."""
        return self._progress

    @workflow.run
    async def run(self, job_input: JobInput) -> JobResult:
        """Process the rest of the job, or continue as new with its progress."""
        job = job_input.job
        if found := problems(job):
            raise ApplicationError(
                f"job {job.job_id} is invalid: {'; '.join(found)}",
                type=INVALID_JOB,
                non_retryable=True,
            )
        chunks = 0
        while self._progress.offset < job.records:
            if chunks == job.chunks_per_run or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    JobInput(job=job, progress=self._progress, run=job_input.run + 1)
                )
            end = min(self._progress.offset + job.chunk_size, job.records)
            done = await workflow.execute_activity_method(
                JobActivities.process_chunk,
                Chunk(job_id=job.job_id, start=self._progress.offset, end=end),
                **LONG_RUNNING,
            )
            self._progress = Progress(offset=end, total=self._progress.total + done.total)
            chunks += 1
        return JobResult(
            job_id=job.job_id, records=job.records, total=self._progress.total, runs=job_input.run
        )
