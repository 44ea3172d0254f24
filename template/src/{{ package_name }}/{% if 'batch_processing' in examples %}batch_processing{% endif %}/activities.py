"""The batch processing workflow's activity: index one document.

It turns the search index's answers into errors Temporal understands: a
document that does not exist is a non-retryable ``NotFound`` (one of the types
the presets never retry), which the workflow reports; an outage is an ordinary
exception that Temporal retries.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from .services import DocumentNotFound, SearchIndex

NOT_FOUND = "NotFound"


class BatchActivities:
    """The activity, bound to the search index it writes to.

    Args:
        search_index: The search index's client.
    """

    def __init__(self, search_index: SearchIndex) -> None:
        self.search_index = search_index

    @activity.defn
    async def index_document(self, document_id: str) -> None:
        """Index one document; safe to repeat."""
        try:
            await self.search_index.index(document_id)
        except DocumentNotFound as error:
            raise ApplicationError(str(error), type=NOT_FOUND, non_retryable=True) from None
