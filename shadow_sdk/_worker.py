"""ShadowWorker: a Temporal worker built from settings that drains on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import temporalio.client
import temporalio.worker

from shadow_sdk._client import api_key_watch, connect
from shadow_sdk._exceptions import SettingsError, ShutdownTimeoutError
from shadow_sdk._settings import SHUTDOWN_MARGIN, ShadowSettings
from shadow_sdk.observability import Observability, OpsServer, WorkerState
from shadow_sdk.resilience import shared_state

logger = logging.getLogger("shadow_sdk.worker")

_SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_STARTUP_CHECK_INTERVAL = 0.01
_HEALTH_CHECK_TIMEOUT = 2.0


class ShadowWorker:
    """A :class:`temporalio.worker.Worker` that stops the way an operator expects.

    :meth:`run` polls until SIGTERM or SIGINT arrives (or :meth:`request_shutdown`
    is called), and then shuts down in order:

    1. ``/ready`` answers 503 and the worker stops polling;
    2. in-flight activities may finish for up to
       ``settings.worker_graceful_shutdown_timeout`` (they can see it coming
       through ``activity.is_worker_shutdown()``), then they are cancelled and
       Temporal retries them elsewhere;
    3. :meth:`run` returns, so a process run by :func:`~shadow_sdk.run_and_exit`
       exits 0; if the whole shutdown outlasts ``worker_shutdown_timeout``, it
       raises :class:`~shadow_sdk.ShutdownTimeoutError` instead (exit 1).

    A second signal during the drain gets the handling the process had before
    ``run`` (by default, SIGINT raises :class:`KeyboardInterrupt` and SIGTERM ends
    the process at once).

    With an ``ops_server``, ``/ready`` and ``/health`` follow the worker's
    :attr:`state` during :meth:`run`. Used as an async context manager, it polls
    for the duration of the block and drains on exit, without signal handlers;
    tests use it that way.

    Args:
        client: Connected client; its plugins (ShadowPlugin) apply to the worker.
        settings: Task queue, tuning and shutdown timeouts.
        workflows: Workflow classes to run.
        activities: Activity callables to run.
        ops_server: Serves ``/ready`` and ``/health`` from this worker while
            :meth:`run` runs; :func:`run_worker` starts one before it connects.
        **options: Other keyword arguments of :class:`temporalio.worker.Worker`;
            they take precedence over ``settings``.
    """

    def __init__(
        self,
        client: temporalio.client.Client,
        settings: ShadowSettings,
        *,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., Any]] = (),
        ops_server: OpsServer | None = None,
        **options: Any,
    ) -> None:
        _check(settings, options)
        options = {**_options_from(settings), **options}
        self.settings = settings
        self.worker = temporalio.worker.Worker(
            client, workflows=workflows, activities=activities, **options
        )
        self.state = WorkerState.STARTING
        self.ops_server = ops_server
        self._shutdown_requested = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Whether the worker polls and is not shutting down."""
        return self.state is WorkerState.POLLING

    async def run(self) -> None:
        """Poll until a shutdown signal or :meth:`request_shutdown`, then drain.

        Raises:
            ShutdownTimeoutError: The drain outlasted ``worker_shutdown_timeout``.
            temporalio.worker.WorkerError: (or the underlying error) when the worker
                fails fatally, for example because the server became unreachable.
        """
        if self.ops_server is not None:
            self.ops_server.watch(self)
        with self._shutdown_on_signals():
            async with self:
                await self._shutdown_requested.wait()

    def request_shutdown(self) -> None:
        """Ask :meth:`run` to stop polling and drain; safe to call more than once."""
        if self.state is WorkerState.POLLING:
            self.state = WorkerState.DRAINING
        self._shutdown_requested.set()

    async def health(self) -> Mapping[str, Any]:
        """Details for ``/health``: task queue, namespace, identity, Temporal connection."""
        client = self.worker.client
        try:
            await asyncio.wait_for(client.service_client.check_health(), _HEALTH_CHECK_TIMEOUT)
        except Exception:  # Any failure means: not reachable now.
            reachable = False
        else:
            reachable = True
        return {
            "task_queue": self.worker.task_queue,
            "namespace": client.namespace,
            "identity": client.identity,
            "temporal": {
                "address": client.service_client.config.target_host,
                "reachable": reachable,
            },
        }

    async def __aenter__(self) -> Self:
        await self.worker.__aenter__()
        try:
            # The worker checks the namespace before it polls; wait for that verdict.
            # temporalio offers no event for it, only this flag.
            while not self.worker.is_running:  # noqa: ASYNC110
                await asyncio.sleep(_STARTUP_CHECK_INTERVAL)
        except asyncio.CancelledError as cancelled:
            # The worker failed to start and cancelled us; its exit raises why.
            await self.worker.__aexit__(type(cancelled), cancelled, cancelled.__traceback__)
            raise
        if self.state is WorkerState.STARTING:
            self.state = WorkerState.POLLING
        logger.info(
            "worker polling task queue %r in namespace %r",
            self.worker.task_queue,
            self.worker.client.namespace,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.state = WorkerState.DRAINING
        graceful = self.worker.config(active_config=True)["graceful_shutdown_timeout"]
        cap = self.settings.worker_shutdown_timeout or graceful + SHUTDOWN_MARGIN
        logger.info(
            "worker stopping: in-flight activities have up to %g s to finish",
            graceful.total_seconds(),
        )
        # Not wait_for: it would wait on for activities that ignore cancellation.
        shutdown = asyncio.ensure_future(self.worker.__aexit__(exc_type, exc, traceback))
        try:
            done, _ = await asyncio.wait({shutdown}, timeout=cap.total_seconds())
            if not done:
                raise ShutdownTimeoutError(cap)
            await shutdown
        finally:
            self.state = WorkerState.STOPPED
        logger.info("worker stopped")

    @contextlib.contextmanager
    def _shutdown_on_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        previous: dict[signal.Signals, Any] = {}

        def restore() -> None:
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)
                signal.signal(sig, handler)
            previous.clear()

        def on_signal(received: signal.Signals) -> None:
            logger.info("received %s, shutting down gracefully", received.name)
            restore()  # A second signal gets the handling the process had before.
            self.request_shutdown()

        for sig in _SHUTDOWN_SIGNALS:
            handler = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                logger.debug("cannot handle %s here (not the main thread or not POSIX)", sig.name)
            else:
                previous[sig] = handler
        try:
            yield
        finally:
            restore()


async def run_worker(
    settings: ShadowSettings,
    *,
    workflows: Sequence[type] = (),
    activities: Sequence[Callable[..., Any]] = (),
    client: temporalio.client.Client | None = None,
    **options: Any,
) -> None:
    """Set up observability, connect, and run a :class:`ShadowWorker` until shutdown.

    This is the whole ``main`` of a worker process::

        run_and_exit(run_worker(Settings(), workflows=WORKFLOWS, activities=ACTIVITIES))

    Logging, the metrics runtime and tracing are configured from ``settings``
    (:meth:`Observability.install <shadow_sdk.observability.Observability.install>`),
    so call it once per process.

    Args:
        settings: Connection, worker, security and operations settings.
        workflows: Workflow classes to run.
        activities: Activity callables to run.
        client: An already connected client; by default one is made from
            ``settings`` with the observability runtime, so that its metrics count.
        **options: Other keyword arguments of :class:`temporalio.worker.Worker`.
    """
    async with (
        Observability.install(settings) as observability,
        contextlib.AsyncExitStack() as stack,
    ):
        ops_server = None
        if settings.metrics_port is not None:
            # Before connecting, so that /live answers and /ready says 503 meanwhile.
            ops_server = await stack.enter_async_context(
                OpsServer(
                    registry=observability.registry,
                    host=settings.metrics_host,
                    port=settings.metrics_port,
                )
            )
        if client is None:
            client = await connect(settings, runtime=observability.runtime)
        await stack.enter_async_context(api_key_watch(client, settings))
        task_queue = options.get("task_queue", settings.temporal_task_queue)
        await stack.enter_async_context(shared_state(settings, name=str(task_queue)))
        await ShadowWorker(
            client,
            settings,
            workflows=workflows,
            activities=activities,
            ops_server=ops_server,
            **options,
        ).run()


def _check(settings: ShadowSettings, options: Mapping[str, Any]) -> None:
    problems = []
    if settings.temporal_task_queue is None and "task_queue" not in options:
        problems.append("TEMPORAL_TASK_QUEUE: a worker needs a task queue to poll")
    if settings.auth_required and settings.authorizer() is None:
        problems.append(
            "AUTH_REQUIRED: a worker needs AUTH_HS256_SECRET, AUTH_PUBLIC_KEY_PATH or "
            "AUTH_JWKS_PATH to verify tokens"
        )
    if problems:
        raise SettingsError(problems)


def _options_from(settings: ShadowSettings) -> dict[str, Any]:
    """Keyword arguments of temporalio's Worker that ``settings`` decide."""
    per_queue_rate = settings.worker_max_task_queue_activities_per_second
    options: dict[str, Any] = {
        "task_queue": settings.temporal_task_queue,
        "graceful_shutdown_timeout": settings.worker_graceful_shutdown_timeout,
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_activities_per_second": settings.worker_max_activities_per_second,
        "max_task_queue_activities_per_second": per_queue_rate,
    }
    if settings.worker_tuner == "resource-based":
        options["tuner"] = temporalio.worker.WorkerTuner.create_resource_based(
            target_memory_usage=settings.worker_target_memory_usage,
            target_cpu_usage=settings.worker_target_cpu_usage,
        )
    else:
        options["max_concurrent_activities"] = settings.worker_max_concurrent_activities
        options["max_concurrent_workflow_tasks"] = settings.worker_max_concurrent_workflow_tasks
    for kind, maximum in (
        ("workflow", settings.worker_workflow_task_pollers),
        ("activity", settings.worker_activity_task_pollers),
    ):
        if settings.worker_poller_autoscaling:
            options[f"{kind}_task_poller_behavior"] = temporalio.worker.PollerBehaviorAutoscaling(
                maximum=maximum or 100
            )
        elif maximum is not None:
            options[f"{kind}_task_poller_behavior"] = temporalio.worker.PollerBehaviorSimpleMaximum(
                maximum=maximum
            )
    return {name: value for name, value in options.items() if value is not None}
