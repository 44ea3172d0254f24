"""ShadowWorker: a Temporal worker built from settings that drains on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self

import temporalio.client
import temporalio.worker

from shadow_sdk._client import api_key_watch, connect
from shadow_sdk._exceptions import SettingsError
from shadow_sdk._settings import ShadowSettings

logger = logging.getLogger("shadow_sdk.worker")

_SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_STARTUP_CHECK_INTERVAL = 0.01


class ShadowWorker:
    """A :class:`temporalio.worker.Worker` that stops the way an operator expects.

    :meth:`run` polls until SIGTERM or SIGINT arrives (or :meth:`request_shutdown`
    is called), then stops polling and lets in-flight activities finish for up to
    ``settings.worker_graceful_shutdown_timeout`` before they are cancelled
    (and retried by another worker). It returns normally after a drain, so a
    process run by :func:`~shadow_sdk.run_and_exit` exits 0. A second signal
    during the drain gets the handling the process had before ``run`` (by
    default, SIGINT raises :class:`KeyboardInterrupt` and SIGTERM ends the
    process at once).

    Used as an async context manager, it polls for the duration of the block and
    drains on exit, without touching signal handlers; tests use it that way.

    Args:
        client: Connected client; its plugins (ShadowPlugin) apply to the worker.
        settings: Task queue, slots, cache size and graceful shutdown timeout.
        workflows: Workflow classes to run.
        activities: Activity callables to run.
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
        **options: Any,
    ) -> None:
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
        from_settings = {
            "task_queue": settings.temporal_task_queue,
            "graceful_shutdown_timeout": settings.worker_graceful_shutdown_timeout,
            "max_concurrent_activities": settings.worker_max_concurrent_activities,
            "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
            "max_cached_workflows": settings.worker_max_cached_workflows,
        }
        self.settings = settings
        options = {
            **{name: value for name, value in from_settings.items() if value is not None},
            **options,
        }
        self.worker = temporalio.worker.Worker(
            client, workflows=workflows, activities=activities, **options
        )
        self._shutdown_requested = asyncio.Event()

    async def run(self) -> None:
        """Poll until a shutdown signal or :meth:`request_shutdown`, then drain.

        Raises:
            temporalio.worker.WorkerError: (or the underlying error) when the worker
                fails fatally, for example because the server became unreachable.
        """
        with self._shutdown_on_signals():
            async with self:
                await self._shutdown_requested.wait()

    def request_shutdown(self) -> None:
        """Ask :meth:`run` to stop polling and drain; safe to call more than once."""
        self._shutdown_requested.set()

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
        logger.info(
            "worker stopping: in-flight activities have up to %g s to finish",
            self.worker.config(active_config=True)["graceful_shutdown_timeout"].total_seconds(),
        )
        await self.worker.__aexit__(exc_type, exc, traceback)
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
    """Connect (unless ``client`` is given) and run a :class:`ShadowWorker` until shutdown.

    This is the whole ``main`` of a worker process::

        run_and_exit(run_worker(Settings(), workflows=WORKFLOWS, activities=ACTIVITIES))

    Args:
        settings: Connection and worker settings.
        workflows: Workflow classes to run.
        activities: Activity callables to run.
        client: An already connected client; by default one is made from ``settings``.
        **options: Other keyword arguments of :class:`temporalio.worker.Worker`.
    """
    if client is None:
        client = await connect(settings)
    async with api_key_watch(client, settings):
        await ShadowWorker(
            client, settings, workflows=workflows, activities=activities, **options
        ).run()
