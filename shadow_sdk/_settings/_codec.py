"""Codec settings: payload encryption keys, compression, decoding limits, the codec server."""

from __future__ import annotations

from typing import Annotated

from pydantic import DirectoryPath, Field, PositiveInt, SecretStr, field_validator

from shadow_sdk._codec_values import MAX_DECODED_BYTES, MAX_PAYLOADS, parse_key, parse_key_id
from shadow_sdk._settings._types import CommaList, SecretsByName, SettingsPart


class CodecSettings(SettingsPart):
    """Which keys encrypt payloads, and how the codec server serves them.

    The form of ``CODEC_KEYS`` (key ids, base64 AES-256 keys) is checked here;
    :meth:`KeyRing.from_settings <shadow_sdk.codec.KeyRing.from_settings>` reads
    a key directory when the keys are needed.
    """

    codec_keys: SecretsByName = Field(default_factory=dict)
    """AES-256 keys by key id, each base64: ``{"2026-11": "q83v..."}``."""
    codec_keys_dir: DirectoryPath | None = None
    """Directory of key files (a mounted secret): file name is the key id, content the key."""
    codec_active_key_id: str | None = None
    """Key that encrypts; needless with one key or an ``ACTIVE`` file in the key directory."""
    codec_required: bool = False
    """Refuse to start without encryption keys, instead of writing plaintext payloads."""
    codec_compression_threshold: Annotated[int, Field(ge=0)] | None = None
    """Compress payloads of at least this many bytes before encrypting them; unset: never."""
    codec_encode_failures: bool = True
    """Encrypt failure messages and stack traces too, not only payloads."""
    codec_max_decoded_bytes: PositiveInt = MAX_DECODED_BYTES
    """Most bytes that decrypting and decompressing may produce in one decode call (a
    worker's) or request (the codec server's), all payloads together: 64 MiB."""
    codec_max_payloads: PositiveInt = MAX_PAYLOADS
    """Most payloads in one decode call or codec server request: 10,000."""

    codec_server_host: str = "127.0.0.1"
    """Address the codec server listens on."""
    codec_server_port: Annotated[int, Field(gt=0, lt=65536)] = 8081
    """Port the codec server listens on."""
    codec_server_cors_origins: CommaList = Field(default_factory=list)
    """Web UI origins allowed to call the codec server, comma-separated."""
    codec_server_max_body_bytes: PositiveInt = 8 * 1024 * 1024
    """Largest request the codec server reads."""
    codec_server_keys_dir: DirectoryPath | None = None
    """One key directory per namespace, named after it; unset: the worker's keys for
    ``TEMPORAL_NAMESPACE``."""
    codec_server_anonymous_role: str | None = None
    """Role given to requests without a token, for a local Web UI that sends none;
    only allowed on a loopback address."""

    @field_validator("codec_keys")
    @classmethod
    def _check_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        problems = []
        for key_id, key in keys.items():
            try:
                parse_key(key.get_secret_value(), key_id=parse_key_id(key_id))
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise ValueError("; ".join(problems))
        return keys

    def _problems(self) -> list[str]:
        problems = []
        if self.codec_keys and self.codec_keys_dir:
            problems.append("CODEC_KEYS and CODEC_KEYS_DIR are both set; keep one")
        elif self.codec_keys:
            active, ids = self.codec_active_key_id, sorted(self.codec_keys)
            if active is None and len(ids) > 1:
                problems.append(f"CODEC_ACTIVE_KEY_ID: required with {len(ids)} keys in CODEC_KEYS")
            if active is not None and active not in ids:
                problems.append(
                    f"CODEC_ACTIVE_KEY_ID={active!r}: not one of the keys in CODEC_KEYS "
                    f"({', '.join(ids)})"
                )
        elif self.codec_required and self.codec_keys_dir is None:
            problems.append("CODEC_REQUIRED: set CODEC_KEYS or CODEC_KEYS_DIR, or turn it off")
        return [*super()._problems(), *problems]
