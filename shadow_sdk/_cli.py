"""shadow: keys, tokens, the codec server, and offline decoding of workflow histories.

    shadow keygen [--id ID] [--dir DIR]
    shadow token --subject alice --role operator [--namespace orders] [--ttl 3600]
    shadow codec-server [--host HOST] [--port PORT]
    shadow decode history.json
    shadow deployment describe|set-current|ramp|drained NAME [BUILD_ID] [PERCENTAGE]

Settings come from the environment, as for a worker (see ShadowSettings).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ipaddress
import json
import logging
import os
import secrets
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import google.protobuf.descriptor
import google.protobuf.json_format
import google.protobuf.message
import pydantic
import temporalio.api.common.v1
import temporalio.api.history.v1
import temporalio.service

from shadow_sdk._client import connect
from shadow_sdk._codec_values import KEY_BYTES, check_key_id
from shadow_sdk._deployments import WorkerDeployment
from shadow_sdk._exceptions import CodecError, SettingsError
from shadow_sdk._process import run_and_exit
from shadow_sdk._settings import Seconds, ShadowSettings, problems_building
from shadow_sdk.auth import TokenIssuer, redact_tokens

logger = logging.getLogger("shadow_sdk.cli")

_ROUTING_TIMEOUT = 30
"""Seconds ``shadow deployment set-current`` and ``ramp`` wait for task queues to route anew."""


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``shadow`` command line."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = ShadowSettings()
        status = args.command(settings, args)
    except (SettingsError, ValueError, OSError) as error:
        parser.exit(2, f"shadow {args.command_name}: {error}\n")
    sys.exit(status)


def keygen(settings: ShadowSettings, args: argparse.Namespace) -> int:
    """Make a random AES-256 key; print it for CODEC_KEYS, or write it into a key directory."""
    key_id = check_key_id(args.id or _new_key_id(), source="--id")
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    if args.dir is None:
        print(json.dumps({key_id: key}))
        return 0
    path = Path(args.dir) / key_id
    if path.exists():
        raise ValueError(f"{path} exists; choose another --id")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    print(f"wrote key {key_id!r} to {path}")
    return 0


def token(settings: ShadowSettings, args: argparse.Namespace) -> int:
    """Issue a token for a subject and roles, signed with the configured key."""
    audience, issuer = settings.auth_audience, settings.auth_issuer
    if settings.auth_hs256_secret is not None:
        signer = TokenIssuer(
            hs256_secret=settings.auth_hs256_secret.get_secret_value(),
            audience=audience,
            issuer=issuer,
        )
    elif settings.auth_private_key_path is not None:
        signer = TokenIssuer(
            private_key=settings.auth_private_key_path.read_bytes(),
            key_id=args.key_id,
            audience=audience,
            issuer=issuer,
        )
    else:
        raise SettingsError(["AUTH_HS256_SECRET or AUTH_PRIVATE_KEY_PATH: needed to sign tokens"])
    print(signer.issue(args.subject, args.role, namespaces=args.namespace, ttl=args.ttl))
    return 0


def codec_server(settings: ShadowSettings, args: argparse.Namespace) -> int:
    """Serve the codec protocol for the Web UI and CLI until SIGINT or SIGTERM."""
    # aiohttp's web server is imported by this command alone: every other command
    # starts without it, a fifth of a second sooner.
    from aiohttp import web  # noqa: PLC0415

    from shadow_sdk.codec import create_codec_server  # noqa: PLC0415

    host = args.host or settings.codec_server_host
    port = args.port or settings.codec_server_port
    role = settings.codec_server_anonymous_role
    problems = problems_building(
        settings.policy, settings.authorizer, settings.codec_server_key_rings
    )
    if role is not None and not _is_loopback(host):
        problems.append(
            f"CODEC_SERVER_ANONYMOUS_ROLE={role!r}: only allowed when listening on a "
            f"loopback address, not {host!r}"
        )
    if problems:
        raise SettingsError(problems)
    key_rings = settings.codec_server_key_rings()
    if not key_rings:
        raise SettingsError(
            ["CODEC_KEYS, CODEC_KEYS_DIR or CODEC_SERVER_KEYS_DIR: no keys to serve"]
        )
    codecs = {namespace: settings.payload_codec(ring) for namespace, ring in key_rings.items()}
    app = create_codec_server(
        {namespace: codec for namespace, codec in codecs.items() if codec is not None},
        authorizer=settings.authorizer(),
        policy=settings.policy(),
        anonymous_role=role,
        cors_origins=settings.codec_server_cors_origins,
        max_body_bytes=settings.codec_server_max_body_bytes,
        max_payloads=settings.codec_max_payloads,
    )
    if role is not None:
        logger.warning("requests without a token get role %r: for local development only", role)
    logger.info(
        "codec server on http://%s:%d for namespaces %s", host, port, ", ".join(sorted(key_rings))
    )
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


def decode(settings: ShadowSettings, args: argparse.Namespace) -> int:
    """Decrypt every payload of a workflow history saved as JSON, and print it readable."""
    key_ring = settings.key_ring()
    codec = settings.payload_codec()
    if key_ring is None or codec is None:
        raise SettingsError(["CODEC_KEYS or CODEC_KEYS_DIR: no keys to decode with"])
    text = sys.stdin.read() if args.history == "-" else Path(args.history).read_text()
    try:
        history = google.protobuf.json_format.Parse(
            text, temporalio.api.history.v1.History(), ignore_unknown_fields=True
        )
    except google.protobuf.json_format.ParseError as error:
        raise ValueError(f"{args.history}: not a workflow history in JSON: {error}") from None
    payloads = list(_payloads_in(history))
    try:
        decoded = asyncio.run(codec.decode(payloads))
    except CodecError as error:
        print(f"shadow decode: {error}", file=sys.stderr)
        return 1
    for original, plain in zip(payloads, redact_tokens(decoded), strict=True):
        original.CopyFrom(plain)
    readable = _readable(google.protobuf.json_format.MessageToDict(history))
    print(json.dumps(readable, indent=2))
    return 0


def deployment(settings: ShadowSettings, args: argparse.Namespace) -> int:
    """Describe a Worker Deployment, move its current or ramping version, or ask if one drained."""
    run_and_exit(_rollout(settings, args))  # The client's core threads must not abort the exit.


async def _rollout(settings: ShadowSettings, args: argparse.Namespace) -> int:
    try:
        return await _rollout_step(WorkerDeployment(await connect(settings), args.name), args)
    except temporalio.service.RPCError as error:
        print(f"shadow deployment: Temporal refused: {error.message}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"shadow deployment: {error}", file=sys.stderr)
        return 2


async def _rollout_step(rollout: WorkerDeployment, args: argparse.Namespace) -> int:
    if args.action in ("set-current", "ramp"):
        if args.action == "set-current":
            await rollout.set_current(args.build_id)
            change = f"new workflows now run {args.build_id}"
        else:
            await rollout.set_ramping(args.build_id, args.percentage)
            change = f"{args.percentage:g} % of new workflows now run {args.build_id}"
        try:
            async with asyncio.timeout(_ROUTING_TIMEOUT):
                await rollout.wait_until_routed()
        except TimeoutError:
            print(
                f"{args.name}: accepted, but its task queues did not take it up within "
                f"{_ROUTING_TIMEOUT} s; 'shadow deployment describe {args.name}' shows when",
                file=sys.stderr,
            )
            return 1
        print(f"{args.name}: {change}")
    elif args.action == "drained":
        drained = await rollout.drained(args.build_id)
        print(f"{args.name} {args.build_id}: {'drained' if drained else 'not drained'}")
        return 0 if drained else 1
    else:
        status = await rollout.describe()
        ramp = (
            f", {status.ramping_percentage:g} % ramping to {status.ramping_build_id}"
            if status.ramping_build_id
            else ""
        )
        print(f"{status.name}: current {status.current_build_id or '(unversioned)'}{ramp}")
        for version in status.versions:
            print(f"  {version.build_id}  {version.status}")
    return 0


def _payloads_in(
    message: google.protobuf.message.Message,
) -> Iterator[temporalio.api.common.v1.Payload]:
    """Every Payload inside ``message``, depth first, as live references."""
    if isinstance(message, temporalio.api.common.v1.Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = value.values()
        elif _is_repeated(field):
            items = value
        else:
            items = [value]
        for item in items:
            if isinstance(item, google.protobuf.message.Message):
                yield from _payloads_in(item)


def _is_repeated(field: google.protobuf.descriptor.FieldDescriptor) -> bool:
    is_repeated = getattr(field, "is_repeated", None)  # protobuf 6.31 and later
    if is_repeated is not None:
        return bool(is_repeated)
    return bool(getattr(field, "label") == field.LABEL_REPEATED)  # noqa: B009  Gone from stubs.


def _readable(value: Any) -> Any:
    """Show JSON payloads as JSON and their metadata as text, instead of base64."""
    if isinstance(value, list):
        return [_readable(item) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) <= {"metadata", "data"} and isinstance(value.get("metadata"), dict):
        metadata = {key: _text(item) for key, item in value["metadata"].items()}
        data: Any = value.get("data", "")
        if metadata.get("encoding") == "json/plain":
            data = json.loads(base64.b64decode(data) or b"null")
        return {"metadata": metadata, "data": data}
    return {key: _readable(item) for key, item in value.items()}


def _text(encoded: str) -> str:
    raw = base64.b64decode(encoded)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return encoded


def _new_key_id() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d}-{secrets.token_hex(2)}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _seconds(text: str) -> timedelta:
    try:
        return pydantic.TypeAdapter(Seconds).validate_python(text)
    except pydantic.ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not seconds or an ISO 8601 duration"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shadow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    command = commands.add_parser("keygen", help="make an AES-256 key for payload encryption")
    command.add_argument("--id", help="key id (default: today's date and a random suffix)")
    command.add_argument("--dir", help="write the key into this key directory, mode 0600")
    command.set_defaults(command=keygen, command_name="keygen")

    command = commands.add_parser("token", help="issue a token for a subject and roles")
    command.add_argument("--subject", required=True, help="who the token speaks for")
    command.add_argument("--role", action="append", required=True, help="a role (repeatable)")
    command.add_argument(
        "--namespace", action="append", help="restrict the token to a namespace (repeatable)"
    )
    command.add_argument(
        "--ttl", type=_seconds, default=timedelta(hours=1), help="lifetime, seconds or ISO 8601"
    )
    command.add_argument("--key-id", help="kid header, for verifiers with a JWKS")
    command.set_defaults(command=token, command_name="token")

    command = commands.add_parser("codec-server", help="serve the codec protocol for UI and CLI")
    command.add_argument("--host", help="address to listen on (CODEC_SERVER_HOST)")
    command.add_argument("--port", type=int, help="port to listen on (CODEC_SERVER_PORT)")
    command.set_defaults(command=codec_server, command_name="codec-server")

    command = commands.add_parser("decode", help="decrypt a workflow history saved as JSON")
    command.add_argument(
        "history", help="file from 'temporal workflow show --output json', or - for stdin"
    )
    command.set_defaults(command=decode, command_name="decode")

    command = commands.add_parser("deployment", help="roll out Worker Deployment Versions")
    actions = command.add_subparsers(dest="action", required=True, metavar="ACTION")
    action = actions.add_parser("describe", help="the current, ramping and every version")
    action.add_argument("name", help="the deployment (TEMPORAL_DEPLOYMENT_NAME)")
    action = actions.add_parser("set-current", help="send new workflows to a version")
    action.add_argument("name", help="the deployment (TEMPORAL_DEPLOYMENT_NAME)")
    action.add_argument("build_id", help="the version (TEMPORAL_WORKER_BUILD_ID)")
    action = actions.add_parser("ramp", help="send a share of new workflows to a version")
    action.add_argument("name", help="the deployment (TEMPORAL_DEPLOYMENT_NAME)")
    action.add_argument("build_id", help="the version (TEMPORAL_WORKER_BUILD_ID)")
    action.add_argument("percentage", type=float, help="0 to 100; 0 ends the ramp")
    action = actions.add_parser("drained", help="exit 0 once nothing runs on a version")
    action.add_argument("name", help="the deployment (TEMPORAL_DEPLOYMENT_NAME)")
    action.add_argument("build_id", help="the version (TEMPORAL_WORKER_BUILD_ID)")
    command.set_defaults(command=deployment, command_name="deployment")
    return parser
