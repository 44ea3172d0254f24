"""The worker benchmark's stock variant: the plugin's features from temporalio's own pieces.

What a team would write without the kit, following temporalio's documentation and
samples: the samples' AES-GCM codec over payloads (headers are not encoded, as the
samples leave them), temporalio's ``OpenTelemetryPlugin`` with its own replay-safe
tracer provider, and the SDK core's native Prometheus exporter on a port of its own.
Authorization has no stock counterpart, so the stock variant has none: compare it with
``--without auth``. Measured beside bare and full, it splits the full variant's cost
into what the features cost however they are built and what the kit adds to them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import temporalio.api.common.v1
import temporalio.converter
import temporalio.runtime
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shadow_sdk.testing import free_port

Payload = temporalio.api.common.v1.Payload

ENCODING = b"binary/encrypted"
KEY_ID = "bench"


class SamplesEncryptionCodec(temporalio.converter.PayloadCodec):
    """The codec of Temporal's Python encryption sample, in the same wire format."""

    def __init__(self, key: bytes) -> None:
        self._cipher = AESGCM(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload with the one key."""
        encoded = []
        for payload in payloads:
            nonce = os.urandom(12)
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, "encryption-key-id": KEY_ID.encode()},
                    data=nonce + self._cipher.encrypt(nonce, payload.SerializeToString(), None),
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt the payloads this codec encrypted; pass the others through."""
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            if payload.metadata.get("encryption-key-id") != KEY_ID.encode():
                raise ValueError("unknown key id")
            data = payload.data
            decoded.append(Payload.FromString(self._cipher.decrypt(data[:12], data[12:], None)))
        return decoded


def prometheus_runtime() -> tuple[temporalio.runtime.Runtime, str]:
    """A runtime whose SDK core serves its metrics itself, and the address it serves them on."""
    address = f"127.0.0.1:{free_port()}"
    telemetry = temporalio.runtime.TelemetryConfig(
        metrics=temporalio.runtime.PrometheusConfig(bind_address=address)
    )
    return temporalio.runtime.Runtime(telemetry=telemetry), address
