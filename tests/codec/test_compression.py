from __future__ import annotations

import asyncio
import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload

from shadow_sdk import CodecError, CodecLimitError
from shadow_sdk.codec import CompressionCodec, EncryptionCodec, KeyRing
from shadow_sdk.codec._compression import INLINE_BYTES


async def test_compresses_large_payloads_only() -> None:
    """Payloads from the threshold up are compressed; smaller ones are left alone."""
    codec = CompressionCodec(threshold=100)
    small = Payload(metadata={"encoding": b"json/plain"}, data=b'"tiny"')
    large = Payload(metadata={"encoding": b"json/plain"}, data=b"a" * 10_000)

    encoded = await codec.encode([small, large])

    assert encoded[0] == small
    assert encoded[1].metadata["encoding"] == b"binary/zlib"
    assert len(encoded[1].data) < 200
    assert await codec.decode(encoded) == [small, large]


async def test_keeps_payloads_that_do_not_shrink() -> None:
    """Random data is not replaced by a larger 'compressed' copy."""
    codec = CompressionCodec(threshold=0)
    noise = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(2000))

    assert await codec.encode([noise]) == [noise]


async def test_encryption_compresses_inside_the_envelope() -> None:
    """With compression, the ciphertext holds the compressed payload; decoding undoes both."""
    codec = EncryptionCodec(KeyRing({"k1": bytes(32)}), compression=CompressionCodec(threshold=10))
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b"b" * 50_000)

    [encoded] = await codec.encode([payload])

    assert encoded.metadata["encoding"] == b"binary/encrypted"
    assert len(encoded.data) < 1_000
    assert await codec.decode([encoded]) == [payload]


async def test_encryption_never_inflates_what_it_did_not_decrypt() -> None:
    """A bare zlib payload, which anyone could send, passes through encryption undecompressed."""
    codec = EncryptionCodec(
        KeyRing({"k1": bytes(32)}), compression=CompressionCodec(threshold=None)
    )
    bomb = Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(b"\0" * 50_000_000))

    assert await codec.decode([bomb]) == [bomb]


async def test_a_bomb_inside_the_envelope_is_refused_with_its_key_id() -> None:
    """Even a key holder cannot make decoding inflate past the limit."""
    keys = KeyRing({"k1": bytes(32)})
    bomb = Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(b"\0" * 50_000_000))
    [sealed] = await EncryptionCodec(keys).encode([bomb])
    codec = EncryptionCodec(keys, compression=CompressionCodec(threshold=None, max_size=1 << 20))

    with pytest.raises(CodecError, match="'k1': decompresses to more than 1048576 bytes"):
        await codec.decode([sealed])


async def test_a_zlib_bomb_is_refused() -> None:
    """Decompression stops at max_size instead of exhausting memory."""
    codec = CompressionCodec(threshold=0, max_size=1024 * 1024)
    bomb = Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(b"\0" * 50_000_000))

    with pytest.raises(CodecError, match="decompresses to more than 1048576 bytes"):
        await codec.decode([bomb])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not zlib at all", "corrupt zlib data"),
        (zlib.compress(b"x" * 1000)[:-6], "truncated zlib data"),
    ],
)
async def test_corrupt_data_is_refused(data: bytes, reason: str) -> None:
    """Bad compressed data is a clean CodecError."""
    with pytest.raises(CodecError, match=reason):
        await CompressionCodec(threshold=0).decode(
            [Payload(metadata={"encoding": b"binary/zlib"}, data=data)]
        )


def test_arguments_are_checked() -> None:
    """A negative threshold or a level zlib does not have is refused, naming it."""
    with pytest.raises(ValueError, match="threshold: -1 is negative"):
        CompressionCodec(threshold=-1)
    with pytest.raises(ValueError, match="level: 10 is not a zlib level"):
        CompressionCodec(threshold=0, level=10)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=8192), threshold=st.integers(0, 4096))
async def test_any_payload_round_trips(data: bytes, threshold: int) -> None:
    """Whatever is compressed decompresses to the same payload."""
    codec = CompressionCodec(threshold=threshold)
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=data)

    assert await codec.decode(await codec.encode([payload])) == [payload]


def zeros(size: int) -> Payload:
    """A payload of ``size`` zero bytes: compresses about a thousandfold."""
    return Payload(metadata={"encoding": b"binary/plain"}, data=bytes(size))


async def test_one_call_inflates_no_more_than_its_budget_in_all() -> None:
    """Each payload is under max_size, together they are over: refused, naming the setting."""
    codec = CompressionCodec(threshold=0, max_size=1 << 20, max_decoded_bytes=3 << 20)
    compressed = await codec.encode([zeros(900_000)] * 4)

    assert await codec.decode(compressed[:3]) == [zeros(900_000)] * 3
    with pytest.raises(CodecLimitError, match="CODEC_MAX_DECODED_BYTES=3145728") as refused:
        await codec.decode(compressed)
    assert refused.value.limit == 3 << 20


async def test_one_call_takes_no_more_payloads_than_allowed() -> None:
    codec = CompressionCodec(threshold=None, max_payloads=100)

    assert len(await codec.decode([Payload()] * 100)) == 100
    with pytest.raises(CodecLimitError, match="101 payloads at once.*CODEC_MAX_PAYLOADS=100"):
        await codec.decode([Payload()] * 101)


async def test_the_budget_spans_encryption_and_compression() -> None:
    """Sealed bombs, each within max_size, are refused together once the call's budget is spent."""
    keys = KeyRing({"k1": bytes(32)})
    sealer = EncryptionCodec(keys, compression=CompressionCodec(threshold=0))
    sealed = await sealer.encode([zeros(2 << 20)] * 8)
    codec = EncryptionCodec(
        keys, compression=CompressionCodec(threshold=None), max_decoded_bytes=10 << 20
    )

    assert len(await codec.decode(sealed[:4])) == 4
    with pytest.raises(CodecLimitError, match="more than 10485760 bytes decoded at once"):
        await codec.decode(sealed)


async def test_a_large_decompression_leaves_the_event_loop_free() -> None:
    """CompressionCodec alone inflates a large payload in a thread too."""
    codec = CompressionCodec(threshold=0)
    [large] = await codec.encode([zeros(60 << 20)])
    [small] = await codec.encode([zeros(10)])
    assert len(large.data) < INLINE_BYTES

    decoding = asyncio.create_task(codec.decode([large]))
    await asyncio.sleep(0)
    assert await codec.decode([small]) == [zeros(10)]
    finished_first = decoding.done()

    assert await decoding == [zeros(60 << 20)]
    assert not finished_first


async def test_a_large_decode_leaves_the_event_loop_free() -> None:
    """A payload that inflates far is decoded in a thread: a small one finishes meanwhile."""
    keys = KeyRing({"k1": bytes(32)})
    codec = EncryptionCodec(keys, compression=CompressionCodec(threshold=0))
    [large] = await codec.encode([zeros(60 << 20)])
    [small] = await codec.encode([zeros(10)])
    assert len(large.data) < INLINE_BYTES  # Small on the wire: only inflating shows its size.

    decoding = asyncio.create_task(codec.decode([large]))
    await asyncio.sleep(0)  # The large decode starts, finds it is large, goes to a thread.
    assert await codec.decode([small]) == [zeros(10)]
    finished_first = decoding.done()

    assert await decoding == [zeros(60 << 20)]
    assert not finished_first
