"""What hostile requests cost the codec server: its peak memory, and the wait of a small request.

Run with ``nox -s bench -- codec_server``. Each case starts ``shadow codec-server``
afresh, as a process of its own on loopback with an AES key and an HS256 secret
in its environment, sends one request, and meanwhile (a tenth of a second in)
a small decode request of one payload. It reports the answer's status, the
request's duration, how far the server's peak resident set size (``VmHWM``)
rose above its size when idle, and how long the small request took:

* **normal**: a decode of one small payload, the baseline;
* **encode, then decode**: an operator sends ``/encode`` five payloads already
  marked compressed, each a zlib stream that inflates to 64 MiB (about 425 KiB
  on the wire in all), and a viewer sends ``/decode`` what came back;
* **sealed bombs**: the same five payloads, sealed with the key by whoever holds
  it, sent to ``/decode`` (what the first case makes possible if ``/encode``
  refuses them: a key holder, or payloads written earlier);
* **empty payloads**: an 8 MiB body of about 2.8 million empty payloads, which
  any viewer may send.

The server's limits are its defaults (``CODEC_MAX_DECODED_BYTES``,
``CODEC_MAX_PAYLOADS``, ``CODEC_SERVER_MAX_BODY_BYTES``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache

import aiohttp
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from shadow_sdk.auth import TokenIssuer
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.testing import BackgroundProcess, free_port

KEY = bytes(range(32))
SECRET = "codec-server-benchmark-secret-32-bytes"  # noqa: S105  A throwaway secret.
NAMESPACE = "default"
BOMBS = 5
BOMB_SIZE = 64 * 1024 * 1024 - 64
"""What each bomb inflates to: just under the 64 MiB a single payload may inflate to."""
EMPTY_BODY = 8 * 1024 * 1024
SMALL_DELAY = 0.1
SERVER = "from shadow_sdk._cli import main; main()"


@dataclass(frozen=True)
class Outcome:
    """What one case measured."""

    case: str
    status: str
    seconds: float
    peak_mib: float
    small_ms: float


def body(*payloads: Payload) -> bytes:
    """``payloads`` as the protobuf-JSON body of a codec request."""
    return json_format.MessageToJson(Payloads(payloads=payloads)).encode()


@cache
def bomb() -> Payload:
    """A payload marked compressed whose zlib stream inflates to a 64 MiB payload."""
    inner = Payload(metadata={"encoding": b"binary/plain"}, data=bytes(BOMB_SIZE))
    return Payload(
        metadata={"encoding": b"binary/zlib"}, data=zlib.compress(inner.SerializeToString(), 9)
    )


@cache
def empty_payloads() -> bytes:
    """An 8 MiB body of empty payloads: ``{"payloads": [{}, {}, ...]}``."""
    head, tail = b'{"payloads": [', b"{}]}"
    count = (EMPTY_BODY - len(head) - len(tail)) // 3
    return head + b"{}," * count + tail


def status_of(path: str) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB, from /proc (Linux)."""
    figures = {}
    with open(path) as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(value.split()[0]) / 1024
    return figures


async def measure(
    case: str,
    hostile: Callable[[aiohttp.ClientSession, str], Awaitable[str]],
) -> Outcome:
    """Start a codec server, send ``hostile`` and, meanwhile, a small request."""
    port = free_port()
    env = {
        **os.environ,
        "TEMPORAL_NAMESPACE": NAMESPACE,
        "CODEC_KEYS": json.dumps({"bench": base64.b64encode(KEY).decode()}),
        "AUTH_HS256_SECRET": SECRET,
    }
    command = [sys.executable, "-c", SERVER, "codec-server", "--port", str(port)]
    server = BackgroundProcess(command, env, name="the codec server").start()
    base = f"http://127.0.0.1:{port}"
    small = body(*EncryptionCodec(KeyRing({"bench": KEY})).encode_sync([Payload(data=b"1")]))
    viewer = TokenIssuer(hs256_secret=SECRET).issue("viewer", ["viewer"])
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            await asyncio.to_thread(server.wait_until_listening, port)
            # Idle is the size of a server that has answered a request (401: no token).
            async with session.post(f"{base}/decode", data=b"{}") as reply:
                await reply.read()
            idle = status_of(f"/proc/{server.pid}/status")["VmRSS"]

            async def small_request() -> float:
                await asyncio.sleep(SMALL_DELAY)
                started = time.perf_counter()
                async with session.post(
                    f"{base}/decode",
                    data=small,
                    headers={"X-Namespace": NAMESPACE, "Authorization": f"Bearer {viewer}"},
                ) as reply:
                    await reply.read()
                return (time.perf_counter() - started) * 1e3

            started = time.perf_counter()
            status, small_ms = await asyncio.gather(hostile(session, base), small_request())
            seconds = time.perf_counter() - started
            peak = status_of(f"/proc/{server.pid}/status")["VmHWM"]
    finally:
        await asyncio.to_thread(server.stop)
    return Outcome(case, status, seconds, peak - idle, small_ms)


def caller(*roles: str) -> dict[str, str]:
    """Headers of a caller with ``roles`` in the namespace."""
    token = TokenIssuer(hs256_secret=SECRET).issue("bench", list(roles))
    return {"X-Namespace": NAMESPACE, "Authorization": f"Bearer {token}"}


async def post(
    session: aiohttp.ClientSession, url: str, data: bytes, roles: str
) -> tuple[int, bytes]:
    """POST ``data``; the status and the body of the answer."""
    async with session.post(url, data=data, headers=caller(roles)) as reply:
        return reply.status, await reply.read()


@cache
def bodies() -> dict[str, bytes]:
    """The requests' bodies, made once before anything is measured."""
    codec = EncryptionCodec(KeyRing({"bench": KEY}))
    return {
        "normal": body(*codec.encode_sync([Payload(data=b"{}")])),
        "bombs": body(*[bomb()] * BOMBS),
        "sealed bombs": body(*codec.encode_sync([bomb()] * BOMBS)),
        "empty": empty_payloads(),
    }


async def normal(session: aiohttp.ClientSession, base: str) -> str:
    """One small payload to decode."""
    status, _ = await post(session, f"{base}/decode", bodies()["normal"], "viewer")
    return str(status)


async def encode_then_decode(session: aiohttp.ClientSession, base: str) -> str:
    """Have /encode seal payloads marked compressed, then /decode what it returned."""
    status, answer = await post(session, f"{base}/encode", bodies()["bombs"], "operator")
    if status != 200:
        return f"encode {status}"
    decoded, _ = await post(session, f"{base}/decode", answer, "viewer")
    return f"encode {status}, decode {decoded}"


async def sealed_bombs(session: aiohttp.ClientSession, base: str) -> str:
    """Send payloads sealed with the key that inflate to 64 MiB each."""
    status, _ = await post(session, f"{base}/decode", bodies()["sealed bombs"], "viewer")
    return str(status)


async def empty(session: aiohttp.ClientSession, base: str) -> str:
    """Send an 8 MiB body of empty payloads."""
    status, _ = await post(session, f"{base}/decode", bodies()["empty"], "viewer")
    return str(status)


async def main() -> None:
    """Measure each case on a fresh server; print the table."""
    cases = {
        "normal": normal,
        "encode, then decode": encode_then_decode,
        "sealed bombs": sealed_bombs,
        "empty payloads": empty,
    }
    prepared = bodies()
    outcomes = [await measure(case, hostile) for case, hostile in cases.items()]
    print(
        f"Codec server: {BOMBS} payloads inflating to 64 MiB each "
        f"({len(prepared['bombs']) // 1024} KiB on the wire), "
        f"{EMPTY_BODY >> 20} MiB of empty payloads"
    )
    print(f"{'case':>20} {'status':>22} {'seconds':>8} {'peak MiB':>9} {'small ms':>9}")
    for outcome in outcomes:
        print(
            f"{outcome.case:>20} {outcome.status:>22} {outcome.seconds:>8.2f} "
            f"{outcome.peak_mib:>+9.0f} {outcome.small_ms:>9.1f}"
        )
    print(
        "  peak MiB: the server's peak resident set size (VmHWM) above its idle size;\n"
        f"  small ms: a one-payload decode sent {SMALL_DELAY:g} s after the case's request."
    )


if __name__ == "__main__":
    asyncio.run(main())
