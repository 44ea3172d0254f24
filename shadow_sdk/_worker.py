"""ShadowWorker: a Temporal worker built from settings that drains on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import temporalio.api.workflowservice.v1
import temporalio.client
import temporalio.common
import temporalio.service
import temporalio.worker

from shadow_sdk._client import api_key_watch, connect
from shadow_sdk._exceptions import SettingsError, ShutdownTimeoutError
from shadow_sdk._settings import SHUTDOWN_MARGIN, ShadowSettings, problems_building
from shadow_sdk.observability import Observability, OpsServer, PollHealth, WorkerState
from shadow_sdk.resilience import shared_state

logger = logging.getLogger("shadow_sdk.worker")

_SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_STARTUP_CHECK_INTERVAL = 0.01
_HEALTH_CHECK_TIMEOUT = 2.0
_POLL_WATCH_INTERVAL = 1.0
CONNECT_BACKOFF = (1.0, 30.0)
"""First and longest wait, in seconds, between attempts to reach Temporal at start-up."""


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
    :attr:`state` during :meth:`run`. With ``poll_health``, a worker whose polls
    have failed for longer than ``settings.worker_poll_failure_grace`` is
    :attr:`~shadow_sdk.observability.WorkerState.STALLED`, not ready, until they
    go through again. Used as an async context manager, it polls for the
    duration of the block and drains on exit, without signal handlers; tests use
    it that way.

    Args:
        client: Connected client; its plugins (ShadowPlugin) apply to the worker.
        settings: Task queue, tuning and shutdown timeouts.
        workflows: Workflow classes to run.
        activities: Activity callables to run.
        ops_server: Serves ``/ready`` and ``/health`` from this worker while
            :meth:`run` runs; :func:`run_worker` starts one before it connects.
        poll_health: Tells whether the worker's polls fail: the
            :attr:`Observability.polls <shadow_sdk.observability.Observability.polls>`
            of the runtime the client was connected with.
        **options: Other keyword arguments of :class:`temporalio.worker.Worker`;
            they take precedence over ``settings``.

    Raises:
        SettingsError: Every problem the worker cannot run with: no task queue,
            ``AUTH_REQUIRED`` without a way to verify tokens, and what building the
            key ring, the policy and the authorizer from ``settings`` finds.
    """

    def __init__(
        self,
        client: temporalio.client.Client,
        settings: ShadowSettings,
        *,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., Any]] = (),
        ops_server: OpsServer | None = None,
        poll_health: PollHealth | None = None,
        **options: Any,
    ) -> None:
        _check(settings, options)
        options = {**_options_from(settings), **options}
        self.settings = settings
        try:
            self.worker = temporalio.worker.Worker(
                client, workflows=workflows, activities=activities, **options
            )
        except ValueError as error:
            if "versioning behavior" not in str(error):
                raise
            # temporalio's own check: versioned, no default, and a workflow without one.
            raise SettingsError(
                [
                    f"WORKER_DEFAULT_VERSIONING_BEHAVIOR="
                    f"{settings.worker_default_versioning_behavior}: {error}"
                ]
            ) from None
        self.ops_server = ops_server
        self.poll_health = poll_health
        self._state = WorkerState.STARTING
        self._stalled = False
        self._shutdown_requested = asyncio.Event()
        self._poll_watch: asyncio.Task[None] | None = None

    @property
    def state(self) -> WorkerState:
        """Where the worker is: starting, polling, stalled, draining or stopped."""
        if self._state is WorkerState.POLLING and self._polls_failing_too_long():
            return WorkerState.STALLED
        return self._state

    @state.setter
    def state(self, state: WorkerState) -> None:
        self._state = state

    @property
    def ready(self) -> bool:
        """Whether the worker polls, its polls go through, and it is not shutting down."""
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
        if self._state is WorkerState.POLLING:
            self._state = WorkerState.DRAINING
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
        if self._state is WorkerState.STARTING:
            self._state = WorkerState.POLLING
        logger.info(
            "worker polling task queue %r in namespace %r",
            self.worker.task_queue,
            self.worker.client.namespace,
        )
        if self.poll_health is not None:
            self._poll_watch = asyncio.create_task(self._watch_polls(self.poll_health))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._state = WorkerState.DRAINING
        if self._poll_watch is not None:
            self._poll_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_watch
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
            self._state = WorkerState.STOPPED
        logger.info("worker stopped")

    def _polls_failing_too_long(self) -> bool:
        if self.poll_health is None:
            return False
        failing = self.poll_health.failing_for()
        return failing > 0 and failing >= self.settings.worker_poll_failure_grace.total_seconds()

    async def _watch_polls(self, polls: PollHealth) -> None:
        """Ask the server whether it answers while polls fail; log when readiness changes."""
        service = self.worker.client.service_client
        address = service.config.target_host
        while True:
            await asyncio.sleep(_POLL_WATCH_INTERVAL)
            if polls.failing:
                with contextlib.suppress(Exception):  # Any failure means: not answering.
                    await asyncio.wait_for(service.check_health(), _HEALTH_CHECK_TIMEOUT)
                    polls.server_answered()
            stalled = self.state is WorkerState.STALLED
            if stalled and not self._stalled:
                logger.warning(
                    "not ready: polls of task queue %r have failed for %.0f s (last: %s); "
                    "is Temporal at %s (TEMPORAL_ADDRESS) up and reachable?",
                    self.worker.task_queue,
                    polls.failing_for(),
                    polls.last_status or "unknown",
                    address,
                )
            elif self._stalled and not stalled and self._state is WorkerState.POLLING:
                logger.info("polls go through again: ready")
            self._stalled = stalled

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
            A client of another runtime works, but its worker's metrics and failing
            polls go unseen (a warning says so).
        **options: Other keyword arguments of :class:`temporalio.worker.Worker`.

    Raises:
        SettingsError: As :class:`~shadow_sdk.ShadowWorker` does, before anything
            else: before the ops server starts and Temporal is tried; or when the
            server has no namespace ``TEMPORAL_NAMESPACE``.
    """
    _check(settings, options)  # Before waiting for Temporal: a setting to fix cannot wait.
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
            client = await _reach_temporal(settings, runtime=observability.runtime)
        elif client.service_client.config.runtime is not observability.runtime:
            # Connected before the runtime above existed: the core reports its polls,
            # and the worker's metrics, to a runtime nobody drains.
            logger.warning(
                "the client given to run_worker reports to another temporalio Runtime: "
                "the worker's metrics miss /metrics, and /ready cannot see failing polls; "
                "leave client out and run_worker connects with its own runtime"
            )
        await stack.enter_async_context(api_key_watch(client, settings))
        task_queue = options.get("task_queue", settings.temporal_task_queue)
        await stack.enter_async_context(shared_state(settings, name=str(task_queue)))
        await ShadowWorker(
            client,
            settings,
            workflows=workflows,
            activities=activities,
            ops_server=ops_server,
            poll_health=observability.polls,
            **options,
        ).run()


async def _reach_temporal(settings: ShadowSettings, **options: Any) -> temporalio.client.Client:
    """Connect as :func:`~shadow_sdk.connect` does, trying again until Temporal answers.

    A worker that starts before Temporal is reachable (refused, a name that does
    not resolve yet, a port that never answers) keeps trying: each attempt may
    take ``settings.worker_connect_timeout``, and attempts are 1 s apart at
    first, doubling up to 30 s. The first failure of a streak is logged as a
    warning naming the address and ``TEMPORAL_ADDRESS``, the others at debug
    level; success after failures is logged too. An attempt succeeds once the
    server describes the namespace.

    Args:
        settings: Address, namespace and connection settings.
        **options: Other keyword arguments of :func:`~shadow_sdk.connect`.

    Returns:
        The connected client.

    Raises:
        SettingsError: The server answers but has no such namespace
            (``TEMPORAL_NAMESPACE``); waiting would not help.
    """
    address, namespace = settings.temporal_address, settings.temporal_namespace
    timeout = settings.worker_connect_timeout.total_seconds()
    delay, longest = CONNECT_BACKOFF
    failures = 0
    started = time.monotonic()
    while True:
        try:
            client = await asyncio.wait_for(connect(settings, **options), timeout)
            await client.workflow_service.describe_namespace(
                temporalio.api.workflowservice.v1.DescribeNamespaceRequest(namespace=namespace),
                timeout=timedelta(seconds=timeout),
            )
        except temporalio.service.RPCError as error:
            if error.status == temporalio.service.RPCStatusCode.NOT_FOUND:
                raise SettingsError(
                    [f"TEMPORAL_NAMESPACE={namespace!r}: the Temporal service at {address} "
                     "(TEMPORAL_ADDRESS) has no such namespace"]
                ) from None  # fmt: skip
            reason = f"{error.status.name if error.status else 'error'}: {error.message}"
        except TimeoutError:
            reason = f"no answer within {timeout:g} s (WORKER_CONNECT_TIMEOUT)"
        except RuntimeError as error:  # The SDK core's connection errors.
            reason = str(error)
        else:
            if failures:
                logger.info(
                    "reached Temporal at %s after %d failed attempts in %.0f s",
                    address,
                    failures,
                    time.monotonic() - started,
                )
            return client
        failures += 1
        log = logger.warning if failures == 1 else logger.debug
        log(
            "cannot reach Temporal at %s (TEMPORAL_ADDRESS): %s; not ready, trying again "
            "with backoff until it answers",
            address,
            reason,
        )
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311  Not for secrets.
        delay = min(delay * 2, longest)


def _check(settings: ShadowSettings, options: Mapping[str, Any]) -> None:
    """Raise one SettingsError for all a worker cannot run with, before it connects.

    That includes what only building the objects the settings describe finds out:
    keys, key directories, the policy, the keys that verify tokens.
    """
    problems = []
    if settings.temporal_task_queue is None and "task_queue" not in options:
        problems.append("TEMPORAL_TASK_QUEUE: a worker needs a task queue to poll")
    problems += problems_building(settings.key_ring, settings.policy, settings.authorizer)
    verifiers = (settings.auth_hs256_secret, settings.auth_public_key_path, settings.auth_jwks_path)
    if settings.auth_required and not any(verifiers):
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
    if settings.versioned:
        options["deployment_config"] = _deployment_config(settings)
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
            # temporalio starts with 5 polls, which must not exceed the maximum.
            options[f"{kind}_task_poller_behavior"] = temporalio.worker.PollerBehaviorAutoscaling(
                maximum=maximum or 100, initial=min(5, maximum or 100)
            )
        elif maximum is not None:
            options[f"{kind}_task_poller_behavior"] = temporalio.worker.PollerBehaviorSimpleMaximum(
                maximum=maximum
            )
    return {name: value for name, value in options.items() if value is not None}


_BEHAVIORS = {
    "pinned": temporalio.common.VersioningBehavior.PINNED,
    "auto-upgrade": temporalio.common.VersioningBehavior.AUTO_UPGRADE,
    "none": temporalio.common.VersioningBehavior.UNSPECIFIED,
}


def _deployment_config(settings: ShadowSettings) -> temporalio.worker.WorkerDeploymentConfig:
    """The Worker Deployment Version of ``settings``, and the behavior workflows default to."""
    if settings.temporal_deployment_name is None or settings.temporal_worker_build_id is None:
        raise ValueError("an unversioned worker has no deployment config")
    version = temporalio.common.WorkerDeploymentVersion(
        settings.temporal_deployment_name, settings.temporal_worker_build_id
    )
    return temporalio.worker.WorkerDeploymentConfig(
        version=version,
        use_worker_versioning=True,
        default_versioning_behavior=_BEHAVIORS[settings.worker_default_versioning_behavior],
    )
