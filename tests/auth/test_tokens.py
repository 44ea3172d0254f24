from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shadow_sdk import TokenError
from shadow_sdk.auth import Identity, TokenIssuer, TokenVerifier

SECRET = "s" * 32
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], claims: dict[str, object], signature: bytes = b"") -> str:
    """A token assembled by hand, as an attacker would."""
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sub": "alice",
        "roles": ["operator"],
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def rsa_pem_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[bytes, bytes]:
    return rsa_pem_pair()


def hs256_verifier(**options: object) -> TokenVerifier:
    return TokenVerifier(hs256_secret=SECRET, **options)  # type: ignore[arg-type]


def test_an_issued_token_verifies_to_its_identity() -> None:
    """Issuer and verifier agree on subject, roles and namespaces."""
    token = TokenIssuer(hs256_secret=SECRET).issue(
        "alice", ["operator", "viewer"], namespaces=["orders"], now=NOW
    )

    identity = hs256_verifier().verify(token, now=NOW + timedelta(minutes=5))

    assert identity == Identity("alice", frozenset({"operator", "viewer"}), frozenset({"orders"}))


@pytest.mark.parametrize("curve_or_size", ["rsa", "ec"])
def test_rs256_and_es256_tokens_verify_with_the_public_key(curve_or_size: str) -> None:
    """Production keys: the private key signs, the public key verifies, the alg follows the key."""
    private_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if curve_or_size == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    private = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    issuer = TokenIssuer(private_key=private)

    identity = TokenVerifier(public_key=public).verify(
        issuer.issue("bob", ["viewer"], now=NOW), now=NOW
    )

    assert issuer.algorithm == ("RS256" if curve_or_size == "rsa" else "ES256")
    assert identity.subject == "bob"


def test_a_jwks_picks_the_key_by_kid(rsa_keys: tuple[bytes, bytes]) -> None:
    """With several keys published, the token's kid selects one; an unknown kid is refused."""
    private, _ = rsa_keys
    other_private, _ = rsa_pem_pair()
    jwks = {
        "keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(
                serialization.load_pem_private_key(pem, None).public_key())),  # type: ignore[arg-type]
             "kid": kid, "alg": "RS256", "use": "sig"}
            for kid, pem in (("2026-10", other_private), ("2026-11", private))
        ]
    }  # fmt: skip
    verifier = TokenVerifier(jwks=jwks)

    good = TokenIssuer(private_key=private, key_id="2026-11").issue("carol", ["admin"], now=NOW)
    unknown = TokenIssuer(private_key=private, key_id="2027-01").issue("carol", ["admin"], now=NOW)

    assert verifier.verify(good, now=NOW).subject == "carol"
    with pytest.raises(TokenError, match="^unknown signing key '2027-01'$"):  # Known ids unsaid.
        verifier.verify(unknown, now=NOW)
    encryption_key = {**jwks["keys"][0], "use": "enc"}
    with pytest.raises(ValueError, match="jwks: key '2026-10' is for 'enc', not for signatures"):
        TokenVerifier(jwks={"keys": [encryption_key]})


def test_alg_none_is_refused() -> None:
    """An unsigned token is refused before anything else is read."""
    token = forge({"alg": "none", "typ": "JWT"}, claims(roles=["admin"]))

    with pytest.raises(
        TokenError, match="^algorithm 'none' is not accepted; this verifier accepts HS256$"
    ):
        hs256_verifier().verify(token, now=NOW)


def test_hs256_signed_with_the_public_key_is_refused(rsa_keys: tuple[bytes, bytes]) -> None:
    """The algorithm-confusion attack: HMAC keyed with the RSA public key PEM."""
    _, public = rsa_keys
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims(roles=["admin"])).encode())
    signature = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{b64(signature)}"

    with pytest.raises(
        TokenError, match="^algorithm 'HS256' is not accepted; this verifier accepts RS256$"
    ):
        TokenVerifier(public_key=public).verify(token, now=NOW)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    """A valid-looking token from someone without our secret fails its signature."""
    token = TokenIssuer(hs256_secret="x" * 32).issue("mallory", ["admin"], now=NOW)

    with pytest.raises(TokenError, match="^bad signature$"):
        hs256_verifier().verify(token, now=NOW)


def test_edited_claims_break_the_signature() -> None:
    """Promoting oneself to admin by editing the payload is detected."""
    token = TokenIssuer(hs256_secret=SECRET).issue("eve", ["viewer"], now=NOW)
    header, _, signature = token.split(".")
    edited = f"{header}.{b64(json.dumps(claims(sub='eve', roles=['admin'])).encode())}.{signature}"

    with pytest.raises(TokenError, match="^bad signature$"):
        hs256_verifier().verify(edited, now=NOW)


def test_expired_and_future_tokens_are_refused_beyond_leeway() -> None:
    """exp, nbf and iat are judged against the given time, with the configured leeway."""
    issuer = TokenIssuer(hs256_secret=SECRET)
    verifier = hs256_verifier(leeway=timedelta(seconds=30))
    token = issuer.issue("alice", ["operator"], now=NOW, ttl=timedelta(minutes=10))
    not_yet = issuer.issue(
        "alice", ["operator"], now=NOW, claims={"nbf": int(NOW.timestamp()) + 600}
    )

    assert verifier.verify(token, now=NOW + timedelta(minutes=10, seconds=29)).subject == "alice"
    with pytest.raises(TokenError, match=r"^expired at 2026-11-25T12:10:00\+00:00$"):
        verifier.verify(token, now=NOW + timedelta(minutes=10, seconds=31))
    with pytest.raises(TokenError, match=r"^not valid before 2026-11-25T12:10:00\+00:00$"):
        verifier.verify(not_yet, now=NOW)
    with pytest.raises(TokenError, match=r"^issued in the future, at 2026-11-25T12:00:00\+00:00$"):
        verifier.verify(token, now=NOW - timedelta(minutes=1))


def test_time_is_judged_by_the_event_not_the_wall_clock() -> None:
    """A token long expired by the wall clock still verifies at the time of its event (replay)."""
    token = TokenIssuer(hs256_secret=SECRET).issue("alice", ["operator"], now=NOW)

    assert hs256_verifier().verify(token, now=NOW).subject == "alice"
    with pytest.raises(TokenError, match="^expired at"):
        hs256_verifier().verify(token)
    assert hs256_verifier().verify(token, check_time=False).subject == "alice"


def test_audience_and_issuer_are_required_when_configured() -> None:
    """A token for another audience or from another issuer is refused, and so is one without."""
    verifier = hs256_verifier(audience="orders-api", issuer="https://idp.example")

    def token(**claims: str) -> str:
        return TokenIssuer(hs256_secret=SECRET, **claims).issue("alice", ["operator"], now=NOW)

    assert verifier.verify(token(audience="orders-api", issuer="https://idp.example"), now=NOW)
    with pytest.raises(TokenError, match="^wrong audience: expected 'orders-api'$"):
        verifier.verify(token(audience="billing", issuer="https://idp.example"), now=NOW)
    with pytest.raises(TokenError, match="^wrong issuer: expected 'https://idp.example'$"):
        verifier.verify(token(audience="orders-api", issuer="https://evil.example"), now=NOW)
    with pytest.raises(TokenError, match="^missing claim 'aud'$"):
        verifier.verify(token(issuer="https://idp.example"), now=NOW)


@pytest.mark.parametrize("claim", ["sub", "exp", "iat"])
def test_required_claims_are_required(claim: str) -> None:
    """A token without sub, exp or iat is refused, naming the claim."""
    token = jwt.encode(claims(**{claim: None}), SECRET, algorithm="HS256")

    with pytest.raises(TokenError, match=f"^missing claim '{claim}'$"):
        hs256_verifier().verify(token, now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.%%%.abc"],
    ids=["empty", "one part", "two parts", "not base64 json", "bad payload"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    """Anything that is not a JWT is a clean TokenError."""
    with pytest.raises(TokenError, match="^malformed token"):
        hs256_verifier().verify(token, now=NOW)


def test_roles_must_be_a_list_of_strings() -> None:
    """A roles claim of the wrong shape is refused rather than guessed at."""
    token = jwt.encode(claims(roles="admin"), SECRET, algorithm="HS256")

    with pytest.raises(TokenError, match="^claim 'roles' is not a list of strings$"):
        hs256_verifier().verify(token, now=NOW)


def test_weak_hs256_secrets_and_mixed_keys_are_refused() -> None:
    """Secrets under 32 bytes, or several key kinds at once, are configuration errors."""
    with pytest.raises(ValueError, match="hs256_secret: 5 bytes; HS256 needs at least 32"):
        TokenVerifier(hs256_secret="short")
    with pytest.raises(ValueError, match="give exactly one of hs256_secret, public_key, jwks"):
        TokenVerifier(hs256_secret=SECRET, jwks={"keys": []})


@pytest.mark.parametrize("exp", ["NaN", "Infinity", "true"])
def test_time_claims_must_be_finite_numbers(exp: str) -> None:
    """A signer bug that writes exp as NaN or Infinity must not mean 'never expires'."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(
        f'{{"sub": "alice", "roles": ["admin"], "iat": {int(NOW.timestamp())}, "exp": {exp}}}'.encode()
    )
    signature = hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()

    with pytest.raises(TokenError, match="^claim 'exp' is not a finite number$"):
        hs256_verifier().verify(f"{header}.{body}.{b64(signature)}", now=NOW)
