"""Codec throughput against raw AES-GCM, and token verifications per second.

Run with ``nox -s bench``. Each figure is the median of several rounds, and the
contenders of a comparison alternate round by round, so that both see the same
machine; the ratios are what to read, the absolute figures depend on the machine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload

from shadow_sdk.auth import TokenIssuer, TokenVerifier
from shadow_sdk.codec import CompressionCodec, EncryptionCodec, KeyRing

SIZES = {"256 B": 256, "4 KiB": 4096, "64 KiB": 65536, "1 MiB": 1 << 20}
ROUNDS = 7
ROUND_SECONDS = 0.15


def per_second(operation: Callable[[], object]) -> float:
    """Operations per second, measured for about ROUND_SECONDS."""
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < ROUND_SECONDS:
        operation()
        count += 1
    return count / elapsed


def per_second_awaited(
    loop: asyncio.AbstractEventLoop, operation: Callable[[], Awaitable[object]]
) -> float:
    """Like per_second, awaiting ``operation`` inside one running event loop, as a worker does."""

    async def measure() -> float:
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < ROUND_SECONDS:
            await operation()
            count += 1
        return count / elapsed

    return loop.run_until_complete(measure())


def compare(contenders: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Median operations per second of each contender, measured in alternation."""
    rounds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, measure in contenders.items():
            rounds[name].append(measure())
    return {name: statistics.median(values) for name, values in rounds.items()}


def codec_rows() -> list[tuple[str, float, float, float, float, float, float, float]]:
    """Throughputs and ratios for each payload size."""
    key = AESGCM.generate_key(256)
    raw = AESGCM(key)
    codec = EncryptionCodec(KeyRing({"bench": key}))
    chain = EncryptionCodec(codec.keys, compression=CompressionCodec(threshold=None))
    loop = asyncio.new_event_loop()
    rows = []
    for label, size in SIZES.items():
        data = os.urandom(size)
        payload = Payload(metadata={"encoding": b"binary/plain"}, data=data)

        def raw_round_trip(data: bytes = data) -> bytes:
            nonce = os.urandom(12)
            return raw.decrypt(nonce, raw.encrypt(nonce, data, None), None)

        def codec_round_trip(payload: Payload = payload) -> list[Payload]:
            return codec.decode_sync(codec.encode_sync([payload]))

        def minimal_round_trip(payload: Payload = payload) -> Payload:
            # The least any codec of this wire format does: what Temporal's samples do.
            nonce = os.urandom(12)
            sealed = Payload(
                metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"bench"},
                data=nonce + raw.encrypt(nonce, payload.SerializeToString(), None),
            )
            data = sealed.data
            return Payload.FromString(raw.decrypt(data[:12], data[12:], None))

        async def chain_round_trip(payload: Payload = payload) -> list[Payload]:
            return await chain.decode(await chain.encode([payload]))

        checks = (codec_round_trip(), asyncio.run(chain_round_trip()), [minimal_round_trip()])
        if any(result != [payload] for result in checks):
            raise RuntimeError(f"the codec does not round-trip {label}")
        rates = compare({
            "raw": partial(per_second, raw_round_trip),
            "minimal": partial(per_second, minimal_round_trip),
            "codec": partial(per_second, codec_round_trip),
            "chain": partial(per_second_awaited, loop, chain_round_trip),
        })  # fmt: skip
        megabytes = size / 1e6
        rows.append((
            label,
            rates["raw"] * megabytes,
            rates["codec"] * megabytes,
            rates["codec"] / rates["raw"],
            rates["chain"] * megabytes,
            rates["chain"] / rates["raw"],
            1e6 / rates["chain"] - 1e6 / rates["raw"],
            rates["codec"] / rates["minimal"],
        ))  # fmt: skip
    loop.close()
    return rows


def pem_pair(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    """PEM of a private key and of its public key."""
    private = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def token_rows() -> list[tuple[str, float, float, float, float, float]]:
    """Verifications per second for each algorithm: PyJWT, a first and a repeated token."""
    secret = "benchmark-secret-of-at-least-32-bytes"  # noqa: S105  A throwaway key.
    rsa_private, rsa_public = pem_pair(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec_private, ec_public = pem_pair(ec.generate_private_key(ec.SECP256R1()))
    # PyJWT's own baseline gets loaded key objects, so that it does not parse PEM per call.
    cases: dict[str, tuple[TokenIssuer, dict[str, Any], Any]] = {
        "HS256": (TokenIssuer(hs256_secret=secret), {"hs256_secret": secret}, secret),
        "RS256": (TokenIssuer(private_key=rsa_private), {"public_key": rsa_public},
                  serialization.load_pem_public_key(rsa_public)),
        "ES256": (TokenIssuer(private_key=ec_private), {"public_key": ec_public},
                  serialization.load_pem_public_key(ec_public)),
    }  # fmt: skip
    rows = []
    for algorithm, (issuer, verifier_key, key) in cases.items():
        token = issuer.issue("bench", ["operator"])
        # Without a cache every call is a token's first verification.
        first = TokenVerifier(**verifier_key, cache_size=0)
        repeated = TokenVerifier(**verifier_key)
        rates = compare({
            "pyjwt": partial(per_second, partial(jwt.decode, token, key, algorithms=[algorithm])),
            "first": partial(per_second, partial(first.verify, token)),
            "repeated": partial(per_second, partial(repeated.verify, token)),
        })  # fmt: skip
        pyjwt = rates["pyjwt"]
        rows.append((
            algorithm, pyjwt, rates["first"], rates["first"] / pyjwt,
            rates["repeated"], rates["repeated"] / pyjwt,
        ))  # fmt: skip
    return rows


def main() -> None:
    """Print both tables."""
    print("Payload codec: encode + decode of one payload, MB/s of payload data")
    header = f"{'size':>7} {'raw AESGCM':>11} {'codec':>9} {'ratio':>6} {'chain':>9} {'ratio':>6}"
    print(f"{header} {'extra us':>9} {'vs minimal':>11}")
    for label, raw, codec, codec_ratio, chain, chain_ratio, extra, vs_minimal in codec_rows():
        print(
            f"{label:>7} {raw:>11.0f} {codec:>9.0f} {codec_ratio:>6.2f} {chain:>9.0f} "
            f"{chain_ratio:>6.2f} {extra:>9.1f} {vs_minimal:>11.2f}"
        )
    print(
        "  codec: EncryptionCodec, synchronous. chain: the same with decompression on, as\n"
        "  settings build it, awaited in a running event loop. ratio: codec or chain over\n"
        "  raw AESGCM encrypt + decrypt of the same bytes. extra us: what the chain adds to\n"
        "  one payload's round trip. vs minimal: the codec over the least code that writes\n"
        "  this wire format (what Temporal's samples do), measured alongside.\n"
        "  The gap to raw is protobuf, not crypto: the format encrypts the whole serialized\n"
        "  Payload, so each direction copies the data through upb, while AES-GCM with AES-NI\n"
        "  runs at memory speed. At 1 MiB glibc's malloc may return large buffers to the\n"
        "  kernel on every call (page faults); setting both MALLOC_MMAP_THRESHOLD_ and\n"
        "  MALLOC_TRIM_THRESHOLD_, as the generated Dockerfile does, avoids it (one alone\n"
        "  stops glibc adapting the other and makes it worse)."
    )
    print()
    print("Token verification, tokens per second")
    print(f"{'alg':>7} {'jwt.decode':>11} {'first':>9} {'ratio':>6} {'repeated':>9} {'ratio':>6}")
    for algorithm, pyjwt, first, first_ratio, repeated, repeated_ratio in token_rows():
        print(
            f"{algorithm:>7} {pyjwt:>11.0f} {first:>9.0f} {first_ratio:>6.2f} "
            f"{repeated:>9.0f} {repeated_ratio:>6.2f}"
        )
    print("  jwt.decode: PyJWT alone (signature and exp). first: TokenVerifier.verify of a")
    print("  token it has not seen, with the algorithm allow-list, required claims and")
    print("  identity. repeated: the same token again, answered by the verified-token")
    print("  cache (exp still judged). ratio: over jwt.decode.")


if __name__ == "__main__":
    main()
