"""The long running workflow's activity: process one chunk, heartbeating its progress.

A chunk takes minutes in a real job, so the activity heartbeats after every
page it reads. The heartbeat tells Temporal the worker is alive (a worker that
dies is noticed within the heartbeat timeout, not the much longer
start-to-close timeout) and records how far it got: the next attempt, on this
worker or another, reads that progress from ``activity.info().heartbeat_details``
and resumes there instead of starting the chunk over.
"""

from __future__ import annotations

from temporalio import activity

from .models import Chunk, Progress
from .services import RecordSource


def resume_point(chunk: Chunk) -> Progress:
    """Where an attempt at ``chunk`` starts: the last heartbeat of an earlier attempt, if any."""
    details = activity.info().heartbeat_details
    if details:
        return Progress.model_validate(details[0])
    return Progress(offset=chunk.start)


class JobActivities:
    """The activity, bound to the data set it reads.

    Args:
        source: The data set's client.
        page_size: Records per read, and so per heartbeat.
    """

    def __init__(self, source: RecordSource, *, page_size: int = 100) -> None:
        self.source = source
        self.page_size = page_size

    @activity.defn
    async def process_chunk(self, chunk: Chunk) -> Progress:
        """Add up the chunk's records, resuming from the last heartbeat; returns the chunk's total.

        Heartbeats are throttled, so a crashed worker may lose the last few
        pages' progress and the next attempt reads them again: whatever a real
        job does with a record must be safe to do twice.
        """
        progress = resume_point(chunk)
        while progress.offset < chunk.end:
            limit = min(self.page_size, chunk.end - progress.offset)
            page = await self.source.read(chunk.job_id, progress.offset, limit)
            progress = Progress(offset=progress.offset + limit, total=progress.total + sum(page))
            activity.heartbeat(progress)
        return progress
