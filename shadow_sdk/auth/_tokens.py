"""JSON Web Tokens: issue them, and verify them against an algorithm allow-list."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shadow_sdk._duration import Duration, to_timedelta
from shadow_sdk._exceptions import SettingsError, TokenError
from shadow_sdk.auth._verified import DEFAULT_SIZE, VerifiedToken, VerifiedTokens

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

ROLES_CLAIM = "roles"
"""Claim holding the caller's roles, a list of strings."""
NAMESPACES_CLAIM = "namespaces"
"""Optional claim restricting the token to these namespaces, a list of strings."""
MIN_HS256_SECRET_BYTES = 32
_REQUIRED_CLAIMS = ("sub", "exp", "iat")


@dataclass(frozen=True)
class Identity:
    """Who is calling, as a verified token says.

    Attributes:
        subject: The ``sub`` claim.
        roles: The ``roles`` claim.
        namespaces: The ``namespaces`` claim, or ``None`` when the token does not
            restrict namespaces.
        claims: Every claim of the token, read-only: one identity answers every call
            that carries the same token.
    """

    subject: str
    roles: frozenset[str]
    namespaces: frozenset[str] | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


class TokenVerifier:
    """Verifies tokens signed with one kind of key, and nothing else.

    The accepted algorithms follow from the key: HS256 for a shared secret (local
    development), RS256 for an RSA public key, ES256 for a P-256 public key, and
    the algorithm of each key in a JWKS document (chosen by the token's ``kid``).
    A token with any other ``alg`` is refused before its signature is looked at,
    which rules out ``alg: none`` and HS256 tokens "signed" with a public key.

    ``sub``, ``exp`` and ``iat`` are required; ``aud`` and ``iss`` too when
    configured. Time claims are judged against the ``now`` given to
    :meth:`verify`, so that workflow code can judge a token by the time of the
    event that carried it, not by the wall clock of a later replay.

    Args:
        hs256_secret: Shared secret, at least 32 bytes.
        public_key: PEM of an RSA or P-256 public key.
        jwks: A JWKS document (``{"keys": [...]}``) of public keys.
        audience: Required ``aud``.
        issuer: Required ``iss``.
        leeway: Clock skew tolerated on ``exp``, ``nbf`` and ``iat``, in seconds or as a
            timedelta.
        cache_size: Verified tokens remembered, so that a token sent with every call
            is verified once (its time claims are still judged on every call); ``0``
            verifies every time.
    """

    def __init__(
        self,
        *,
        hs256_secret: str | bytes | None = None,
        public_key: str | bytes | None = None,
        jwks: Mapping[str, Any] | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway: Duration = timedelta(seconds=30),
        cache_size: int = DEFAULT_SIZE,
    ) -> None:
        sources = {"hs256_secret": hs256_secret, "public_key": public_key, "jwks": jwks}
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of hs256_secret, public_key, jwks; got {given}")
        self._keys: dict[tuple[str, str | None], Any] = {}
        if hs256_secret is not None:
            self._keys["HS256", None] = _hs256_secret(hs256_secret)
        elif public_key is not None:
            key = serialization.load_pem_public_key(_bytes(public_key))
            self._keys[_algorithm_of(key, "public_key"), None] = key
        elif jwks is not None:
            for entry in jwks.get("keys", []):
                if isinstance(entry, Mapping) and entry.get("use", "sig") != "sig":
                    kid, use = entry.get("kid"), entry.get("use")
                    raise ValueError(f"jwks: key {kid!r} is for {use!r}, not for signatures")
            for jwk in jwt.PyJWKSet.from_dict(dict(jwks)).keys:
                if jwk.algorithm_name not in ("RS256", "ES256"):
                    raise ValueError(
                        f"jwks: key {jwk.key_id!r} uses {jwk.algorithm_name}, not RS256 or ES256"
                    )
                self._keys[jwk.algorithm_name, jwk.key_id] = jwk.key
        self.audience = audience
        self.issuer = issuer
        self.leeway = to_timedelta(leeway, "leeway", non_negative=True)
        self._verified = VerifiedTokens(cache_size)
        self._decode_options: jwt.types.Options = {
            "require": [*_REQUIRED_CLAIMS, *self._configured_claims()],
            "verify_exp": False,  # Judged against the caller's `now`.
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": audience is not None,
            "verify_iss": issuer is not None,
        }

    @classmethod
    def from_settings(cls, settings: ShadowSettings) -> TokenVerifier | None:
        """The verifier of ``AUTH_HS256_SECRET``, ``AUTH_PUBLIC_KEY_PATH`` or ``AUTH_JWKS_PATH``.

        The settings allow one of them at most; ``AUTH_AUDIENCE``, ``AUTH_ISSUER``
        and ``AUTH_LEEWAY`` apply to each. Key files are read, and keys checked, here.

        Returns:
            The verifier, or ``None`` when none of the three is set.

        Raises:
            SettingsError: The secret is too short, or the key or JWKS file holds no
                usable key; the message names the variable.
        """
        key: dict[str, Any]
        try:
            if settings.auth_hs256_secret is not None:
                variable = "AUTH_HS256_SECRET"
                key = {"hs256_secret": settings.auth_hs256_secret.get_secret_value()}
            elif settings.auth_public_key_path is not None:
                variable = "AUTH_PUBLIC_KEY_PATH"
                key = {"public_key": settings.auth_public_key_path.read_bytes()}
            elif settings.auth_jwks_path is not None:
                variable = "AUTH_JWKS_PATH"
                key = {"jwks": load_jwks(settings.auth_jwks_path.read_bytes())}
            else:
                return None
            return cls(
                **key,
                audience=settings.auth_audience,
                issuer=settings.auth_issuer,
                leeway=settings.auth_leeway,
            )
        except ValueError as error:
            raise SettingsError([f"{variable}: {error}"]) from None

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The algorithms this verifier accepts."""
        return tuple(sorted({algorithm for algorithm, _ in self._keys}))

    def verify(
        self, token: str, *, now: datetime | None = None, check_time: bool = True
    ) -> Identity:
        """Return the token's identity, or raise why it is not valid.

        Args:
            token: The encoded JWT.
            now: The time to judge ``exp``, ``nbf`` and ``iat`` by; the wall clock if omitted.
            check_time: ``False`` skips the time claims (for identity inherited from a
                call that was verified when it was made).

        Raises:
            TokenError: With the reason: malformed, algorithm not accepted, unknown key,
                bad signature, expired, not yet valid, wrong audience or issuer, or a
                missing or ill-typed claim.
        """
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify_signed(token)
            self._verified.put(token, verified)
        if check_time:
            try:
                self._check_time(verified, now or datetime.now(UTC))
            except TokenError:
                self._verified.forget(token)
                raise
        return verified.identity

    def _verify_signed(self, token: str) -> VerifiedToken:
        """Everything but the time: format, algorithm, key, signature, claims."""
        if len(self._keys) == 1:
            # One key, one algorithm: jwt.decode refuses any other, and the header is
            # read only to say which one a refused token named.
            (((algorithm, _), key),) = self._keys.items()
        else:
            header = _header_of(token)
            self._accept(header.get("alg"))
            algorithm = str(header["alg"])
            key = self._key(algorithm, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options=self._decode_options,
            )
        except jwt.InvalidAlgorithmError:
            self._accept(_header_of(token).get("alg"))
            raise TokenError(f"algorithm not accepted; this verifier accepts {algorithm}") from None
        except jwt.InvalidSignatureError:
            raise TokenError("bad signature") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenError(f"missing claim {error.claim!r}") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"wrong audience: expected {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise TokenError(f"wrong issuer: expected {self.issuer!r}") from None
        except jwt.PyJWTError as error:
            raise TokenError(f"malformed token: {error}") from None
        for claim in ("exp", "iat", "nbf"):
            value = claims.get(claim, 0)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise TokenError(f"claim {claim!r} is not a finite number")
        return VerifiedToken(
            identity=_identity(claims),
            expires=claims["exp"],
            issued=claims["iat"],
            not_before=claims.get("nbf"),
        )

    def _accept(self, algorithm: object) -> None:
        if algorithm not in self.algorithms:
            raise TokenError(
                f"algorithm {algorithm!r} is not accepted; this verifier accepts "
                f"{', '.join(self.algorithms)}"
            )

    def _configured_claims(self) -> list[str]:
        return [claim for claim, value in (("aud", self.audience), ("iss", self.issuer)) if value]

    def _key(self, algorithm: str, key_id: object) -> Any:
        if (algorithm, None) in self._keys:
            return self._keys[algorithm, None]
        if not isinstance(key_id, str) or (algorithm, key_id) not in self._keys:
            raise TokenError(f"unknown signing key {key_id!r}")
        return self._keys[algorithm, key_id]

    def _check_time(self, verified: VerifiedToken, now: datetime) -> None:
        timestamp = now.timestamp()
        leeway = self.leeway.total_seconds()
        if timestamp > verified.expires + leeway:
            raise TokenError(f"expired at {_iso(verified.expires)}")
        if verified.not_before is not None and timestamp < verified.not_before - leeway:
            raise TokenError(f"not valid before {_iso(verified.not_before)}")
        if timestamp < verified.issued - leeway:
            raise TokenError(f"issued in the future, at {_iso(verified.issued)}")


class TokenIssuer:
    """Issues tokens that a matching :class:`TokenVerifier` accepts.

    Args:
        hs256_secret: Shared secret, at least 32 bytes (HS256).
        private_key: PEM of an RSA (RS256) or P-256 (ES256) private key.
        key_id: ``kid`` header, so that verifiers with a JWKS pick the right key.
        audience: ``aud`` claim.
        issuer: ``iss`` claim.
    """

    def __init__(
        self,
        *,
        hs256_secret: str | bytes | None = None,
        private_key: str | bytes | None = None,
        key_id: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        if (hs256_secret is None) == (private_key is None):
            raise ValueError("give exactly one of hs256_secret, private_key")
        self._key: Any
        if hs256_secret is not None:
            self._key, self.algorithm = _hs256_secret(hs256_secret), "HS256"
        else:
            self._key = serialization.load_pem_private_key(
                _bytes(private_key or b""), password=None
            )
            self.algorithm = _algorithm_of(self._key.public_key(), "private_key")
        self.key_id = key_id
        self.audience = audience
        self.issuer = issuer

    def issue(
        self,
        subject: str,
        roles: Iterable[str],
        *,
        namespaces: Iterable[str] | None = None,
        ttl: Duration = timedelta(hours=1),
        now: datetime | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Return a signed token for ``subject`` with ``roles``, valid for ``ttl``.

        Args:
            subject: ``sub``: who the token speaks for.
            roles: ``roles``: what the policy lets them do.
            namespaces: ``namespaces``: restrict the token to these namespaces.
            ttl: Lifetime from ``now``, in seconds or as a timedelta.
            now: Issue time; the wall clock if omitted.
            claims: Further claims, which do not override the ones above.
        """
        issued = now or datetime.now(UTC)
        payload: dict[str, Any] = {
            **(claims or {}),
            "sub": subject,
            ROLES_CLAIM: sorted(roles),
            "iat": int(issued.timestamp()),
            "exp": int((issued + to_timedelta(ttl, "ttl")).timestamp()),
        }
        if namespaces is not None:
            payload[NAMESPACES_CLAIM] = sorted(namespaces)
        if self.audience:
            payload["aud"] = self.audience
        if self.issuer:
            payload["iss"] = self.issuer
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(payload, self._key, algorithm=self.algorithm, headers=headers)


def _header_of(token: str) -> Mapping[str, Any]:
    """The token's header, which picks the key; ``jwt.decode`` checks the whole token after.

    Decoding only the first segment, rather than the whole token as
    ``jwt.get_unverified_header`` does, spares a second parse of every token.
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenError(f"malformed token: {len(segments)} segments, not 3")
    encoded = segments[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error) as error:
        raise TokenError(f"malformed token: the header is not base64url JSON: {error}") from None
    if not isinstance(header, dict):
        raise TokenError("malformed token: the header is not a JSON object")
    return header


def _identity(claims: Mapping[str, Any]) -> Identity:
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise TokenError("claim 'sub' is not a non-empty string")
    return Identity(
        subject=subject,
        roles=_string_set(claims, ROLES_CLAIM) or frozenset(),
        namespaces=_string_set(claims, NAMESPACES_CLAIM),
        claims=MappingProxyType(dict(claims)),
    )


def _string_set(claims: Mapping[str, Any], name: str) -> frozenset[str] | None:
    if name not in claims:
        return None
    value = claims[name]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TokenError(f"claim {name!r} is not a list of strings")
    return frozenset(value)


def _hs256_secret(secret: str | bytes) -> bytes:
    secret = _bytes(secret)
    if len(secret) < MIN_HS256_SECRET_BYTES:
        raise ValueError(
            f"hs256_secret: {len(secret)} bytes; HS256 needs at least {MIN_HS256_SECRET_BYTES}"
        )
    return secret


def _algorithm_of(key: object, parameter: str) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ValueError(
        f"{parameter}: only RSA and P-256 keys are supported, not {type(key).__name__}"
    )


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def load_jwks(text: str | bytes) -> dict[str, Any]:
    """Parse a JWKS document, naming what is wrong with it."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWKS document: expected {"keys": [...]}')
    return document
