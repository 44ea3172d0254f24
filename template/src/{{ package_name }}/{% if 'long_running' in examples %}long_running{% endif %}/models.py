"""Inputs and outputs of the long running workflow and its activity."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Job(BaseModel):
    """A job too large for one activity: records ``[0, records)`` of a data set, in chunks."""

    job_id: str = Field(description="Business id; the workflow id is derived from it")
    records: int = Field(description="How many records the job has")
    chunk_size: int = Field(default=1000, description="Records per activity")
    chunks_per_run: int = Field(
        default=500, description="Chunks per workflow run before it continues as new"
    )


class Progress(BaseModel):
    """How far processing got: the records before ``offset`` are done and added up to ``total``.

    The activity heartbeats it (counting from its chunk's start) so that a retry
    resumes there; the workflow carries it (counting from the job's start) into
    the next run when it continues as new.
    """

    offset: int = 0
    total: int = 0


class JobInput(BaseModel):
    """The workflow's input: the job, and how far the runs before this one got."""

    job: Job
    progress: Progress = Field(default_factory=Progress)
    run: int = Field(default=1, description="This run's number: 1, then one more per continue")


class Chunk(BaseModel):
    """Records ``[start, end)`` of a job: what one activity processes."""

    job_id: str
    start: int
    end: int


class JobResult(BaseModel):
    """The workflow's result."""

    job_id: str
    records: int
    total: int
    runs: int = Field(description="How many workflow runs the job took")
