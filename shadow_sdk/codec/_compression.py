"""CompressionCodec: zlib for payloads from a size up."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import google.protobuf.message
import temporalio.api.common.v1
import temporalio.converter

from shadow_sdk._exceptions import CodecError

ENCODING = b"binary/zlib"
"""The ``encoding`` metadata of a compressed payload."""

Payload = temporalio.api.common.v1.Payload


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

    Args:
        threshold: Smallest serialized payload, in bytes, worth compressing;
            ``None`` never compresses but still decompresses what others compressed.
        level: zlib level, 1 (fast) to 9 (small).
        max_size: Largest payload decompression may produce, against zlib bombs.
    """

    def __init__(
        self, *, threshold: int | None, level: int = 6, max_size: int = 64 * 1024 * 1024
    ) -> None:
        if threshold is not None and threshold < 0:
            raise ValueError(f"threshold: {threshold} is negative")
        if not 1 <= level <= 9:
            raise ValueError(f"level: {level} is not a zlib level 1-9")
        self.threshold = threshold
        self.level = level
        self.max_size = max_size

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class."""
        return [self.compress(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class."""
        return [self.decompress(payload) for payload in payloads]

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

    def decompress(self, payload: Payload) -> Payload:
        """``payload`` decompressed if it is compressed, else unchanged.

        Raises:
            CodecError: The data is corrupt, truncated, or inflates past ``max_size``.
        """
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        inflater = zlib.decompressobj()
        try:
            serialized = inflater.decompress(payload.data, self.max_size)
        except zlib.error as error:
            raise CodecError(None, f"corrupt zlib data: {error}") from None
        if inflater.unconsumed_tail:
            raise CodecError(None, f"decompresses to more than {self.max_size} bytes")
        if not inflater.eof:
            raise CodecError(None, "truncated zlib data")
        try:
            return Payload.FromString(serialized)
        except google.protobuf.message.DecodeError:
            raise CodecError(None, "the decompressed data is not a payload") from None
