"""The system a batch writes to: a search index, one document per request.

This in-memory version behaves like the real one where it matters to the
workflow: a document that no longer exists is an answer, not an outage, and
every request takes a while, so requests overlap. Replace it with a client of
your search cluster; the activity only depends on :meth:`SearchIndex.index`.
"""

from __future__ import annotations

import asyncio


class DocumentNotFound(Exception):
    """The document was deleted; indexing it again will not bring it back."""


class SearchIndex:
    """A search index that counts the requests it serves at once.

    Args:
        missing: Ids of documents that no longer exist.
        latency: Seconds each request takes.

    Attributes:
        indexed: Ids of the documents indexed.
        in_flight: Requests being served right now.
        max_in_flight: The most requests it ever served at once.
    """

    def __init__(
        self, *, missing: frozenset[str] = frozenset({"doc-deleted"}), latency: float = 0.01
    ) -> None:
        self.missing = missing
        self.latency = latency
        self.indexed: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0

    async def index(self, document_id: str) -> None:
        """Index the document; indexing it again changes nothing."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
            if document_id in self.missing:
                raise DocumentNotFound(f"document {document_id!r} does not exist")
            self.indexed.add(document_id)
        finally:
            self.in_flight -= 1
