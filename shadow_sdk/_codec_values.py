"""What the codec and the settings agree on, as plain data: key ids, key text, decoding limits.

The settings check ``CODEC_KEYS`` and take their defaults from here, so that reading
them needs neither the codec nor its cryptography; :mod:`shadow_sdk.codec` uses the
same definitions.
"""

from __future__ import annotations

import base64
import binascii
import re

from shadow_sdk._exceptions import SettingsError

KEY_BYTES = 32
"""Length of an AES-256 key."""
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""A key id: it is written into the metadata of every payload the key encrypts."""
MAX_DECODED_BYTES = 64 * 1024 * 1024
"""Default of the bytes one decode call may produce, all payloads together."""
MAX_PAYLOADS = 10_000
"""Default of the payloads one decode call (or codec server request) may carry."""


def parse_key_id(key_id: str) -> str:
    """Return ``key_id`` if it is a valid key id.

    Raises:
        ValueError: It is not 1 to 64 letters, digits, dots, dashes or underscores.
    """
    if not KEY_ID.match(key_id):
        problem = "is not 1 to 64 letters, digits, dots, dashes or underscores"
        raise ValueError(f"key id {key_id!r} {problem}")
    return key_id


def parse_key(text: str, *, key_id: str) -> bytes:
    """Decode a base64 AES-256 key (standard or URL-safe, padded or not).

    Args:
        text: The key in base64; whitespace is ignored.
        key_id: The key's id, for the error message.

    Returns:
        The 32 key bytes.

    Raises:
        ValueError: The text is not base64 or not 32 bytes; the key itself is never shown.
    """
    compact = "".join(text.split())
    padded = compact + "=" * (-len(compact) % 4)
    try:
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key {key_id!r} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"key {key_id!r} is {len(key)} bytes; an AES-256 key is {KEY_BYTES}")
    return key


def decode_key(text: str, *, key_id: str, source: str) -> bytes:
    """Decode a base64 AES-256 key, or fail naming the key and where it came from.

    Args:
        text: The key in standard or URL-safe base64, padded or not.
        key_id: The key's id, for the error message.
        source: Where the key came from, for example ``CODEC_KEYS``.

    Returns:
        The 32 key bytes.

    Raises:
        SettingsError: The text is not base64 or not 32 bytes; the key itself is never shown.
    """
    try:
        return parse_key(text, key_id=key_id)
    except ValueError as error:
        raise SettingsError([f"{source}: {error}"]) from None


def check_key_id(key_id: str, *, source: str) -> str:
    """Return ``key_id`` if it is a valid key id, or fail naming where it came from.

    Raises:
        SettingsError: It is not 1 to 64 letters, digits, dots, dashes or underscores.
    """
    try:
        return parse_key_id(key_id)
    except ValueError as error:
        raise SettingsError([f"{source}: {error}"]) from None
