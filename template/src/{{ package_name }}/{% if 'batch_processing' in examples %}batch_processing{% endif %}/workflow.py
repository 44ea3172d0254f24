"""The batch processing workflow: fan out over many documents, a bounded number at a time."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from shadow_sdk.resilience import QUICK

    from .activities import BatchActivities
    from .models import Batch, BatchResult, DocumentFailure

INVALID_BATCH = "InvalidInput"
"""Error type of a batch that can never run; the presets never retry it."""

MAX_DOCUMENTS = 1000
"""Most documents in one batch.

Each document adds about three events to the workflow's history, which Temporal
caps (about 50,000 events, and it slows down well before that); the ids also
travel in the workflow's input, which is limited to 2 MiB.
"""


# Pinned: a batch is bounded, so it finishes on the code that started it.
@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class BatchProcessingWorkflow:
    """Index every document of a batch, at most ``max_concurrency`` at once, and report failures.

    One activity per document, and an ``asyncio.Semaphore`` as the window: a
    document's activity is scheduled only when one of the ``max_concurrency``
    places is free, so the search index never sees more requests from this batch
    at once. asyncio's primitives are deterministic in workflow code, which runs
    on Temporal's own event loop. Activities are the lightest fan-out Temporal
    has: each document is retried on its own (``QUICK`` preset), costs three
    history events and no extra workflow. Child workflows per chunk pay off only
    when a batch outgrows one history: then a parent starts this workflow for
    each chunk of up to :data:`MAX_DOCUMENTS` documents. The bound holds per
    batch; to bound all batches together, cap the activity slots of the workers
    polling a task queue of their own.

    A document that fails for good (not found, or out of retries) is listed in
    the result with its reason, and the others still run: the batch completes.
    """

    @workflow.run
    async def run(self, batch: Batch) -> BatchResult:
        """Index the batch's documents and report those that failed."""
        problems = []
        if batch.max_concurrency < 1:
            problems.append(f"max_concurrency is {batch.max_concurrency}, not at least 1")
        if len(batch.document_ids) > MAX_DOCUMENTS:
            problems.append(f"{len(batch.document_ids)} documents, more than {MAX_DOCUMENTS}")
        if problems:
            raise ApplicationError(
                f"batch {batch.batch_id} is invalid: {'; '.join(problems)}",
                type=INVALID_BATCH,
                non_retryable=True,
            )
        window = asyncio.Semaphore(batch.max_concurrency)

        async def index(document_id: str) -> DocumentFailure | None:
            async with window:
                try:
                    await workflow.execute_activity_method(
                        BatchActivities.index_document, document_id, **QUICK
                    )
                except ActivityError as error:
                    if is_cancelled_exception(error):
                        raise
                    return DocumentFailure(document_id=document_id, reason=reason(error))
            return None

        outcomes = await asyncio.gather(*(index(document_id) for document_id in batch.document_ids))
        failed = [outcome for outcome in outcomes if outcome is not None]
        return BatchResult(
            batch_id=batch.batch_id, indexed=len(outcomes) - len(failed), failed=failed
        )


def reason(error: ActivityError) -> str:
    """Why an activity failed for good: its cause's type and message."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}"
    return f"{type(cause).__name__}: {cause}"
