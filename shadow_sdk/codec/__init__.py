"""Payload encryption and compression, and the codec server the Temporal CLI and Web UI use.

:class:`EncryptionCodec` encrypts every payload with AES-256-GCM in the format of
Temporal's own encryption samples; :class:`KeyRing` holds the keys and makes
rotation a configuration change. :func:`create_codec_server` builds the HTTP
server that lets authorized people read payloads in the Web UI and CLI.
"""

import typing

from shadow_sdk._codec_values import decode_key
from shadow_sdk.codec._compression import CompressionCodec
from shadow_sdk.codec._encryption import EncryptionCodec
from shadow_sdk.codec._keyring import KeyRing

if typing.TYPE_CHECKING:
    from shadow_sdk.codec._server import create_codec_server

__all__ = [
    "CompressionCodec",
    "EncryptionCodec",
    "KeyRing",
    "create_codec_server",
    "decode_key",
]


def __getattr__(name: str) -> object:
    # The codec server brings aiohttp's web server, which clients and workers never
    # need: it is imported when first asked for, keeping their start-up quick.
    if name == "create_codec_server":
        from shadow_sdk.codec._server import create_codec_server  # noqa: PLC0415

        return create_codec_server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
