"""Keys and tokens made for one test session, so that tests encrypt and authorize for real."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from shadow_sdk.auth._tokens import TokenIssuer

TOKEN_LIFETIME = timedelta(hours=12)
"""Long enough for any test session; tokens of other lifetimes come from ``issuer``."""


@dataclass(frozen=True)
class Credentials:
    """An encryption key and a token secret that exist for one test session only.

    Attributes:
        codec_keys: ``CODEC_KEYS``: one AES-256 key, by its id.
        hs256_secret: ``AUTH_HS256_SECRET``: what tokens are signed and verified with.
        issuer: Issues tokens signed with ``hs256_secret``.
    """

    codec_keys: dict[str, str]
    hs256_secret: str
    issuer: TokenIssuer = field(repr=False)

    @classmethod
    def generate(cls) -> Credentials:
        """Random credentials, never written anywhere."""
        secret = secrets.token_urlsafe(32)
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        return cls({"test": key}, secret, TokenIssuer(hs256_secret=secret))

    def token(self, subject: str, *roles: str) -> str:
        """A token for ``subject`` with ``roles``, valid for the session."""
        return self.issuer.issue(subject, roles, ttl=TOKEN_LIFETIME)

    def codec_keys_json(self) -> str:
        """``codec_keys`` as the value of ``CODEC_KEYS``."""
        return json.dumps(self.codec_keys)
