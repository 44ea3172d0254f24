"""CompressionCodec: zlib for payloads from a size up."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import google.protobuf.message
import temporalio.api.common.v1
import temporalio.converter

from shadow_sdk._codec_values import MAX_DECODED_BYTES, MAX_PAYLOADS
from shadow_sdk._exceptions import CodecError, CodecLimitError

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

ENCODING = b"binary/zlib"
"""The ``encoding`` metadata of a compressed payload."""

Payload = temporalio.api.common.v1.Payload

INLINE_BYTES = 256 * 1024
"""Decode calls producing up to this many bytes run on the event loop; larger ones in a thread."""


class DecodeBudget:
    """The bytes one decode call may still produce, all its payloads together.

    Args:
        limit: Bytes the call may produce; past it, :class:`~shadow_sdk.CodecLimitError`.
        soft_limit: A lower bound past which :class:`SoftLimitReached` is raised
            instead, for a caller that then goes on elsewhere (off the event loop).
    """

    def __init__(self, limit: int, *, soft_limit: int | None = None) -> None:
        self.limit = limit
        self.soft_limit = soft_limit
        self.used = 0

    @property
    def remaining(self) -> int:
        """Bytes left before a limit, the soft one first."""
        bound = self.limit if self.soft_limit is None else min(self.limit, self.soft_limit)
        return max(bound - self.used, 0)

    def spend(self, size: int) -> None:
        """Count ``size`` decoded bytes; raise when a limit is passed."""
        self.used += size
        if self.used > self.limit:
            raise CodecLimitError(
                f"more than {self.limit} bytes decoded at once",
                limit=self.limit,
                setting="CODEC_MAX_DECODED_BYTES",
            )
        if self.soft_limit is not None and self.used > self.soft_limit:
            raise SoftLimitReached


class SoftLimitReached(Exception):
    """A :class:`DecodeBudget`'s soft limit was passed; the call should go on elsewhere."""


def check_count(payloads: Sequence[Payload], maximum: int) -> None:
    """Raise :class:`~shadow_sdk.CodecLimitError` if there are more than ``maximum``."""
    if len(payloads) > maximum:
        raise CodecLimitError(
            f"{len(payloads)} payloads at once", limit=maximum, setting="CODEC_MAX_PAYLOADS"
        )


class CompressionCodec(temporalio.converter.PayloadCodec):
    """Compresses the whole serialized payload with zlib when it is at least ``threshold`` bytes.

    A payload is only replaced when compression makes it smaller. Used alone it
    compresses and decompresses any payload; to compress encrypted payloads,
    give it to :class:`~shadow_sdk.codec.EncryptionCodec`, which compresses
    before encrypting and decompresses only what it decrypted, so that nobody
    without the key can hand a worker a zlib bomb.

    .. warning::
        Compressing before encrypting lets an observer of ciphertext sizes learn
        about the plaintext (the CRIME and BREACH attacks). It is off unless
        configured; turn it on only for payloads no attacker can partly choose.

    Decoding is bounded against zlib bombs: each payload inflates to
    ``max_size`` at most, all the payloads of one :meth:`decode` call together to
    ``max_decoded_bytes``, and a call takes ``max_payloads`` payloads at most;
    past a bound it raises :class:`~shadow_sdk.CodecError`
    (:class:`~shadow_sdk.CodecLimitError` for the last two) without inflating
    further.

    Args:
        threshold: Smallest serialized payload, in bytes, worth compressing;
            ``None`` never compresses but still decompresses what others compressed.
        level: zlib level, 1 (fast) to 9 (small).
        max_size: Largest payload decompression may produce.
        max_decoded_bytes: Most bytes one decode call may produce, all payloads together.
        max_payloads: Most payloads one decode call may take.
    """

    def __init__(
        self,
        *,
        threshold: int | None,
        level: int = 6,
        max_size: int = 64 * 1024 * 1024,
        max_decoded_bytes: int = MAX_DECODED_BYTES,
        max_payloads: int = MAX_PAYLOADS,
    ) -> None:
        if threshold is not None and threshold < 0:
            raise ValueError(f"threshold: {threshold} is negative")
        if not 1 <= level <= 9:
            raise ValueError(f"level: {level} is not a zlib level 1-9")
        for name, value in (
            ("max_size", max_size),
            ("max_decoded_bytes", max_decoded_bytes),
            ("max_payloads", max_payloads),
        ):
            if value < 1:
                raise ValueError(f"{name}: {value} is not a positive number")
        self.threshold = threshold
        self.level = level
        self.max_size = max_size
        self.max_decoded_bytes = max_decoded_bytes
        self.max_payloads = max_payloads

    @classmethod
    def from_settings(cls, settings: ShadowSettings) -> CompressionCodec:
        """Compression from ``CODEC_COMPRESSION_THRESHOLD``, bounded by the ``CODEC_MAX_*`` limits.

        Without a threshold it never compresses, but still decompresses what
        others compressed.
        """
        return cls(
            threshold=settings.codec_compression_threshold,
            max_decoded_bytes=settings.codec_max_decoded_bytes,
            max_payloads=settings.codec_max_payloads,
        )

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class."""
        return [self.compress(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class.

        A call that inflates to little (up to :data:`INLINE_BYTES`) runs on the event
        loop; a larger one is handed to a thread, so that it cannot stall the loop.
        """
        check_count(payloads, self.max_payloads)
        if sum(len(payload.data) for payload in payloads) <= INLINE_BYTES:
            budget = DecodeBudget(self.max_decoded_bytes, soft_limit=INLINE_BYTES)
            try:
                return [self.decompress(payload, budget=budget) for payload in payloads]
            except SoftLimitReached:
                pass  # Larger than it looked: start again in a thread.
        return await asyncio.to_thread(self.decode_sync, payloads)

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decompress ``payloads`` without an event loop (tools, threads, benchmarks)."""
        check_count(payloads, self.max_payloads)
        budget = DecodeBudget(self.max_decoded_bytes)
        return [self.decompress(payload, budget=budget) for payload in payloads]

    def compress(self, payload: Payload) -> Payload:
        """``payload`` compressed, if it is large enough and compression makes it smaller."""
        if self.threshold is None:
            return payload
        serialized = payload.SerializeToString()
        if len(serialized) < self.threshold:
            return payload
        compressed = zlib.compress(serialized, self.level)
        if len(compressed) >= len(serialized):
            return payload
        return Payload(metadata={"encoding": ENCODING}, data=compressed)

    def decompress(self, payload: Payload, *, budget: DecodeBudget | None = None) -> Payload:
        """``payload`` decompressed if it is compressed, else unchanged.

        Args:
            payload: The payload.
            budget: The bytes the whole decode call may still produce; what this
                payload inflates to is counted in it.

        Raises:
            CodecError: The data is corrupt, truncated, or inflates past ``max_size``.
            CodecLimitError: It inflates past what ``budget`` allows.
        """
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        cap = self.max_size if budget is None else min(self.max_size, budget.remaining)
        inflater = zlib.decompressobj()
        try:
            # One byte more than allowed tells "too large" from "exactly the limit".
            serialized = inflater.decompress(payload.data, cap + 1)
        except zlib.error as error:
            raise CodecError(None, f"corrupt zlib data: {error}") from None
        if len(serialized) > cap:
            if budget is not None and cap < self.max_size:
                budget.spend(len(serialized))  # Raises: the call's limit is passed.
            raise CodecError(None, f"decompresses to more than {self.max_size} bytes")
        if not inflater.eof:
            raise CodecError(None, "truncated zlib data")
        if budget is not None:
            budget.spend(len(serialized))
        try:
            return Payload.FromString(serialized)
        except google.protobuf.message.DecodeError:
            raise CodecError(None, "the decompressed data is not a payload") from None
