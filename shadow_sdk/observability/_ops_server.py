"""The ops server of a worker process: /metrics, /live, /ready and /health on one port."""

from __future__ import annotations

import enum
import json
import logging
import platform
import time
from collections.abc import Mapping
from importlib.metadata import version
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

import prometheus_client
import prometheus_client.exposition

from shadow_sdk._exceptions import SettingsError

if TYPE_CHECKING:
    from aiohttp import web

logger = logging.getLogger("shadow_sdk.ops")


class WorkerState(enum.StrEnum):
    """Where a worker process is in its life, as /ready and /health report it."""

    STARTING = "starting"
    """Connecting to Temporal, or the worker has not started polling yet."""
    POLLING = "polling"
    """Polling its task queue: the only ready state."""
    STALLED = "stalled"
    """Polling, but every poll has failed for longer than ``WORKER_POLL_FAILURE_GRACE``:
    Temporal is unreachable or refuses the worker. Ready again once polls go through."""
    DRAINING = "draining"
    """Shutting down: no longer polling, in-flight activities finishing."""
    STOPPED = "stopped"
    """Done; the process is about to exit."""


class Probe(Protocol):
    """What the ops server asks a worker: :class:`~shadow_sdk.ShadowWorker` is one."""

    @property
    def state(self) -> WorkerState:
        """The worker's state; only :attr:`WorkerState.POLLING` is ready."""

    async def health(self) -> Mapping[str, Any]:
        """Details for ``/health``: task queue, Temporal connection, ..."""


class OpsServer:
    """Serves a worker process's metrics and probes over HTTP.

    * ``/metrics``: the registry in Prometheus text format.
    * ``/live``: 200 whenever the process's event loop answers.
    * ``/ready``: 200 only while the watched worker polls; 503 before (while
      connecting, before the first poll), while its polls have been failing for
      longer than a grace period, and from the moment shutdown starts, so that
      a rollout waits for new pods and stops counting draining or cut-off ones.
    * ``/health``: a JSON summary: state, the worker's details, uptime and
      versions. It never contains settings, so no secret can leak through it.

    The server starts before the worker exists, so that ``/live`` answers and
    ``/ready`` says 503 while the process connects; :meth:`watch` then hands it
    the worker. A port that is taken stops start-up with a
    :class:`~shadow_sdk.SettingsError` naming it; the server is never silently
    left out.

    Args:
        registry: What ``/metrics`` exposes.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one (see :attr:`port`).
    """

    def __init__(
        self, *, registry: prometheus_client.CollectorRegistry, host: str, port: int
    ) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._probe: Probe | None = None
        self._started_at = time.monotonic()
        # Imported here, not with the module: processes that import shadow_sdk without
        # serving (a service's command line) start without aiohttp's web server.
        from aiohttp import web  # noqa: PLC0415

        self._web = web
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/live", self._live)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def state(self) -> WorkerState:
        """The watched worker's state; :attr:`WorkerState.STARTING` before :meth:`watch`."""
        return WorkerState.STARTING if self._probe is None else self._probe.state

    def watch(self, probe: Probe) -> None:
        """Answer ``/ready`` and ``/health`` from ``probe`` from now on."""
        self._probe = probe

    async def start(self) -> None:
        """Listen, or raise :class:`~shadow_sdk.SettingsError` naming the port."""
        await self._runner.setup()
        site = self._web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            reason = error.strerror or str(error)
            raise SettingsError(
                [f"METRICS_PORT={self.port}: cannot listen on {self.host}:{self.port}: {reason}"]
            ) from None
        self.port = int(self._runner.addresses[0][1])
        logger.info(
            "ops server on http://%s:%d (/metrics /live /ready /health)", self.host, self.port
        )

    async def stop(self) -> None:
        """Stop listening."""
        await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = prometheus_client.exposition.generate_latest(self.registry)
        response = self._web.Response(body=body)
        response.headers["Content-Type"] = prometheus_client.exposition.CONTENT_TYPE_LATEST
        return response

    async def _live(self, request: web.Request) -> web.Response:
        return self._web.Response(text="live\n")

    async def _ready(self, request: web.Request) -> web.Response:
        state = self.state
        if state is WorkerState.POLLING:
            return self._web.Response(text="ready\n")
        return self._web.Response(status=503, text=f"not ready: {state}\n")

    async def _health(self, request: web.Request) -> web.Response:
        state = self.state
        details = {} if self._probe is None else await self._probe.health()
        body = {
            "status": state.value,
            "ready": state is WorkerState.POLLING,
            **details,
            "uptime_seconds": round(time.monotonic() - self._started_at, 1),
            "versions": _VERSIONS,
        }
        return self._web.json_response(body, dumps=_dumps)


_VERSIONS = {
    "shadow_sdk": version("shadow-sdk"),
    "temporalio": version("temporalio"),
    "python": platform.python_version(),
}


def _dumps(value: object) -> str:
    return json.dumps(value, indent=2)
