"""Inputs and outputs of the batch processing workflow."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Batch(BaseModel):
    """Documents to index, and how many may be indexed at once."""

    batch_id: str = Field(description="Business id; the workflow id is derived from it")
    document_ids: list[str]
    max_concurrency: int = Field(
        default=10, description="Most documents in flight at once, to spare the search index"
    )


class DocumentFailure(BaseModel):
    """A document that could not be indexed, and why."""

    document_id: str
    reason: str


class BatchResult(BaseModel):
    """The workflow's result: how many documents were indexed, and which were not."""

    batch_id: str
    indexed: int
    failed: list[DocumentFailure]
