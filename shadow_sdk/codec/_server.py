"""The codec server: Temporal's remote codec protocol, behind authentication and CORS."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

import google.protobuf.json_format
import temporalio.api.common.v1
import temporalio.converter
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from shadow_sdk._exceptions import AuthError, CodecError, TokenError
from shadow_sdk.auth import Authorizer, Identity, Policy, redact_tokens

logger = logging.getLogger("shadow_sdk.codec_server")

_OPERATIONS = {"encode": "payload:encode", "decode": "payload:decode"}
_ALLOWED_HEADERS = "authorization, content-type, x-namespace"
_PREFLIGHT_MAX_AGE = "600"

CodecLookup = Callable[[str], temporalio.converter.PayloadCodec | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_codec_server(
    codecs: Mapping[str, temporalio.converter.PayloadCodec] | CodecLookup,
    *,
    authorizer: Authorizer | None,
    policy: Policy | None = None,
    anonymous_role: str | None = None,
    cors_origins: Sequence[str] = (),
    max_body_bytes: int = 8 * 1024 * 1024,
) -> web.Application:
    """An aiohttp application that serves Temporal's codec server protocol.

    ``POST .../encode`` and ``POST .../decode`` take and return protobuf-JSON
    ``Payloads`` (``{"payloads": [...]}``); the last path segment picks the
    operation, so the server can sit under any prefix. The namespace comes from
    the ``X-Namespace`` header (the Web UI and CLI send it) or, without one,
    from the path segment before the operation (``/{namespace}/decode``); each
    namespace has its own codec and keys.

    Decoded auth tokens (from workflow headers) are replaced by a placeholder:
    whoever may read payloads must not be able to act as someone else.

    Every request needs a bearer token whose roles grant ``payload:decode`` or
    ``payload:encode`` in that namespace: 401 without a valid token, 403 without
    the permission. Other refusals: 400 for malformed JSON or a payload the codec
    cannot process (the message names the key and the reason), 404 for other
    paths or an unknown namespace, 405 for other methods, 413 for a body over
    ``max_body_bytes``. CORS headers are sent only to ``cors_origins``, on
    preflight and on every response, errors included, with credentials allowed.

    Args:
        codecs: Codec by namespace, or a function returning it (``None`` if unknown).
        authorizer: Verifies tokens and checks the policy; ``None`` refuses every
            request that is not covered by ``anonymous_role``.
        policy: The policy, when it is not the authorizer's (without an authorizer,
            the roles of anonymous requests); the default roles otherwise.
        anonymous_role: Role of requests without a token. For a local Web UI, which
            sends none; requests must then name a loopback host (``Host`` header),
            which defeats DNS rebinding. Never expose such a server beyond the machine.
        cors_origins: Origins (``scheme://host:port``) of Web UIs allowed to call.
        max_body_bytes: Largest request body read.
    """
    lookup: CodecLookup = codecs.get if isinstance(codecs, Mapping) else codecs
    service = _CodecService(
        lookup,
        authorizer=authorizer,
        policy=policy or (authorizer.policy if authorizer is not None else Policy.default()),
        anonymous_role=anonymous_role,
        max_body_bytes=max_body_bytes,
    )
    app = web.Application(
        middlewares=[_cors(frozenset(origin.rstrip("/") for origin in cors_origins))],
        client_max_size=max_body_bytes,
    )
    app.router.add_route("*", "/{tail:.*}", service.handle)
    return app


class _Refusal(Exception):  # Not a failure of the server: its answer to the client.
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class _CodecService:
    def __init__(
        self,
        lookup: CodecLookup,
        *,
        authorizer: Authorizer | None,
        policy: Policy,
        anonymous_role: str | None,
        max_body_bytes: int,
    ) -> None:
        self.lookup = lookup
        self.authorizer = authorizer
        self.policy = policy
        self.anonymous_role = anonymous_role
        self.max_body_bytes = max_body_bytes

    async def handle(self, request: web.Request) -> web.Response:
        try:
            operation, namespace = _route(request)
            if self.anonymous_role is not None and not _is_loopback_host(request.host):
                raise _Refusal(403, f"host {request.host!r} is not a loopback name")
            identity = self._identity(request)
            self._authorize(identity, _OPERATIONS[operation], namespace)
            codec = self.lookup(namespace)
            if codec is None:
                raise _Refusal(404, f"namespace {namespace!r} is not served by this codec server")
            payloads = await self._payloads(request)
            try:
                if operation == "encode":
                    result = await codec.encode(payloads)
                else:
                    result = redact_tokens(await codec.decode(payloads))
            except CodecError as error:
                raise _Refusal(400, str(error)) from None
        except _Refusal as refusal:
            return _json_error(refusal.status, refusal.message, refusal.headers)
        logger.debug(
            "%s %s %d payloads for %s", operation, namespace, len(result), identity.subject
        )
        text = google.protobuf.json_format.MessageToJson(
            temporalio.api.common.v1.Payloads(payloads=result)
        )
        return web.json_response(text=text)

    def _identity(self, request: web.Request) -> Identity:
        authorization = request.headers.get(hdrs.AUTHORIZATION)
        if authorization is None:
            if self.anonymous_role is not None:
                return Identity("anonymous", frozenset({self.anonymous_role}))
            raise _unauthorized("no bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header is not 'Bearer <token>'")
        if self.authorizer is None:
            raise _unauthorized("this codec server accepts no tokens")
        try:
            return self.authorizer.verifier.verify(token.strip(), now=datetime.now(UTC))
        except TokenError as error:
            raise _unauthorized(error.reason) from None

    def _authorize(self, identity: Identity, permission: str, namespace: str) -> None:
        try:
            self.policy.check(identity, permission, namespace=namespace)
        except AuthError as error:
            logger.warning("codec server refused %s: %s", permission, error)
            raise _Refusal(403, str(error)) from None

    async def _payloads(self, request: web.Request) -> list[temporalio.api.common.v1.Payload]:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _Refusal(413, f"body of {length} bytes, over the limit of {self.max_body_bytes}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Refusal(413, f"body over the limit of {self.max_body_bytes} bytes") from None
        try:
            parsed = google.protobuf.json_format.Parse(body, temporalio.api.common.v1.Payloads())
        except google.protobuf.json_format.ParseError as error:
            raise _Refusal(400, f"body is not protobuf-JSON Payloads: {error}") from None
        return list(parsed.payloads)


def _cors(allowed_origins: frozenset[str]) -> Middleware:
    """CORS for the allowed Web UI origins on every response, preflight and errors included."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        allowed = origin is not None and origin in allowed_origins
        response: web.StreamResponse
        if request.method == hdrs.METH_OPTIONS:
            response = web.Response(status=204 if allowed else 403)
            if allowed:
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "POST"
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = _ALLOWED_HEADERS
                response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = _PREFLIGHT_MAX_AGE
        else:
            try:
                response = await handler(request)
            except web.HTTPException as error:
                response = _json_error(error.status, error.reason, error.headers)
        response.headers[hdrs.VARY] = hdrs.ORIGIN
        if allowed and origin is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        return response

    return cors


def _route(request: web.Request) -> tuple[str, str]:
    """The operation (last path segment) and the namespace of a request."""
    segments = [segment for segment in request.path.split("/") if segment]
    operation = segments[-1] if segments else ""
    if operation not in _OPERATIONS:
        raise _Refusal(404, f"no such endpoint {request.path!r}; use .../encode or .../decode")
    if request.method != hdrs.METH_POST:
        raise _Refusal(405, f"{request.method} not allowed", {hdrs.ALLOW: "POST, OPTIONS"})
    return operation, _namespace(request, segments)


def _namespace(request: web.Request, segments: list[str]) -> str:
    in_path = segments[-2] if len(segments) > 1 else None
    namespace = request.headers.get("X-Namespace") or in_path
    if not namespace:
        raise _Refusal(400, "no namespace: send X-Namespace or use /{namespace}/decode")
    return namespace


def _is_loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.strip("[]") in {"127.0.0.1", "localhost", "::1"}


def _unauthorized(reason: str) -> _Refusal:
    return _Refusal(401, reason, {hdrs.WWW_AUTHENTICATE: 'Bearer realm="codec"'})


def _json_error(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
