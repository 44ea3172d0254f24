"""Token authentication and role-based authorization for Temporal calls.

A caller sends a JWT (:class:`TokenIssuer` makes them) in a Temporal header; a
worker verifies it (:class:`TokenVerifier`), asks a :class:`Policy` whether the
token's roles may make the call, and only then lets workflow code see it. The
:class:`AuthInterceptor` does both sides and is installed by
:class:`~shadow_sdk.ShadowPlugin`.
"""

from shadow_sdk.auth._interceptor import (
    HEADER,
    PERMISSION_DENIED,
    AuthInterceptor,
    Authorizer,
    AuthWorkflowInboundInterceptor,
    current_identity,
    redact_tokens,
)
from shadow_sdk.auth._policy import DEFAULT_ROLES, PERMISSIONS, Grant, Policy
from shadow_sdk.auth._tokens import Identity, TokenIssuer, TokenVerifier, load_jwks

__all__ = [
    "DEFAULT_ROLES",
    "HEADER",
    "PERMISSIONS",
    "PERMISSION_DENIED",
    "AuthInterceptor",
    "AuthWorkflowInboundInterceptor",
    "Authorizer",
    "Grant",
    "Identity",
    "Policy",
    "TokenIssuer",
    "TokenVerifier",
    "current_identity",
    "load_jwks",
    "redact_tokens",
]
