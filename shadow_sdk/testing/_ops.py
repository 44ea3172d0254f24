"""A worker's ops server read over HTTP: ``/metrics``, ``/live``, ``/ready`` and ``/health``."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import NamedTuple

import aiohttp

from shadow_sdk._duration import Duration, to_timedelta
from shadow_sdk.testing._scrape import Scrape

METRICS_CONTENT_TYPE = "text/plain"
"""What ``/metrics`` is served as: Prometheus' text format."""


class Answer(NamedTuple):
    """What one GET of the ops server answered."""

    status: int
    content_type: str
    body: str

    def metrics(self) -> Scrape:
        """The answer of ``/metrics`` parsed, if Prometheus would take it.

        Raises:
            ValueError: Not a 200 in Prometheus' text format.
        """
        if self.status != 200:
            raise ValueError(f"/metrics answered {self.status}: {self.body}")
        if self.content_type != METRICS_CONTENT_TYPE:
            raise ValueError(f"/metrics answered {self.content_type}, not {METRICS_CONTENT_TYPE}")
        return Scrape.parse(self.body)


def read(url: str, timeout: Duration = 10) -> Answer:
    """GET ``url`` and wait for the answer, blocking: for code that runs no event loop."""
    seconds = to_timedelta(timeout, "timeout", non_negative=True).total_seconds()
    try:
        with urllib.request.urlopen(url, timeout=seconds) as response:  # noqa: S310
            return Answer(
                response.status, response.headers.get_content_type(), response.read().decode()
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers.get_content_type(), error.read().decode())


@dataclass(frozen=True)
class OpsClient:
    """The ops server of a worker, read from an event loop without blocking it.

    ``await OpsClient(url).get("/ready")`` for a worker of the test's own process (its
    :class:`~shadow_sdk.observability.OpsServer` serves on the loop that awaits the
    answer); :attr:`~shadow_sdk.testing.WorkerProcess.ops` for a worker process. Bound a call with
    :func:`asyncio.timeout`.

    Attributes:
        url: Its base URL, such as ``http://127.0.0.1:9464``.
    """

    url: str

    async def _read(self, path: str) -> Answer:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return Answer(response.status, response.content_type, await response.text())

    async def get(self, path: str) -> tuple[int, str]:
        """GET ``path``: the status and the body.

        Raises:
            aiohttp.ClientError: No answer; an ``OSError`` too while nothing listens.
        """
        status, _, body = await self._read(path)
        return status, body

    async def scrape(self) -> Scrape:
        """``/metrics`` read the way Prometheus reads it.

        Raises:
            ValueError: ``/metrics`` did not answer 200 in Prometheus' text format.
            aiohttp.ClientError: No answer.
        """
        return (await self._read("/metrics")).metrics()
