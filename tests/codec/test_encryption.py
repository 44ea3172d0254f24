from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload

from shadow_sdk import DecryptionError, SettingsError, UnknownKeyError
from shadow_sdk.codec import EncryptionCodec, KeyRing

REFERENCE_JS = Path(__file__).with_name("reference_codec.js")
KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(KeyRing({"k1": KEY_1}))


async def test_round_trips_a_payload(codec: EncryptionCodec) -> None:
    """What is encoded decodes to the same payload, metadata included."""
    payload = Payload(metadata={"encoding": b"json/plain", "x": b"\x00\xff"}, data=b'{"a":1}')

    assert await codec.decode(await codec.encode([payload])) == [payload]


async def test_writes_the_samples_wire_format(codec: EncryptionCodec) -> None:
    """Metadata names encoding and key; data is nonce, ciphertext of the whole payload, tag."""
    payload = json_payload({"card": "4111"})

    [encrypted] = await codec.encode([payload])

    assert dict(encrypted.metadata) == {"encoding": b"binary/encrypted", "encryption-key-id": b"k1"}
    assert len(encrypted.data) == 12 + len(payload.SerializeToString()) + 16
    assert b"4111" not in encrypted.data
    plaintext = AESGCM(KEY_1).decrypt(encrypted.data[:12], encrypted.data[12:], None)
    assert Payload.FromString(plaintext) == payload


async def test_nonces_are_never_reused(codec: EncryptionCodec) -> None:
    """The same payload encrypts differently every time."""
    payload = json_payload("same")

    encrypted = await codec.encode([payload] * 100)

    assert len({item.data[:12] for item in encrypted}) == 100


async def test_decodes_what_an_independent_python_implementation_encrypted(
    codec: EncryptionCodec,
) -> None:
    """A payload sealed with raw AESGCM in the samples' format decodes."""
    payload = json_payload({"from": "reference"})
    nonce = os.urandom(12)
    sealed = Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k1"},
        data=nonce + AESGCM(KEY_1).encrypt(nonce, payload.SerializeToString(), None),
    )

    assert await codec.decode([sealed]) == [payload]


def node_reference(op: str, payload: Payload) -> Payload:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the Node.js reference implementation needs it")
    request = {
        "op": op,
        "key": base64.b64encode(KEY_1).decode(),
        "keyId": "k1",
        "payload": {
            "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            "data": base64.b64encode(payload.data).decode(),
        },
    }
    result = subprocess.run(
        [node, str(REFERENCE_JS)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    reply = json.loads(result.stdout)
    return Payload(
        metadata={k: base64.b64decode(v) for k, v in reply["metadata"].items()},
        data=base64.b64decode(reply["data"]),
    )


async def test_interoperates_with_a_nodejs_implementation(codec: EncryptionCodec) -> None:
    """Node's OpenSSL and a hand-written protobuf encoding agree with the codec both ways."""
    payload = Payload(metadata={"encoding": b"json/plain", "y": b"\x01"}, data=b'{"n": 42}')

    encrypted_by_node = node_reference("encrypt", payload)
    decrypted_by_node = node_reference("decrypt", (await codec.encode([payload]))[0])

    assert await codec.decode([encrypted_by_node]) == [payload]
    assert decrypted_by_node == payload


async def test_passes_unencrypted_payloads_through(codec: EncryptionCodec) -> None:
    """Histories written before encryption was turned on stay readable."""
    plain = json_payload("written before encryption")

    assert await codec.decode([plain]) == [plain]


async def test_a_tampered_payload_is_refused_with_its_key_id(codec: EncryptionCodec) -> None:
    """One flipped bit fails authentication; the error names the key and the reason."""
    [encrypted] = await codec.encode([json_payload("amount: 10")])
    data = bytearray(encrypted.data)
    data[20] ^= 1
    encrypted.data = bytes(data)

    with pytest.raises(DecryptionError) as excinfo:
        await codec.decode([encrypted])

    assert excinfo.value.key_id == "k1"
    assert str(excinfo.value) == (
        "cannot decrypt payload encrypted with key 'k1': authentication failed: the data was "
        "altered, or encrypted with another key under this id"
    )


async def test_a_truncated_payload_is_refused(codec: EncryptionCodec) -> None:
    """Data too short to hold a nonce and a tag is named as truncated."""
    [encrypted] = await codec.encode([json_payload("x")])
    encrypted.data = encrypted.data[:20]

    with pytest.raises(DecryptionError, match=r"'k1': truncated: 20 bytes, fewer than the 28"):
        await codec.decode([encrypted])


async def test_a_payload_sealed_with_another_key_under_the_same_id_is_refused(
    codec: EncryptionCodec,
) -> None:
    """A key id is not trusted blindly: the wrong key fails authentication."""
    [foreign] = await EncryptionCodec(KeyRing({"k1": KEY_2})).encode([json_payload("x")])

    with pytest.raises(DecryptionError, match="authentication failed"):
        await codec.decode([foreign])


async def test_an_unknown_key_id_is_named_with_the_known_ones(codec: EncryptionCodec) -> None:
    """The error says which key is missing and which keys the ring has."""
    [foreign] = await EncryptionCodec(KeyRing({"k9": KEY_2})).encode([json_payload("x")])

    with pytest.raises(UnknownKeyError) as excinfo:
        await codec.decode([foreign])

    assert excinfo.value.key_id == "k9"
    assert (
        str(excinfo.value)
        == "cannot decrypt payload encrypted with key 'k9': no such key; the key ring has k1"
    )


async def test_a_payload_without_key_id_is_refused(codec: EncryptionCodec) -> None:
    """Encrypted payloads must say which key sealed them."""
    broken = Payload(metadata={"encoding": b"binary/encrypted"}, data=os.urandom(64))

    with pytest.raises(DecryptionError, match="no 'encryption-key-id' metadata"):
        await codec.decode([broken])


async def test_rotation_keeps_old_payloads_readable() -> None:
    """After rotating, the new key encrypts and the old one still decrypts."""
    before = EncryptionCodec(KeyRing({"k1": KEY_1}))
    after = EncryptionCodec(KeyRing({"k1": KEY_1, "k2": KEY_2}, active="k2"))
    old = await before.encode([json_payload("old")])

    new = await after.encode([json_payload("new")])

    assert new[0].metadata["encryption-key-id"] == b"k2"
    assert await after.decode(old + new) == [json_payload("old"), json_payload("new")]


def write_key(directory: Path, key_id: str, key: bytes) -> None:
    (directory / key_id).write_text(base64.b64encode(key).decode() + "\n")


async def test_a_key_added_to_the_directory_is_picked_up_without_restart(tmp_path: Path) -> None:
    """A mounted secret that gains a key is read again when that key is first needed."""
    write_key(tmp_path, "k1", KEY_1)
    codec = EncryptionCodec(KeyRing.from_directory(tmp_path, reload_interval=0))
    [sealed_with_k2] = await EncryptionCodec(KeyRing({"k2": KEY_2})).encode([json_payload("x")])
    with pytest.raises(UnknownKeyError):
        await codec.decode([sealed_with_k2])

    write_key(tmp_path, "k2", KEY_2)

    assert await codec.decode([sealed_with_k2]) == [json_payload("x")]
    assert codec.keys.ids == ("k1", "k2")
    assert codec.keys.active_id == "k1"


def test_a_key_directory_names_its_active_key(tmp_path: Path) -> None:
    """With several keys, an ACTIVE file (or the setting) says which one encrypts."""
    write_key(tmp_path, "k1", KEY_1)
    write_key(tmp_path, "k2", KEY_2)
    (tmp_path / ".hidden").write_text("ignored, as Kubernetes' ..data links are")
    with pytest.raises(SettingsError, match="holds 2 keys; name the active one"):
        KeyRing.from_directory(tmp_path)

    (tmp_path / "ACTIVE").write_text("k2\n")

    assert KeyRing.from_directory(tmp_path).active_id == "k2"
    assert KeyRing.from_directory(tmp_path, active="k1").active_id == "k1"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not base64!!", "key 'k1' is not base64"),
        (base64.b64encode(b"short").decode(), "key 'k1' is 5 bytes; an AES-256 key is 32"),
    ],
)
def test_bad_key_files_are_named_without_their_content(
    tmp_path: Path, content: str, problem: str
) -> None:
    """The error names the file and key id, never the key material."""
    (tmp_path / "k1").write_text(content)

    with pytest.raises(SettingsError) as excinfo:
        KeyRing.from_directory(tmp_path)

    assert problem in str(excinfo.value)
    assert str(tmp_path / "k1") in str(excinfo.value)


def test_key_ring_repr_shows_ids_only() -> None:
    """Logging a key ring never logs a key."""
    text = repr(KeyRing({"k1": KEY_1}))

    assert text == "KeyRing(ids=['k1'], active='k1')"


payloads = st.builds(
    lambda metadata, data: Payload(metadata=metadata, data=data),
    st.dictionaries(st.text(max_size=20), st.binary(max_size=50), max_size=4),
    st.binary(max_size=4096),
)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(payloads, max_size=5))
def test_any_payloads_round_trip(batch: list[Payload]) -> None:
    """Whatever the metadata and data, decode(encode(x)) == x."""
    codec = EncryptionCodec(KeyRing({"k1": KEY_1}))

    assert codec.decode_sync(codec.encode_sync(batch)) == batch


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512), key_id=st.sampled_from([b"k1", b"k9", b"", b"\xff"]))
def test_arbitrary_bytes_never_decode(data: bytes, key_id: bytes) -> None:
    """Random data claiming to be encrypted only ever raises a clean CodecError."""
    codec = EncryptionCodec(KeyRing({"k1": KEY_1}))
    forged = Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": key_id}, data=data
    )

    with pytest.raises((DecryptionError, UnknownKeyError)):
        codec.decode_sync([forged])
