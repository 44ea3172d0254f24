"""CompressionCodec: zlib for payloads above a size, before they are encrypted."""

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

    A payload is only replaced when compression makes it smaller. Put it before
    the encryption codec (:class:`CodecChain` does): encrypted data does not
    compress.

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
        if self.threshold is None:
            return list(payloads)
        encoded = []
        for payload in payloads:
            serialized = payload.SerializeToString()
            if len(serialized) >= self.threshold:
                compressed = zlib.compress(serialized, self.level)
                if len(compressed) < len(serialized):
                    payload = Payload(metadata={"encoding": ENCODING}, data=compressed)  # noqa: PLW2901
            encoded.append(payload)
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class."""
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") == ENCODING:
                payload = self._decompress(payload.data)  # noqa: PLW2901
            decoded.append(payload)
        return decoded

    def _decompress(self, data: bytes) -> Payload:
        inflater = zlib.decompressobj()
        try:
            serialized = inflater.decompress(data, self.max_size)
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


class CodecChain(temporalio.converter.PayloadCodec):
    """Applies codecs in order when encoding and in reverse order when decoding.

    Args:
        codecs: Codecs in encoding order, for example compression then encryption.
    """

    def __init__(self, codecs: Sequence[temporalio.converter.PayloadCodec]) -> None:
        self.codecs = tuple(codecs)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class."""
        result = list(payloads)
        for codec in self.codecs:
            result = await codec.encode(result)
        return result

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """See base class."""
        result = list(payloads)
        for codec in reversed(self.codecs):
            result = await codec.decode(result)
        return result
