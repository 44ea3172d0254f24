"""run_and_exit(): end a process that used Temporal with the exit status it earned."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Coroutine
from typing import Any, NoReturn

from shadow_sdk._exceptions import SettingsError

_INTERRUPTED = 130  # The shell's status for a process ended by SIGINT.
_BAD_SETTINGS = 2  # As argparse exits on a bad command line.


def run_and_exit(main: Coroutine[Any, Any, int | None]) -> NoReturn:
    """Run ``main`` as the whole process, then exit with its status.

    ``main`` returns the exit status (``None`` counts as 0). A
    :class:`~shadow_sdk.SettingsError` it raises is printed without a traceback
    and exits 2, as invalid settings do when they are read; any other exception
    is printed with its traceback and exits 1; ``SystemExit`` keeps its code;
    Ctrl-C exits 130.

    The process ends with :func:`os._exit` once logging and the standard streams
    are flushed. A normal interpreter exit can abort with "PyGILState_Release:
    thread state must be current" while the Temporal SDK's core threads are still
    winding down (temporalio/sdk-python#300), turning a clean drain into a
    SIGABRT that Kubernetes and CI read as a crash. Put any cleanup that must
    run (exporters, files) inside ``main``; ``atexit`` handlers do not run, and
    tasks still pending when ``main`` ends are abandoned, not awaited. The one
    exception is a coverage.py measurement of the process (a test suite measuring
    the service it runs as a subprocess): it is saved first, as its own ``atexit``
    handler would have.

    Args:
        main: The process's work, for example ``run_worker(...)``.
    """
    try:
        # A Runner that is never closed: closing would cancel the tasks still pending
        # and wait for them, and a worker past its shutdown cap leaves behind
        # activities that ignore cancellation.
        status = _exit_status(asyncio.Runner().run(main))
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
    except KeyboardInterrupt:
        status = _INTERRUPTED
    except SettingsError as error:
        print(error, file=sys.stderr)
        status = _BAD_SETTINGS
    except BaseException:  # Report anything, then exit non-zero.
        traceback.print_exc()
        status = 1
    _save_coverage()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)


def _save_coverage() -> None:
    """Save a running coverage.py measurement, which :func:`os._exit` would lose."""
    coverage = sys.modules.get("coverage")
    current = coverage.Coverage.current() if coverage is not None else None
    if current is not None:
        current.stop()
        current.save()


def _exit_status(returned: object) -> int:
    if returned is None:
        return 0
    if isinstance(returned, int) and not isinstance(returned, bool) and 0 <= returned <= 255:
        return returned
    print(f"run_and_exit: main returned {returned!r}, not an exit status 0-255", file=sys.stderr)
    return 1
