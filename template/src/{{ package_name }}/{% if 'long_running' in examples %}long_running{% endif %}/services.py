"""The system a job reads: a large data set, page by page.

This in-memory version behaves like a database or an object store where it
matters to the workflow: reads come in pages, and a read can fail when the
connection drops. Replace it with a client of your real store; the activity only
depends on :meth:`RecordSource.read`.
"""

from __future__ import annotations


class RecordSource:
    """A data set whose record ``i`` is worth ``i % 1000``, in every job.

    Attributes:
        failing_offsets: Offsets whose next read fails with :class:`ConnectionError`,
            once each, as when the store drops a connection.
        reads: The offset of every read that reached the store, in order.
    """

    def __init__(self) -> None:
        self.failing_offsets: set[int] = set()
        self.reads: list[int] = []

    async def read(self, job_id: str, offset: int, limit: int) -> list[int]:
        """Read up to ``limit`` records of job ``job_id`` from ``offset``."""
        self.reads.append(offset)
        if offset in self.failing_offsets:
            self.failing_offsets.discard(offset)
            raise ConnectionError(f"connection lost reading {job_id} at {offset}")
        return [index % 1000 for index in range(offset, offset + limit)]
