"""The codec server: Temporal's remote codec protocol, behind authentication and CORS."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

import google.protobuf.json_format
import temporalio.api.common.v1
import temporalio.converter
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from shadow_sdk._codec_values import MAX_PAYLOADS
from shadow_sdk._exceptions import AuthError, CodecError, CodecLimitError, TokenError
from shadow_sdk.auth import Authorizer, Identity, Policy, redact_tokens
from shadow_sdk.codec._compression import ENCODING as COMPRESSED

logger = logging.getLogger("shadow_sdk.codec_server")

_OPERATIONS = {"encode": "payload:encode", "decode": "payload:decode"}
_ALLOWED_HEADERS = "authorization, content-type, x-namespace"
_PREFLIGHT_MAX_AGE = "600"
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_LOGGED_ORIGINS = 64  # Refused origins logged by name; attacker-chosen, so not unbounded.
_DECODER = json.JSONDecoder()

Payload = temporalio.api.common.v1.Payload

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
    max_payloads: int = MAX_PAYLOADS,
    workers: int = 2,
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
    the permission; both are logged with the reason, never with the token.
    Other refusals: 400 for malformed JSON, a payload the codec cannot process
    (the message names the key and the reason), or a payload given to
    ``/encode`` already compressed; 404 for other paths or an unknown
    namespace, 405 for other methods, 413 for a body over ``max_body_bytes``,
    more than ``max_payloads`` payloads, or payloads that decode to more bytes
    than the codec allows (:class:`~shadow_sdk.CodecLimitError`). CORS headers
    are sent only to ``cors_origins``, on preflight and on every response,
    errors included, with credentials allowed; a request from another origin is
    logged (the first few of each).

    Parsing, decoding and encoding happen in a pool of ``workers`` threads, not
    on the event loop: a large request neither delays the others' answers nor
    runs more than ``workers`` at a time. ``/encode`` refuses payloads marked
    compressed (``binary/zlib``): the codec compresses by itself, and a payload
    compressed by the caller would be encrypted as is and inflated by every
    later decode, a zlib bomb sealed with a valid key.

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
        max_payloads: Most payloads in one request.
        workers: Requests processed at the same time; others wait their turn.
    """
    lookup: CodecLookup = codecs.get if isinstance(codecs, Mapping) else codecs
    service = _CodecService(
        lookup,
        authorizer=authorizer,
        policy=policy or (authorizer.policy if authorizer is not None else Policy.default()),
        anonymous_role=anonymous_role,
        max_body_bytes=max_body_bytes,
        max_payloads=max_payloads,
        workers=workers,
    )
    app = web.Application(
        middlewares=[_cors(frozenset(origin.rstrip("/") for origin in cors_origins))],
        client_max_size=max_body_bytes,
    )
    app.router.add_route("*", "/{tail:.*}", service.handle)
    app.on_cleanup.append(service.close)
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
        max_payloads: int,
        workers: int,
    ) -> None:
        self.lookup = lookup
        self.authorizer = authorizer
        self.policy = policy
        self.anonymous_role = anonymous_role
        self.max_body_bytes = max_body_bytes
        self.max_payloads = max_payloads
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="codec-server"
        )

    async def close(self, app: web.Application) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

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
            body = await self._body(request)
            loop = asyncio.get_running_loop()
            count, text = await loop.run_in_executor(
                self.executor, self._process, operation, codec, body
            )
        except _Refusal as refusal:
            if refusal.status == 401:
                logger.warning(
                    "codec server refused %s %r from %s: 401 %s",
                    request.method,
                    request.path,
                    request.remote,
                    refusal.message,
                )
            return _json_error(refusal.status, refusal.message, refusal.headers)
        logger.debug("%s %s %d payloads for %s", operation, namespace, count, identity.subject)
        return web.json_response(text=text)

    def _process(
        self, operation: str, codec: temporalio.converter.PayloadCodec, body: bytes
    ) -> tuple[int, str]:
        """Parse, encode or decode, and serialize: the work done in the pool's threads."""
        payloads = _parse_payloads(body, self.max_payloads)
        try:
            if operation == "encode":
                for index, payload in enumerate(payloads):
                    if payload.metadata.get("encoding") == COMPRESSED:
                        raise _Refusal(
                            400,
                            f"payload {index} is already compressed (binary/zlib): send "
                            "payloads as a client would; the codec compresses by itself",
                        )
                result = _run(codec, "encode", payloads)
            else:
                result = redact_tokens(_run(codec, "decode", payloads))
        except CodecLimitError as error:
            raise _Refusal(413, str(error)) from None
        except CodecError as error:
            raise _Refusal(400, str(error)) from None
        text = google.protobuf.json_format.MessageToJson(
            temporalio.api.common.v1.Payloads(payloads=result)
        )
        return len(result), text

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

    async def _body(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _Refusal(413, f"body of {length} bytes, over the limit of {self.max_body_bytes}")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Refusal(413, f"body over the limit of {self.max_body_bytes} bytes") from None


def _run(
    codec: temporalio.converter.PayloadCodec, operation: str, payloads: list[Payload]
) -> list[Payload]:
    """``codec.encode`` or ``codec.decode`` in this thread: its ``_sync`` variant if it has one."""
    sync: Callable[[list[Payload]], list[Payload]] | None = getattr(
        codec, f"{operation}_sync", None
    )
    if sync is not None:
        return sync(payloads)
    method: Callable[[list[Payload]], Awaitable[list[Payload]]] = getattr(codec, operation)
    return asyncio.run(_awaited(method(payloads)))


async def _awaited(result: Awaitable[list[Payload]]) -> list[Payload]:
    return await result


def _parse_payloads(body: bytes, max_payloads: int) -> list[Payload]:
    """Read protobuf-JSON ``Payloads`` one payload at a time, refusing past ``max_payloads``.

    Parsing the whole body at once would build every payload (millions of empty
    ones fit in a few megabytes) before they could be counted.
    """
    payloads: list[Payload] = []
    try:
        text = body.decode()
        index = _skip(text, 0)
        if text[index : index + 1] != "{":
            raise ValueError("expected an object")
        index = _skip(text, index + 1)
        if text[index : index + 1] != "}":
            key, index = _DECODER.raw_decode(text, index)
            index = _skip(text, index)
            if key != "payloads" or text[index : index + 1] != ":":
                raise ValueError('expected {"payloads": [...]}')
            index = _skip(text, index + 1)
            if text.startswith("null", index):
                index = _skip(text, index + 4)
            else:
                index = _parse_list(text, index, payloads, max_payloads)
            if text[index : index + 1] != "}":
                raise ValueError("expected the end of the object")
        if _skip(text, index + 1) != len(text):
            raise ValueError("unexpected data after the object")
    except (ValueError, google.protobuf.json_format.ParseError) as error:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors.
        raise _Refusal(400, f"body is not protobuf-JSON Payloads: {error}") from None
    return payloads


def _parse_list(text: str, index: int, payloads: list[Payload], max_payloads: int) -> int:
    """Append the payloads of the JSON list at ``index``; return the index after it."""
    if text[index : index + 1] != "[":
        raise ValueError("expected a list of payloads")
    index = _skip(text, index + 1)
    while text[index : index + 1] != "]":
        if payloads:
            if text[index : index + 1] != ",":
                raise ValueError("expected ',' or ']' between payloads")
            index = _skip(text, index + 1)
        if len(payloads) == max_payloads:
            raise _Refusal(
                413,
                f"more than {max_payloads} payloads in one request "
                f"(CODEC_MAX_PAYLOADS={max_payloads})",
            )
        item, index = _DECODER.raw_decode(text, index)
        payloads.append(google.protobuf.json_format.ParseDict(item, Payload()))
        index = _skip(text, index)
    return _skip(text, index + 1)


def _skip(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return index if match is None else match.end()


def _cors(allowed_origins: frozenset[str]) -> Middleware:
    """CORS for the allowed Web UI origins on every response, preflight and errors included."""
    refused: set[str] = set()

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        allowed = origin is not None and origin in allowed_origins
        if (
            origin is not None
            and not allowed
            and origin not in refused
            and len(refused) < _LOGGED_ORIGINS
        ):
            refused.add(origin)
            logger.warning(
                "codec server: origin %r is not in CODEC_SERVER_CORS_ORIGINS (%s); "
                "browsers at that address cannot read its answers. The origin must "
                "match the Web UI's address exactly: scheme, host name and port",
                origin,
                ", ".join(sorted(allowed_origins)) or "none",
            )
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
