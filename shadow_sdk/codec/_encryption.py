"""EncryptionCodec: AES-256-GCM over whole serialized payloads, as Temporal's samples do."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import google.protobuf.message
import temporalio.api.common.v1
import temporalio.common
import temporalio.converter
from cryptography.exceptions import InvalidTag

from shadow_sdk._codec_values import MAX_DECODED_BYTES, MAX_PAYLOADS
from shadow_sdk._exceptions import CodecError, CodecLimitError, DecryptionError
from shadow_sdk.codec._compression import (
    INLINE_BYTES,
    CompressionCodec,
    DecodeBudget,
    SoftLimitReached,
    check_count,
)
from shadow_sdk.codec._keyring import KeyRing

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

ENCODING = b"binary/encrypted"
"""The ``encoding`` metadata of an encrypted payload."""
KEY_ID_METADATA = "encryption-key-id"
"""The metadata entry naming the key that encrypted the payload."""
CODEC_ERRORS = "shadow_codec_errors"
"""Counter of payloads that failed to decrypt, by ``error`` (``shadow_codec_errors_total``)."""
NONCE_BYTES = 12
TAG_BYTES = 16

Payload = temporalio.api.common.v1.Payload


class EncryptionCodec(temporalio.converter.PayloadCodec):
    """Encrypts every payload with the key ring's active key; decrypts with any of its keys.

    The format is that of Temporal's encryption samples in Python, Go and
    TypeScript, so their codecs and codec servers read what this one writes, and
    the other way round: metadata ``encoding: binary/encrypted`` and
    ``encryption-key-id: <id>``; data is a random 12-byte nonce, then the
    AES-256-GCM ciphertext and 16-byte tag of the whole serialized inner
    ``Payload`` (metadata included), with no associated data.

    Decoding passes payloads that are not encrypted through unchanged, so that
    histories written before encryption was turned on stay readable. A payload
    that is truncated, altered, or names an unknown key raises a
    :class:`~shadow_sdk.CodecError` naming the key id and the reason; nothing
    undecryptable is ever returned.

    With ``compression``, payloads are compressed before they are encrypted, and
    decrypted payloads that were compressed are decompressed. Payloads that were
    not encrypted are never decompressed: only key holders can make a worker
    inflate anything. Without compression configured (the default), the output
    is exactly the samples' format.

    Decoding is bounded: one call takes ``max_payloads`` payloads at most, and
    decrypting and decompressing them may produce ``max_decoded_bytes`` at most,
    all together; past either, it raises :class:`~shadow_sdk.CodecLimitError`
    without going further. A call that produces little (up to
    :data:`INLINE_BYTES`) runs on the event loop, as a cheap one should; a
    larger one is handed to a thread, so that it cannot stall the loop.

    Args:
        keys: The keys; its active key encrypts.
        compression: Compresses before encrypting; ``None`` neither compresses nor
            decompresses.
        metric_meter: Where to count payloads that fail to decrypt
            (``shadow_codec_errors_total{error}``); :class:`~shadow_sdk.ShadowPlugin`
            sets the meter of the client's runtime when this is ``None``.
        max_decoded_bytes: Most bytes one decode call may produce, all payloads together.
        max_payloads: Most payloads one decode call may take.
    """

    def __init__(
        self,
        keys: KeyRing,
        *,
        compression: CompressionCodec | None = None,
        metric_meter: temporalio.common.MetricMeter | None = None,
        max_decoded_bytes: int = MAX_DECODED_BYTES,
        max_payloads: int = MAX_PAYLOADS,
    ) -> None:
        if max_decoded_bytes < 1 or max_payloads < 1:
            raise ValueError("max_decoded_bytes and max_payloads must be positive")
        self.keys = keys
        self.compression = compression
        self.metric_meter = metric_meter
        self.max_decoded_bytes = max_decoded_bytes
        self.max_payloads = max_payloads
        self._sealed: dict[str, Payload] = {}  # An empty sealed payload per key id.

    @classmethod
    def from_settings(
        cls, settings: ShadowSettings, *, key_ring: KeyRing | None = None
    ) -> EncryptionCodec | None:
        """Encryption with ``key_ring`` or the settings' keys, compressing first if configured.

        Decompression (:meth:`CompressionCodec.from_settings
        <shadow_sdk.codec.CompressionCodec.from_settings>`) is on even when
        compression is off, so that payloads others compressed (inside the
        encryption) still decode; ``CODEC_MAX_DECODED_BYTES`` and
        ``CODEC_MAX_PAYLOADS`` bound decoding.

        Args:
            settings: The codec settings.
            key_ring: The keys; by default :meth:`KeyRing.from_settings
                <shadow_sdk.codec.KeyRing.from_settings>`.

        Returns:
            The codec, or ``None`` when there are no keys: payloads are not encrypted.

        Raises:
            SettingsError: The key directory cannot be read into keys.
        """
        if key_ring is None:
            key_ring = KeyRing.from_settings(settings)
        if key_ring is None:
            return None
        return cls(
            key_ring,
            compression=CompressionCodec.from_settings(settings),
            max_decoded_bytes=settings.codec_max_decoded_bytes,
            max_payloads=settings.codec_max_payloads,
        )

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class."""
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class."""
        if sum(len(payload.data) for payload in payloads) <= INLINE_BYTES:
            budget = DecodeBudget(self.max_decoded_bytes, soft_limit=INLINE_BYTES)
            try:
                return self._decode(payloads, budget)
            except SoftLimitReached:
                pass  # Larger than it looked (compressed): start again in a thread.
        return await asyncio.to_thread(self.decode_sync, payloads)

    def encode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        """Encrypt ``payloads`` without an event loop (tools, benchmarks)."""
        key_id, cipher = self.keys.active_cipher()
        template = self._sealed.get(key_id)
        if template is None:
            template = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()})
            self._sealed[key_id] = template
        encoded = []
        for payload in payloads:
            if self.compression is not None:
                payload = self.compression.compress(payload)  # noqa: PLW2901
            nonce = os.urandom(NONCE_BYTES)
            # Copying the metadata from a template takes a third of the time of building
            # it from a dict, which is most of a small payload's encoding.
            sealed = Payload()
            sealed.CopyFrom(template)
            sealed.data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), None)
            encoded.append(sealed)
        return encoded

    def decode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        """Decrypt ``payloads`` without an event loop (tools, threads, benchmarks)."""
        return self._decode(list(payloads), DecodeBudget(self.max_decoded_bytes))

    def _decode(self, payloads: Sequence[Payload], budget: DecodeBudget) -> list[Payload]:
        try:
            check_count(payloads, self.max_payloads)
            return [self._decode_one(payload, budget) for payload in payloads]
        except CodecError as error:
            if self.metric_meter is not None:
                self.metric_meter.create_counter(
                    CODEC_ERRORS, "Payloads that could not be decrypted"
                ).add(1, {"error": type(error).__name__})
            raise

    def _decode_one(self, payload: Payload, budget: DecodeBudget) -> Payload:
        metadata = payload.metadata
        if metadata.get("encoding") != ENCODING:
            return payload
        raw_id = metadata.get(KEY_ID_METADATA)
        if not raw_id:
            raise DecryptionError(None, f"it has no {KEY_ID_METADATA!r} metadata")
        try:
            key_id = raw_id.decode()
        except UnicodeDecodeError:
            raise DecryptionError(None, f"its {KEY_ID_METADATA!r} is not text") from None
        cipher = self.keys.cipher(key_id)
        data = memoryview(payload.data)
        if len(data) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError(
                key_id,
                f"truncated: {len(data)} bytes, fewer than the {NONCE_BYTES + TAG_BYTES} "
                "of nonce and tag",
            )
        try:
            plaintext = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
        except InvalidTag:
            raise DecryptionError(
                key_id,
                "authentication failed: the data was altered, or encrypted with another key "
                "under this id",
            ) from None
        budget.spend(len(plaintext))
        try:
            inner = Payload.FromString(plaintext)
        except google.protobuf.message.DecodeError:
            raise DecryptionError(key_id, "the decrypted data is not a payload") from None
        if self.compression is not None:
            try:
                return self.compression.decompress(inner, budget=budget)
            except CodecLimitError:
                raise
            except CodecError as error:
                raise DecryptionError(key_id, error.reason) from None
        return inner
