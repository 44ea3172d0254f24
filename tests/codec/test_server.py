"""The codec server over real HTTP on loopback: protocol, authentication, CORS, limits."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from shadow_sdk.auth import AuthInterceptor, Authorizer, Policy, TokenIssuer, TokenVerifier
from shadow_sdk.codec import CompressionCodec, EncryptionCodec, KeyRing, create_codec_server

SECRET = "codec-server-test-secret-32-bytes!"
ISSUER = TokenIssuer(hs256_secret=SECRET)
UI_ORIGIN = "http://127.0.0.1:8233"
CODECS = {
    "orders": EncryptionCodec(KeyRing({"orders-key": bytes(32)})),
    "billing": EncryptionCodec(KeyRing({"billing-key": bytes(range(32))})),
}
FOREIGN_TOKEN = TokenIssuer(hs256_secret="x" * 32).issue("mallory", ["admin"])
UNSIGNED_TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJldmUiLCJyb2xlcyI6WyJhZG1pbiJdfQ."  # alg: none
PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"card": "4111"}')

Post = Callable[..., Any]
ORDERS = {"X-Namespace": "orders"}


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def parse(text: str) -> list[Payload]:
    return list(json_format.Parse(text, Payloads()).payloads)


def bearer(*roles: str, namespaces: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {ISSUER.issue('alice', roles, namespaces=namespaces)}"}


async def serve(**options: Any) -> AsyncIterator[Post]:
    options.setdefault(
        "authorizer", Authorizer(TokenVerifier(hs256_secret=SECRET), Policy.default())
    )
    options.setdefault("cors_origins", [UI_ORIGIN])
    server = TestServer(create_codec_server(CODECS, **options), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:

        async def request(path: str, data: str = "", method: str = "POST", **kwargs: Any) -> Any:
            async with session.request(method, server.make_url(path), data=data, **kwargs) as reply:
                reply.text_body = await reply.text()
                return reply

        yield request
    await server.close()


@pytest.fixture
async def post() -> AsyncIterator[Post]:
    async for request in serve():
        yield request


@pytest.fixture
async def post_with_anonymous_viewer() -> AsyncIterator[Post]:
    async for request in serve(anonymous_role="viewer"):
        yield request


async def encrypted(namespace: str = "orders") -> Payload:
    return (await CODECS[namespace].encode([PLAIN]))[0]


async def test_decodes_for_an_authorized_caller(post: Post) -> None:
    """POST /decode with a viewer token returns the plaintext payloads."""
    reply = await post(
        "/decode?preserveStorageRefs=true",
        body(await encrypted(), PLAIN),
        headers={"X-Namespace": "orders", **bearer("viewer")},
    )

    assert reply.status == 200
    assert parse(reply.text_body) == [PLAIN, PLAIN]


async def test_encodes_for_a_caller_allowed_to(post: Post) -> None:
    """POST /encode with an operator token returns payloads the namespace's codec decodes."""
    reply = await post(
        "/encode", body(PLAIN), headers={"X-Namespace": "orders", **bearer("operator")}
    )

    assert reply.status == 200
    [sealed] = parse(reply.text_body)
    assert sealed.metadata["encryption-key-id"] == b"orders-key"
    assert await CODECS["orders"].decode([sealed]) == [PLAIN]


async def test_the_namespace_may_come_from_the_path(post: Post) -> None:
    """/{namespace}/decode serves that namespace, for the CLI's endpoint templates."""
    reply = await post(
        "/codec/billing/decode", body(await encrypted("billing")), headers=bearer("viewer")
    )

    assert reply.status == 200
    assert parse(reply.text_body) == [PLAIN]


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "no bearer token"),
        ({"Authorization": "Basic YWxpY2U6cHc="}, 401,
         "the Authorization header is not 'Bearer <token>'"),
        ({"Authorization": "Bearer not.a.token"}, 401, "malformed token"),
        ({"Authorization": "Bearer " + FOREIGN_TOKEN}, 401, "bad signature"),
        ({"Authorization": "Bearer " + UNSIGNED_TOKEN}, 401, "algorithm 'none' is not accepted"),
    ],
    ids=["no token", "basic auth", "garbage", "foreign signature", "alg none"],
)  # fmt: skip
async def test_refuses_without_a_valid_token(
    post: Post, headers: dict[str, str], status: int, error: str
) -> None:
    """401 with a WWW-Authenticate challenge and the reason; nothing is decoded."""
    reply = await post(
        "/decode", body(await encrypted()), headers={"X-Namespace": "orders", **headers}
    )

    assert reply.status == status
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="codec"'
    assert json.loads(reply.text_body)["error"].startswith(error)
    assert "4111" not in reply.text_body


async def test_refuses_a_role_without_the_permission(post: Post) -> None:
    """A viewer may decode but not encode: 403."""
    reply = await post(
        "/encode", body(PLAIN), headers={"X-Namespace": "orders", **bearer("viewer")}
    )

    assert reply.status == 403
    assert json.loads(reply.text_body) == {
        "error": "'alice' (viewer) may not payload:encode on namespace 'orders'"
    }


async def test_refuses_a_token_for_another_namespace(post: Post) -> None:
    """A token restricted to orders cannot read billing's payloads."""
    reply = await post(
        "/decode",
        body(await encrypted("billing")),
        headers={"X-Namespace": "billing", **bearer("admin", namespaces=["orders"])},
    )

    assert reply.status == 403
    assert json.loads(reply.text_body) == {
        "error": "the token of 'alice' is not valid for namespace 'billing'"
    }


async def test_one_namespace_key_does_not_open_another(post: Post) -> None:
    """A billing payload sent as orders fails with the key it names."""
    reply = await post(
        "/decode",
        body(await encrypted("billing")),
        headers={"X-Namespace": "orders", **bearer("viewer")},
    )

    assert reply.status == 400
    assert json.loads(reply.text_body) == {
        "error": "cannot decrypt payload encrypted with key 'billing-key': no such key; "
        "the key ring has orders-key"
    }


@pytest.mark.parametrize(
    ("path", "data", "headers", "status", "error"),
    [
        ("/decode", "{not json", ORDERS, 400, "body is not protobuf-JSON Payloads"),
        ("/decode", '{"payloads": "x"}', ORDERS, 400, "body is not protobuf-JSON"),
        ("/decode", "{}", {}, 400, "no namespace: send X-Namespace"),
        ("/decode", "{}", {"X-Namespace": "marketing"}, 404,
         "namespace 'marketing' is not served by this codec server"),
        ("/transcode", "{}", {"X-Namespace": "orders"}, 404, "no such endpoint '/transcode'"),
    ],
)  # fmt: skip
async def test_bad_requests_are_named(
    post: Post, path: str, data: str, headers: dict[str, str], status: int, error: str
) -> None:
    """Malformed bodies, missing or conflicting namespaces and unknown routes get clear errors."""
    reply = await post(path, data, headers={**headers, **bearer("admin")})

    assert reply.status == status
    assert json.loads(reply.text_body)["error"].startswith(error)


async def test_other_methods_are_not_allowed(post: Post) -> None:
    """GET on an endpoint is 405 and says what is allowed."""
    reply = await post("/decode", method="GET", headers=bearer("admin"))

    assert reply.status == 405
    assert reply.headers["Allow"] == "POST, OPTIONS"


async def test_an_oversized_body_is_refused() -> None:
    """A body over the limit is 413, whether or not it announces its length."""
    async for post in serve(max_body_bytes=1024):
        announced = await post(
            "/decode", "x" * 2048, headers={"X-Namespace": "orders", **bearer("admin")}
        )

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 512

        streamed = await post(
            "/decode", chunks(), headers={"X-Namespace": "orders", **bearer("admin")}
        )  # type: ignore[arg-type]

        assert announced.status == 413
        assert streamed.status == 413
        assert "over the limit of 1024" in json.loads(streamed.text_body)["error"]


async def test_cors_preflight_only_for_configured_origins(post: Post) -> None:
    """The Web UI's origin gets a preflight answer with credentials; another origin does not."""
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-namespace",
    }

    allowed = await post("/decode", method="OPTIONS", headers={"Origin": UI_ORIGIN, **preflight})
    foreign = await post(
        "/decode", method="OPTIONS", headers={"Origin": "https://evil.example", **preflight}
    )

    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert allowed.headers["Access-Control-Allow-Methods"] == "POST"
    assert "x-namespace" in allowed.headers["Access-Control-Allow-Headers"]
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"]
    assert foreign.status == 403
    assert "Access-Control-Allow-Origin" not in foreign.headers


async def test_cors_headers_are_on_errors_too(post: Post) -> None:
    """A 401 to the Web UI carries CORS headers, so the UI can show it; other origins get none."""
    for_ui = await post("/decode", "{}", headers={"Origin": UI_ORIGIN, "X-Namespace": "orders"})
    for_foreign = await post(
        "/decode",
        "{}",
        headers={"Origin": "https://evil.example", "X-Namespace": "orders", **bearer("admin")},
    )

    assert for_ui.status == 401
    assert for_ui.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert for_ui.headers["Vary"] == "Origin"
    assert for_foreign.status == 200  # Not a browser: CORS does not stop it, the token does.
    assert "Access-Control-Allow-Origin" not in for_foreign.headers


async def test_anonymous_role_lets_a_local_ui_decode_but_no_more(
    post_with_anonymous_viewer: Post,
) -> None:
    """With anonymous_role=viewer, requests without a token may decode, not encode."""
    decoded = await post_with_anonymous_viewer(
        "/decode", body(await encrypted()), headers={"X-Namespace": "orders"}
    )
    encoded = await post_with_anonymous_viewer(
        "/encode", body(PLAIN), headers={"X-Namespace": "orders"}
    )
    forged = await post_with_anonymous_viewer(
        "/decode",
        body(await encrypted()),
        headers={"X-Namespace": "orders", "Authorization": "Bearer junk"},
    )

    assert decoded.status == 200
    assert parse(decoded.text_body) == [PLAIN]
    assert encoded.status == 403
    assert forged.status == 401  # A bad token is not silently downgraded to anonymous.


async def test_metadata_in_json_is_base64(post: Post) -> None:
    """The wire format is protobuf-JSON: metadata values and data are base64."""
    reply = await post(
        "/decode", body(await encrypted()), headers={"X-Namespace": "orders", **bearer("viewer")}
    )

    raw = json.loads(reply.text_body)["payloads"][0]
    assert base64.b64decode(raw["metadata"]["encoding"]) == b"json/plain"
    assert base64.b64decode(raw["data"]) == b'{"card": "4111"}'


async def test_decoded_tokens_are_redacted(post: Post) -> None:
    """A token found in a workflow header is never shown to whoever may read payloads."""
    token_header = AuthInterceptor(token=ISSUER.issue("admin-user", ["admin"])).token_payload()
    assert token_header is not None
    sealed = await CODECS["orders"].encode([token_header, PLAIN])

    reply = await post(
        "/decode", body(*sealed), headers={"X-Namespace": "orders", **bearer("viewer")}
    )

    [redacted, plain] = parse(reply.text_body)
    assert json.loads(redacted.data) == "<auth token redacted>"
    assert plain == PLAIN
    assert "admin-user" not in reply.text_body


async def test_x_namespace_wins_over_the_path_under_a_prefix(post: Post) -> None:
    """Mounted under /codec, the header names the namespace and the prefix is not one."""
    reply = await post(
        "/codec/decode",
        body(await encrypted("billing")),
        headers={"X-Namespace": "billing", **bearer("viewer")},
    )

    assert reply.status == 200
    assert parse(reply.text_body) == [PLAIN]


async def test_anonymous_mode_refuses_foreign_host_names(post_with_anonymous_viewer: Post) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own host name, and is refused."""
    reply = await post_with_anonymous_viewer(
        "/decode",
        body(await encrypted()),
        headers={"X-Namespace": "orders", "Host": "attacker.example:8081"},
    )

    assert reply.status == 403
    assert json.loads(reply.text_body) == {
        "error": "host 'attacker.example:8081' is not a loopback name"
    }


async def test_the_policy_may_differ_from_the_verifiers() -> None:
    """A policy given on its own decides, e.g. for anonymous requests without a verifier."""
    policy = Policy({"viewer": []})
    async for post in serve(authorizer=None, policy=policy, anonymous_role="viewer"):
        reply = await post("/decode", body(await encrypted()), headers={"X-Namespace": "orders"})

        assert reply.status == 403


async def test_too_many_payloads_are_refused_before_they_are_all_read() -> None:
    """Millions of empty payloads fit in a small body; past max_payloads the answer is 413."""
    async for post in serve(max_payloads=1000):
        many = '{"payloads": [' + ",".join(["{}"] * 200_000) + "]}"
        refused = await post("/decode", many, headers={**ORDERS, **bearer("viewer")})
        allowed = await post(
            "/decode", body(*[PLAIN] * 1000), headers={**ORDERS, **bearer("viewer")}
        )

        assert refused.status == 413
        assert json.loads(refused.text_body)["error"] == (
            "more than 1000 payloads in one request (CODEC_MAX_PAYLOADS=1000)"
        )
        assert allowed.status == 200
        assert len(parse(allowed.text_body)) == 1000


async def test_payloads_decoding_past_the_budget_are_refused() -> None:
    """Sealed zlib payloads, each within the per-payload cap, past the request's budget: 413."""
    keys = KeyRing({"orders-key": bytes(32)})
    sealer = EncryptionCodec(keys, compression=CompressionCodec(threshold=0))
    sealed = await sealer.encode([Payload(data=bytes(4 << 20))] * 5)
    bounded = EncryptionCodec(
        keys, compression=CompressionCodec(threshold=None), max_decoded_bytes=16 << 20
    )
    server = TestServer(
        create_codec_server({"orders": bounded}, authorizer=None, anonymous_role="viewer"),
        host="127.0.0.1",
    )
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            reply = await session.post(
                server.make_url("/decode"), data=body(*sealed), headers=ORDERS
            )
            error = (await reply.json())["error"]
    finally:
        await server.close()

    assert reply.status == 413
    assert error == (
        "cannot decode payloads: more than 16777216 bytes decoded at once "
        "(CODEC_MAX_DECODED_BYTES=16777216)"
    )


async def test_encode_refuses_payloads_already_compressed(post: Post) -> None:
    """Compressed by the caller, a payload would be sealed as is and inflated by every decode."""
    bomb = Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(bytes(1 << 20)))

    reply = await post("/encode", body(PLAIN, bomb), headers={**ORDERS, **bearer("operator")})

    assert reply.status == 400
    assert json.loads(reply.text_body)["error"].startswith(
        "payload 1 is already compressed (binary/zlib)"
    )


class HoldingCodec(EncryptionCodec):
    """An EncryptionCodec that holds a large request's decode until a small one went through.

    Were requests decoded on the event loop, the small one could not even be read
    while the large one is held: the hold would run out, with ``small_first`` false.
    """

    def __init__(self, keys: KeyRing) -> None:
        super().__init__(keys)
        self.large_started = threading.Event()
        self.small_decoded = threading.Event()
        self.small_first = False

    def decode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        payloads = list(payloads)
        if len(payloads) > 1:
            self.large_started.set()
            self.small_first = self.small_decoded.wait(timeout=20)
        else:
            self.small_decoded.set()
        return super().decode_sync(payloads)


async def test_a_small_request_is_answered_while_a_large_one_is_decoded() -> None:
    """Decoding runs in threads: a large request does not hold the others up."""
    codec = HoldingCodec(KeyRing({"orders-key": bytes(32)}))
    sealed = await codec.encode([Payload(data=bytes(1024))] * 1000)
    [one] = await codec.encode([PLAIN])
    server = TestServer(
        create_codec_server({"orders": codec}, authorizer=None, anonymous_role="viewer"),
        host="127.0.0.1",
    )
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:

            async def decode(payloads: list[Payload]) -> list[Payload]:
                url = server.make_url("/decode")
                data = io.BytesIO(body(*payloads).encode())
                async with session.post(url, data=data, headers=ORDERS) as reply:
                    assert reply.status == 200
                    return parse(await reply.text())

            large = asyncio.create_task(decode(sealed))
            async with asyncio.timeout(30):
                while not codec.large_started.is_set():
                    await asyncio.sleep(0.001)
            small = await decode([one])
            large_done_first = large.done()
            assert len(await large) == 1000
    finally:
        await server.close()

    assert small == [PLAIN]
    assert codec.small_first
    assert not large_done_first


async def test_refusals_are_logged_without_the_token(
    post: Post, caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 says why in the log; a request from an origin not configured is logged too."""
    forged = FOREIGN_TOKEN
    await post(
        "/decode",
        "{}",
        headers={**ORDERS, "Authorization": f"Bearer {forged}", "Origin": "http://localhost:8233"},
    )

    messages = [record.getMessage() for record in caplog.records]
    assert any(
        "codec server refused POST '/decode' from 127.0.0.1: 401" in message for message in messages
    ), messages
    assert any(
        "origin 'http://localhost:8233' is not in CODEC_SERVER_CORS_ORIGINS "
        "(http://127.0.0.1:8233)" in message
        for message in messages
    ), messages
    assert forged not in caplog.text
    assert forged.split(".")[2] not in caplog.text
