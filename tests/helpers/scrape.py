"""Reading the ops server of a worker from a test's event loop: /metrics and the probes."""

from __future__ import annotations

import aiohttp

from shadow_sdk.testing import Scrape


async def scrape(port: int) -> Scrape:
    """GET /metrics on 127.0.0.1:``port`` and parse it; fail on anything but a 200."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        return Scrape.parse(await response.text())


async def get(port: int, path: str) -> tuple[int, str]:
    """GET ``path`` on 127.0.0.1:``port``: the status and the body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()
