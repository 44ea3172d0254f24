"""Auth settings: the ``AUTH_*`` variables, tokens to send and ways to verify them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pydantic import FilePath, SecretStr

from shadow_sdk._settings._types import Seconds, SettingsPart


class AuthSettings(SettingsPart):
    """The token a client sends, and how a worker verifies and authorizes tokens.

    Which of the ways to verify tokens is configured is checked here;
    :meth:`TokenVerifier.from_settings <shadow_sdk.auth.TokenVerifier.from_settings>`
    and :meth:`Policy.from_settings <shadow_sdk.auth.Policy.from_settings>` read
    and check the keys and the policy when they are needed.
    """

    auth_hs256_secret: SecretStr | None = None
    """Shared secret that signs and verifies HS256 tokens (local development)."""
    auth_public_key_path: FilePath | None = None
    """PEM public key (RSA or P-256) that verifies RS256 or ES256 tokens."""
    auth_jwks_path: FilePath | None = None
    """JWKS document of the public keys that verify tokens, chosen by ``kid``."""
    auth_private_key_path: FilePath | None = None
    """PEM private key that ``shadow token`` signs RS256 or ES256 tokens with."""
    auth_audience: str | None = None
    """Required ``aud`` claim."""
    auth_issuer: str | None = None
    """Required ``iss`` claim."""
    auth_leeway: Seconds = timedelta(seconds=30)
    """Clock skew tolerated when judging token times."""
    auth_policy_path: FilePath | None = None
    """YAML policy of roles and their grants; unset: admin, operator and viewer."""
    auth_required: bool = False
    """Refuse to start a worker that cannot verify tokens (clients need only a token)."""
    auth_token: SecretStr | None = None
    """Token a client sends with its calls."""
    auth_token_file: FilePath | None = None
    """File holding the token a client sends, read again for every call."""

    def _problems(self) -> list[str]:
        problems = []
        if self.auth_token and self.auth_token_file:
            problems.append("AUTH_TOKEN and AUTH_TOKEN_FILE are both set; keep one")
        verifiers = [name for name, value in (("AUTH_HS256_SECRET", self.auth_hs256_secret),
                     ("AUTH_PUBLIC_KEY_PATH", self.auth_public_key_path),
                     ("AUTH_JWKS_PATH", self.auth_jwks_path)) if value]  # fmt: skip
        if len(verifiers) > 1:
            problems.append(f"{' and '.join(verifiers)} are all set; tokens are verified one way")
        return [*super()._problems(), *problems]

    def auth_token_source(self) -> Callable[[], str | None] | str | None:
        """The token a client sends: fixed, read from a file on every call, or none."""
        if self.auth_token is not None:
            return self.auth_token.get_secret_value()
        if self.auth_token_file is not None:
            path = self.auth_token_file
            return lambda: path.read_text().strip() or None
        return None
