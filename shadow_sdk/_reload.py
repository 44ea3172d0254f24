"""run_with_reload(): run a worker as a child process and restart it when its code changes.

For development only. The child is the service's own ``worker`` command; when a
file under the watched paths changes, the child gets SIGTERM and drains as in
production (in-flight activities and workflow tasks finish within
``WORKER_GRACEFUL_SHUTDOWN_TIMEOUT``), and only once it has exited does a new one
start with the new code. Changes are detected by ``watchfiles`` (the watcher
uvicorn reloads with): OS notifications, debounced, caches ignored.

``watchfiles.run_process`` is not used as is: it stops its child with SIGINT and a
fixed few seconds before SIGKILL, and shares the terminal's process group with it,
so one Ctrl-C reaches the worker twice and a second signal ends a drain at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from shadow_sdk._exceptions import SettingsError
from shadow_sdk._settings import ShadowSettings

logger = logging.getLogger("shadow_sdk.reload")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_EXIT_MARGIN = timedelta(seconds=5)
"""Waited beyond the worker's own shutdown cap before the child is killed."""


async def run_with_reload(
    command: Sequence[str],
    *,
    settings: ShadowSettings,
    watch: Iterable[str | os.PathLike[str]],
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``command`` and run it again, after a graceful stop, whenever ``watch`` changes.

    The supervisor stops on SIGINT, SIGTERM or SIGHUP: it sends SIGTERM to the
    worker once, waits for its drain and returns the worker's exit status. A worker
    that exits on its own (a syntax error just saved) is reported and started again
    at the next change.

    Args:
        command: The worker without reloading, for example
            ``[sys.executable, "-m", "my_service", "worker"]``.
        settings: The worker's settings: how long its shutdown may take (the child is
            killed past :meth:`~shadow_sdk.ShadowSettings.shutdown_cap` plus 5 s), and
            whether it may reload at all.
        watch: Directories and files to watch; those that do not exist are skipped.
            Editor swap files, ``__pycache__`` and ``.git`` are ignored.
        env: The worker's environment; this process's when not given.

    Returns:
        The exit status of the last worker: 0 after a clean drain.

    Raises:
        SettingsError: ``settings`` make the worker a Worker Deployment Version, whose
            build id must name one code: a reload would run other code under it.
        ValueError: None of the ``watch`` paths exists.
        ImportError: ``watchfiles`` is not installed (the ``reload`` extra).
    """
    _refuse_production(settings)
    try:
        import watchfiles  # noqa: PLC0415 - an extra for development, loaded when used.
    except ImportError as error:
        msg = "run_with_reload needs watchfiles: install shadow-sdk[reload]"
        raise ImportError(msg) from error
    paths = [Path(path) for path in watch]
    existing = [path for path in paths if path.exists()]
    if not existing:
        msg = f"watch: none of {', '.join(map(str, paths)) or 'no paths'} exists"
        raise ValueError(msg)
    stop_timeout = settings.shutdown_cap() + _EXIT_MARGIN
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    child = _Child.start(command, env)
    logger.info("watching %s", ", ".join(map(str, existing)))
    try:
        async for changes in watchfiles.awatch(*existing, stop_event=stop):
            changed = sorted({Path(path).name for _, path in changes})
            logger.info("%s changed, stopping the worker", ", ".join(changed))
            await child.stop(stop_timeout)
            child = _Child.start(command, env)
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        status = await child.stop(stop_timeout)
    return status


def _refuse_production(settings: ShadowSettings) -> None:
    if settings.versioned:
        raise SettingsError(
            [
                "TEMPORAL_DEPLOYMENT_NAME: a versioned worker cannot reload: its build id "
                f"({settings.temporal_worker_build_id}) would name changed code; unset it "
                "for development"
            ]
        )
    if settings.temporal_tls or settings.api_key() is not None:
        logger.warning(
            "this worker connects with TLS or an API key, as to a shared cluster; "
            "--reload is meant for a development server"
        )


def _request_stop(stop: asyncio.Event, signum: signal.Signals) -> None:
    logger.info("received %s, stopping", signum.name)
    stop.set()


class _Child:
    """One worker process, in a process group of its own: signals reach it once, from us."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.watcher = asyncio.ensure_future(self._report_exit())

    @classmethod
    def start(cls, command: Sequence[str], env: Mapping[str, str] | None) -> _Child:
        process = subprocess.Popen(
            list(command), env=None if env is None else dict(env), process_group=0
        )
        logger.info("worker started (pid %d)", process.pid)
        return cls(process)

    async def _report_exit(self) -> None:
        status = await asyncio.to_thread(self.process.wait)
        logger.warning("worker exited with status %d; waiting for a change", status)

    async def stop(self, grace: timedelta) -> int:
        """SIGTERM, wait for the drain, SIGKILL past ``grace``; the exit status."""
        self.watcher.cancel()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, grace.total_seconds())
            except subprocess.TimeoutExpired:
                logger.warning("worker still draining after %s, killing it", grace)
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
            logger.info("worker stopped with status %d", self.process.returncode)
        with contextlib.suppress(asyncio.CancelledError):
            await self.watcher
        return self.process.returncode
