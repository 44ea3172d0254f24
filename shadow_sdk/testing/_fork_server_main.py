"""The fork server's own process: import a program once, then fork a child per request.

Run as ``python -c <this file's text> SOCKET MODULE`` by :class:`ForkServer`; it imports
only the standard library, the package ``MODULE`` and what ``MODULE/__main__.py`` imports
at its top level, without running that file (whether or not it guards its body with
``if __name__ == "__main__":``). Each request on the Unix socket
brings the arguments, environment and working directory of one run and, as file
descriptors, its stdin, stdout and stderr. The server forks; the child starts a session
of its own, takes those descriptors and environment and runs ``python -m MODULE ARGS``
with :mod:`runpy`, then ends as any interpreter does (``atexit`` handlers run). The
server answers on that request's connection with the child's pid, then its exit status.
No thread ever runs in the server, so forking it is safe.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import json
import os
import runpy
import selectors
import signal
import socket
import struct
import sys
from typing import cast

HEADER = struct.Struct("!Q")
"""A request's length; the server's answers (pid, then exit status) are ``!q``."""
ANSWER = struct.Struct("!q")


def _receive(connection: socket.socket) -> tuple[dict[str, object], list[int]]:
    head, fds, _, _ = socket.recv_fds(connection, HEADER.size, 3)
    while len(head) < HEADER.size:
        head += connection.recv(HEADER.size - len(head))
    (size,) = HEADER.unpack(head)
    body = b""
    while len(body) < size:
        chunk = connection.recv(size - len(body))
        if not chunk:
            raise EOFError("the request ended early")
        body += chunk
    return json.loads(body), fds


def _preload(module: str) -> None:
    """Import ``module`` and the modules its ``__main__.py`` imports at its top level.

    A module that fails to import here is left for the child, which then fails as
    ``python -m`` would, with its own traceback.
    """
    importlib.import_module(module)
    spec = importlib.util.find_spec(f"{module}.__main__")
    if spec is None or spec.origin is None:
        return
    with open(spec.origin, "rb") as source:
        tree = ast.parse(source.read())
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            base = importlib.util.resolve_name(base, module) if node.level else base
            # A name may be a submodule or an attribute; only submodules import.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in names:
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    # A temporalio worker given no build id hashes the code of every loaded module, which
    # compiles each one again where no bytecode was written (PYTHONDONTWRITEBYTECODE):
    # about a second per worker. It memoizes the hash: computed here, from the modules the
    # program imports at its top level, each forked worker finds it and reports it.
    worker = sys.modules.get("temporalio.worker._worker")
    build_id = getattr(worker, "load_default_build_id", None)
    if callable(build_id):
        with contextlib.suppress(Exception):
            build_id()


def _run_child(module: str, request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: become ``python -m MODULE ARGS``; never returns."""
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cwd = str(request["cwd"])
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(cast("dict[str, str]", request["env"]))
    sys.argv = [module, *cast("list[str]", request["args"])]
    sys.path[0] = cwd
    # Should anything have imported it, runpy must not find it loaded.
    sys.modules.pop(f"{module}.__main__", None)
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    raise SystemExit(0)


def serve(path: str, module: str) -> None:
    """Import ``module``'s program, then fork a child per request on ``path`` until SIGTERM."""
    _preload(module)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    stopping: list[bool] = []
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    print("fork server ready", flush=True)
    while not stopping:
        for key, _ in selector.select():
            if key.fileobj is listener:
                connection, _ = listener.accept()
                try:
                    request, fds = _receive(connection)
                except (OSError, EOFError, ValueError):
                    connection.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    for other in children.values():
                        other.close()
                    os.close(wake_read)
                    os.close(wake_write)
                    connection.close()
                    _run_child(module, request, fds)
                for fd in fds:
                    os.close(fd)
                children[pid] = connection
                connection.sendall(ANSWER.pack(pid))
            else:
                while True:
                    try:
                        if not os.read(wake_read, 512):
                            break
                    except BlockingIOError:
                        break
                _reap(children)


def _reap(children: dict[int, socket.socket]) -> None:
    """Answer the exit status of each child that ended, as ``subprocess`` reports it."""
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is None:
            continue
        with contextlib.suppress(OSError):  # Whoever asked stopped listening.
            connection.sendall(ANSWER.pack(os.waitstatus_to_exitcode(status)))
        connection.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
