"""A verified token is remembered, and never trusted beyond what verifying it proved."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shadow_sdk import TokenError
from shadow_sdk.auth import TokenIssuer, TokenVerifier

SECRET = "s" * 32
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def issue(subject: str = "alice", *, secret: str = SECRET, **options: object) -> str:
    return TokenIssuer(hs256_secret=secret).issue(subject, ["operator"], now=NOW, **options)  # type: ignore[arg-type]


def test_a_token_sent_again_is_answered_from_the_cache() -> None:
    """The second call returns the very identity the first one built: nothing was verified."""
    verifier = TokenVerifier(hs256_secret=SECRET)
    token = issue()

    first = verifier.verify(token, now=NOW)
    again = verifier.verify(token, now=NOW + timedelta(minutes=1))

    assert again is first
    assert TokenVerifier(hs256_secret=SECRET, cache_size=0).verify(token, now=NOW) is not first


def test_a_remembered_token_still_expires() -> None:
    """The cache answers for the signature, never for the time: exp is judged on every call."""
    verifier = TokenVerifier(hs256_secret=SECRET, leeway=0)
    token = issue(ttl=timedelta(minutes=10))
    verifier.verify(token, now=NOW)

    with pytest.raises(TokenError, match=r"^expired at 2026-11-25T12:10:00\+00:00$"):
        verifier.verify(token, now=NOW + timedelta(minutes=10, seconds=1))
    # A replay judges the same token by the time of its event, and may still accept it.
    assert verifier.verify(token, now=NOW + timedelta(minutes=5)).subject == "alice"


def test_a_forged_token_with_the_same_claims_misses_and_is_refused() -> None:
    """Same header and claims as a remembered token, another signature: verified, and refused."""
    verifier = TokenVerifier(hs256_secret=SECRET)
    genuine = issue()
    verifier.verify(genuine, now=NOW)
    header, payload, _ = genuine.split(".")
    resigned = issue(secret="x" * 32).split(".")[2]
    forged = f"{header}.{payload}.{resigned}"

    with pytest.raises(TokenError, match="^bad signature$"):
        verifier.verify(forged, now=NOW)


def test_a_key_change_forgets_every_token() -> None:
    """Keys are fixed per verifier: one made for the new key verifies, and refuses, anew."""
    token = issue()
    TokenVerifier(hs256_secret=SECRET).verify(token, now=NOW)

    with pytest.raises(TokenError, match="^bad signature$"):
        TokenVerifier(hs256_secret="n" * 32).verify(token, now=NOW)


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    verifier = TokenVerifier(hs256_secret=SECRET, cache_size=2)
    a, b, c = (issue(name) for name in ("a", "b", "c"))
    first_a = verifier.verify(a, now=NOW)
    verifier.verify(b, now=NOW)
    verifier.verify(a, now=NOW)  # Now b is the least recently used.
    verifier.verify(c, now=NOW)

    assert verifier.verify(a, now=NOW) is first_a
    assert len(verifier._verified) == 2


def test_a_remembered_identity_cannot_be_changed_by_one_caller_for_the_next() -> None:
    identity = TokenVerifier(hs256_secret=SECRET).verify(issue(), now=NOW)

    with pytest.raises(TypeError):
        identity.claims["roles"] = ["admin"]  # type: ignore[index]


def test_threads_verifying_at_once_each_get_their_own_identity() -> None:
    """An activity's thread pool and the event loop verify side by side."""
    verifier = TokenVerifier(hs256_secret=SECRET, cache_size=8)
    tokens = {f"user-{n}": issue(f"user-{n}") for n in range(32)}

    def verify(subject: str) -> str:
        return verifier.verify(tokens[subject], now=NOW).subject

    with ThreadPoolExecutor(8) as pool:
        subjects = list(pool.map(verify, [*tokens] * 20))

    assert subjects == [*tokens] * 20
    assert len(verifier._verified) == 8


def test_a_negative_cache_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^size=-1: must be 0 \(no cache\) or more$"):
        TokenVerifier(hs256_secret=SECRET, cache_size=-1)
