from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload

from shadow_sdk import CodecError
from shadow_sdk.codec import CompressionCodec, EncryptionCodec, KeyRing


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
