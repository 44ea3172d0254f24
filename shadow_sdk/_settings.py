"""Settings of a worker service, read from the environment and validated at start-up."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import urllib.parse
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin

import pydantic
import pydantic_core
import pydantic_settings
import temporalio.converter
import temporalio.envconfig
from pydantic import (
    AliasGenerator,
    BeforeValidator,
    DirectoryPath,
    Field,
    FilePath,
    PositiveInt,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    field_validator,
    model_validator,
)

from shadow_sdk._codec_values import MAX_DECODED_BYTES, MAX_PAYLOADS, check_key_id, decode_key
from shadow_sdk._exceptions import SettingsError
from shadow_sdk.auth._interceptor import Authorizer
from shadow_sdk.auth._policy import Policy
from shadow_sdk.auth._tokens import TokenVerifier, load_jwks
from shadow_sdk.codec._compression import CompressionCodec
from shadow_sdk.codec._encryption import EncryptionCodec
from shadow_sdk.codec._keyring import KeyRing

HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})$")
_NAME = re.compile(r"^[^\s]+$")
SHUTDOWN_MARGIN = timedelta(seconds=10)
"""What the shutdown cap adds to the graceful timeout when WORKER_SHUTDOWN_TIMEOUT is unset."""
LEGACY_VARIABLES = {
    "JWT_SECRET": "set AUTH_HS256_SECRET instead (or AUTH_PUBLIC_KEY_PATH or "
    "AUTH_JWKS_PATH for tokens signed with a key pair)",
    "ENCRYPTION_KEY": "set CODEC_KEYS instead, a JSON object of key id to base64 AES-256 "
    "key (`shadow keygen` makes one), or CODEC_KEYS_DIR",
    "WORKER_CONCURRENCY": "set WORKER_MAX_CONCURRENT_ACTIVITIES and "
    "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS instead",
    "MAX_CACHED_WORKFLOWS": "set WORKER_MAX_CACHED_WORKFLOWS instead",
    "JAEGER_ENDPOINT": "set OTEL_EXPORTER_OTLP_ENDPOINT instead (OTLP over HTTP, for "
    "example http://jaeger:4318)",
    "DATABASE_URL": "Temporal keeps the workflows' state: remove it, or declare a "
    "`database_url` field in the service's settings if it has a database of its own",
}
"""Variables of the system this kit replaces, and what to do instead.

A settings class that declares a field of the same name reads the variable as its
own; otherwise it is refused, so that a process never runs without the encryption
or authorization its environment seems to ask for.
"""
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _seconds(value: object) -> object:
    """Read plain numbers (``"30"``, ``"2.5"``) as seconds; pydantic takes ISO 8601 otherwise."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _comma_list(value: object) -> object:
    """Split ``"a, b"`` into ``["a", "b"]``; a JSON list is read as JSON."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return _json_object(value)
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _json_object(value: object) -> object:
    """Parse a JSON object given as a string; pydantic checks the result's shape."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError('expected a JSON object such as {"name": "value"}') from None
    return value


Seconds = Annotated[timedelta, BeforeValidator(_seconds)]
"""A duration given in seconds (``30``, ``"2.5"``) or as ISO 8601 (``"PT1M"``)."""


class ShadowSettings(pydantic_settings.BaseSettings):
    """Everything a worker service needs to connect to Temporal and run a worker.

    Each field is read from the environment variable of the same name in upper
    case (``temporal_task_queue`` from ``TEMPORAL_TASK_QUEUE``); an empty variable
    counts as unset. The connection
    variables are those of the Temporal CLI and SDKs, and a Temporal TOML
    profile (``TEMPORAL_CONFIG_FILE``, ``TEMPORAL_PROFILE``) is read through
    :mod:`temporalio.envconfig`, with environment variables taking precedence.
    Keyword arguments take precedence over both.

    Invalid values raise :class:`~shadow_sdk.SettingsError` naming each
    variable. A service adds its own settings, or changes defaults, by
    subclassing::

        class Settings(ShadowSettings):
            temporal_task_queue: str = "orders"
            orders_api_url: str = "http://orders:8080"
    """

    model_config = pydantic_settings.SettingsConfigDict(
        alias_generator=AliasGenerator(validation_alias=str.upper),
        validate_by_name=True,
        validate_by_alias=True,
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
        validate_default=True,
    )

    # Connection: the variables of temporalio.envconfig and the Temporal CLI.
    temporal_address: str = "localhost:7233"
    """Frontend address of the Temporal service, as ``host:port``."""
    temporal_namespace: Annotated[str, Field(max_length=255)] = "default"
    """Namespace to connect to."""
    temporal_task_queue: Annotated[str, Field(max_length=1000)] | None = None
    """Task queue the worker polls and clients start workflows on; a worker needs one."""
    temporal_api_key: SecretStr | None = None
    """API key (Temporal Cloud); turns TLS on unless ``TEMPORAL_TLS`` is false."""
    temporal_api_key_file: FilePath | None = None
    """File holding the API key, watched by workers so that a new key needs no restart."""
    temporal_tls: bool | None = None
    """Force TLS on or off; unset means on when an API key or certificate is given."""
    temporal_tls_server_name: str | None = None
    """Server name (SNI) to verify the server certificate against."""
    temporal_tls_server_ca_cert_path: FilePath | None = None
    """File with the PEM CA certificate that signed the server certificate."""
    temporal_tls_server_ca_cert_data: str | None = None
    """PEM CA certificate, given inline instead of as a file."""
    temporal_tls_client_cert_path: FilePath | None = None
    """File with the PEM client certificate for mutual TLS."""
    temporal_tls_client_cert_data: str | None = None
    """PEM client certificate, given inline instead of as a file."""
    temporal_tls_client_key_path: FilePath | None = None
    """File with the PEM private key of the client certificate."""
    temporal_tls_client_key_data: SecretStr | None = None
    """PEM private key of the client certificate, given inline."""
    temporal_grpc_meta: Annotated[
        dict[str, SecretStr], pydantic_settings.NoDecode, BeforeValidator(_json_object)
    ] = Field(default_factory=dict)
    """gRPC metadata for every call: ``TEMPORAL_GRPC_META_<NAME>`` variables or a profile."""
    temporal_config_file: FilePath | None = None
    """Temporal TOML configuration file; the default location is used when unset."""
    temporal_profile: str | None = None
    """Profile of the TOML file to read; ``default`` when unset."""

    # Worker.
    worker_max_concurrent_activities: PositiveInt | None = None
    """Activity slots of this worker; unset keeps the Temporal SDK's default."""
    worker_max_concurrent_workflow_tasks: Annotated[int, Field(ge=2)] | None = None
    """Workflow task slots of this worker; unset keeps the SDK's default."""
    worker_max_cached_workflows: Annotated[int, Field(ge=0)] | None = None
    """Workflows kept in the sticky cache; unset keeps the SDK's default."""
    worker_graceful_shutdown_timeout: Seconds = timedelta(seconds=25)
    """How long in-flight activities may run on after shutdown starts.

    25 s fits inside Kubernetes' default ``terminationGracePeriodSeconds`` of 30,
    leaving the process time to exit before it is killed.
    """

    worker_shutdown_timeout: Seconds | None = None
    """Hard cap on the whole shutdown; past it the process exits 1. Unset: the graceful
    timeout plus 10 s."""
    worker_tuner: Literal["fixed", "resource-based"] = "fixed"
    """``fixed`` slot counts, or Temporal's resource-based tuner that adds slots while
    memory and CPU stay under their targets."""
    worker_target_memory_usage: Annotated[float, Field(gt=0, le=1)] = 0.8
    """Memory use (0-1) the resource-based tuner aims for."""
    worker_target_cpu_usage: Annotated[float, Field(gt=0, le=1)] = 0.9
    """CPU use (0-1) the resource-based tuner aims for."""
    worker_workflow_task_pollers: PositiveInt | None = None
    """Most concurrent workflow task polls; unset keeps the SDK's default."""
    worker_activity_task_pollers: PositiveInt | None = None
    """Most concurrent activity task polls; unset keeps the SDK's default."""
    worker_poller_autoscaling: bool = False
    """Scale polls with load, up to the maxima above (or 100)."""
    worker_max_activities_per_second: Annotated[float, Field(gt=0)] | None = None
    """Activities this worker starts per second at most."""
    worker_max_task_queue_activities_per_second: Annotated[float, Field(gt=0)] | None = None
    """Activities all workers of the task queue start per second at most (set on the server)."""
    worker_connect_timeout: Seconds = timedelta(seconds=10)
    """How long one attempt to reach Temporal at start-up may take; attempts repeat, with
    backoff, until one succeeds."""
    worker_poll_failure_grace: Seconds = timedelta(seconds=30)
    """How long a worker's polls may fail before ``/ready`` answers 503; 0: at once."""

    # Operations: the ops server, logs, traces.
    metrics_host: str = "0.0.0.0"  # noqa: S104  Probes and scrapes come from outside the pod.
    """Address of the ops server (/metrics, /live, /ready, /health)."""
    metrics_port: Annotated[int, Field(ge=0, lt=65536)] | None = 9464
    """Port of the ops server; 0 picks a free one."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Level of the process's logs."""
    log_format: Literal["text", "json"] = "text"
    """``text`` for people, ``json`` for log pipelines."""
    otel_exporter_otlp_endpoint: str | None = None
    """OTLP/HTTP endpoint for traces; unset: no tracing, at no cost."""
    otel_service_name: str | None = None
    """``service.name`` of the traces; unset: the task queue."""

    # Shared state of the resilience helpers.
    redis_url: SecretStr | None = None
    """Redis for circuit breaker state and cached activity results shared by all workers,
    ``redis://host:6379/0`` (``rediss://`` for TLS); unset: per process only."""

    # Payload encryption.
    codec_keys: Annotated[
        dict[str, SecretStr], pydantic_settings.NoDecode, BeforeValidator(_json_object)
    ] = Field(default_factory=dict)
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

    # Codec server.
    codec_server_host: str = "127.0.0.1"
    """Address the codec server listens on."""
    codec_server_port: Annotated[int, Field(gt=0, lt=65536)] = 8081
    """Port the codec server listens on."""
    codec_server_cors_origins: Annotated[
        list[str], pydantic_settings.NoDecode, BeforeValidator(_comma_list)
    ] = Field(default_factory=list)
    """Web UI origins allowed to call the codec server, comma-separated."""
    codec_server_max_body_bytes: PositiveInt = 8 * 1024 * 1024
    """Largest request the codec server reads."""
    codec_server_keys_dir: DirectoryPath | None = None
    """One key directory per namespace, named after it; unset: the worker's keys for
    ``TEMPORAL_NAMESPACE``."""
    codec_server_anonymous_role: str | None = None
    """Role given to requests without a token, for a local Web UI that sends none;
    only allowed on a loopback address."""

    # Authentication and authorization.
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

    _key_ring: KeyRing | None = PrivateAttr(default=None)
    _policy: Policy = PrivateAttr(default_factory=Policy.default)
    _authorizer: Authorizer | None = PrivateAttr(default=None)

    def __init__(self, *args: Any, **values: Any) -> None:
        try:
            super().__init__(*args, **values)
        except pydantic_settings.SettingsError as error:
            # A complex value (JSON) that cannot even be parsed fails before validation.
            field = re.search(r'field "(\w+)"', str(error))
            variable = field[1].upper() if field else "settings"
            raise SettingsError([f"{variable}: cannot be parsed: {error.__cause__}"]) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[pydantic_settings.BaseSettings],
        init_settings: pydantic_settings.PydanticBaseSettingsSource,
        env_settings: pydantic_settings.PydanticBaseSettingsSource,
        dotenv_settings: pydantic_settings.PydanticBaseSettingsSource,
        file_secret_settings: pydantic_settings.PydanticBaseSettingsSource,
    ) -> tuple[pydantic_settings.PydanticBaseSettingsSource, ...]:
        """Read keyword arguments, variables, a dotenv file, secret files, then the profile.

        The dotenv file and the secrets directory are off unless a subclass sets
        ``env_file`` or ``secrets_dir`` in its ``model_config``.
        """
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            _TemporalProfileSource(settings_cls),
        )

    @model_validator(mode="wrap")
    @classmethod
    def _name_invalid_variables(
        cls, data: Any, handler: pydantic.ModelWrapValidatorHandler[Self]
    ) -> Self:
        legacy = _legacy_problems(cls)
        try:
            settings = handler(data)
        except pydantic.ValidationError as error:
            described = [_describe(cls, problem) for problem in error.errors()]
            raise SettingsError(legacy + described) from None
        problems = legacy + settings._tls_problems() + settings._exclusive_problems()
        if problems := problems + settings._worker_problems():
            raise SettingsError(problems)
        settings._key_ring = settings._build_key_ring()
        settings._policy = settings._build_policy()
        settings._check_anonymous_role()
        settings._authorizer = settings._build_authorizer()
        return settings

    @field_validator("temporal_address")
    @classmethod
    def _check_address(cls, address: str) -> str:
        match = HOST_PORT.match(address)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise ValueError("expected host:port, for example localhost:7233")
        return address

    @field_validator("temporal_namespace", "temporal_task_queue")
    @classmethod
    def _check_name(cls, name: str | None) -> str | None:
        if name is not None and not _NAME.match(name):
            raise ValueError("must not be empty or contain whitespace")
        return name

    @field_validator("worker_graceful_shutdown_timeout", "worker_connect_timeout")
    @classmethod
    def _check_positive(cls, duration: timedelta) -> timedelta:
        if duration <= timedelta(0):
            raise ValueError("must be more than 0 seconds")
        return duration

    @field_validator("worker_poll_failure_grace")
    @classmethod
    def _check_not_negative(cls, duration: timedelta) -> timedelta:
        if duration < timedelta(0):
            raise ValueError("must not be negative")
        return duration

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None:
            return None
        expected = "expected redis://host:6379/0, rediss://host:6380/0 or unix:///path/redis.sock"
        try:
            parts = urllib.parse.urlsplit(url.get_secret_value())
            port = parts.port  # Raises ValueError when it is not a number.
        except ValueError:
            raise ValueError(expected) from None
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError(expected)
        if parts.scheme == "unix" and not parts.path:
            raise ValueError(f"{expected}: a unix URL needs the socket's path")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError(f"{expected}: no host")
        if port == 0:
            raise ValueError(f"{expected}: port 0")
        if importlib.util.find_spec("redis") is None:
            raise ValueError("needs the redis package: install shadow-sdk[redis]")
        return url

    def _tls_problems(self) -> list[str]:
        problems = []
        for name in _TLS_SOURCES:
            variable = f"TEMPORAL_TLS_{name.upper()}"
            if getattr(self, f"temporal_tls_{name}_path") and getattr(
                self, f"temporal_tls_{name}_data"
            ):
                problems.append(f"{variable}_PATH and {variable}_DATA are both set; keep one")
        has_cert = bool(self.temporal_tls_client_cert_path or self.temporal_tls_client_cert_data)
        has_key = bool(self.temporal_tls_client_key_path or self.temporal_tls_client_key_data)
        if has_cert != has_key:
            given, missing = ("CERT", "KEY") if has_cert else ("KEY", "CERT")
            problems.append(
                f"TEMPORAL_TLS_CLIENT_{given}_* is set without TEMPORAL_TLS_CLIENT_{missing}_*: "
                "mutual TLS needs both the certificate and its key"
            )
        return problems

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, level: object) -> object:
        return level.upper() if isinstance(level, str) else level

    def _worker_problems(self) -> list[str]:
        problems = []
        cap = self.worker_shutdown_timeout
        if cap is not None and cap <= self.worker_graceful_shutdown_timeout:
            problems.append(
                "WORKER_SHUTDOWN_TIMEOUT: must be longer than WORKER_GRACEFUL_SHUTDOWN_TIMEOUT "
                f"({self.worker_graceful_shutdown_timeout.total_seconds():g} s), "
                "which it caps"
            )
        if (
            self.worker_workflow_task_pollers == 1
            and not self.worker_poller_autoscaling
            and self.worker_max_cached_workflows != 0
        ):
            problems.append(
                "WORKER_WORKFLOW_TASK_POLLERS=1: a worker that caches workflows polls its "
                "sticky queue too and needs at least 2; set 2 or more, or "
                "WORKER_MAX_CACHED_WORKFLOWS=0"
            )
        if self.worker_tuner == "resource-based":
            problems += [
                f"WORKER_TUNER=resource-based and {name.upper()} are both set; "
                "the tuner decides the slots"
                for name in (
                    "worker_max_concurrent_activities",
                    "worker_max_concurrent_workflow_tasks",
                )
                if getattr(self, name) is not None
            ]
        return problems

    def _exclusive_problems(self) -> list[str]:
        pairs = [
            (
                "TEMPORAL_API_KEY",
                self.temporal_api_key,
                "TEMPORAL_API_KEY_FILE",
                self.temporal_api_key_file,
            ),
            ("CODEC_KEYS", self.codec_keys, "CODEC_KEYS_DIR", self.codec_keys_dir),
            ("AUTH_TOKEN", self.auth_token, "AUTH_TOKEN_FILE", self.auth_token_file),
        ]
        problems = [
            f"{one} and {other} are both set; keep one" for one, a, other, b in pairs if a and b
        ]
        verifiers = [name for name, value in (("AUTH_HS256_SECRET", self.auth_hs256_secret),
                     ("AUTH_PUBLIC_KEY_PATH", self.auth_public_key_path),
                     ("AUTH_JWKS_PATH", self.auth_jwks_path)) if value]  # fmt: skip
        if len(verifiers) > 1:
            problems.append(f"{' and '.join(verifiers)} are all set; tokens are verified one way")
        return problems

    def _build_key_ring(self) -> KeyRing | None:
        if self.codec_keys_dir is not None:
            return KeyRing.from_directory(
                self.codec_keys_dir, active=self.codec_active_key_id, variable="CODEC_KEYS_DIR"
            )
        if self.codec_keys:
            keys = {
                check_key_id(key_id, source="CODEC_KEYS"): decode_key(
                    key.get_secret_value(), key_id=key_id, source="CODEC_KEYS"
                )
                for key_id, key in self.codec_keys.items()
            }
            if self.codec_active_key_id is None and len(keys) > 1:
                raise SettingsError(
                    [f"CODEC_ACTIVE_KEY_ID: required with {len(keys)} keys in CODEC_KEYS"]
                )
            if self.codec_active_key_id is not None and self.codec_active_key_id not in keys:
                raise SettingsError(
                    [f"CODEC_ACTIVE_KEY_ID={self.codec_active_key_id!r}: not one of "
                     f"the keys in CODEC_KEYS ({', '.join(sorted(keys))})"]
                )  # fmt: skip
            return KeyRing(keys, active=self.codec_active_key_id)
        if self.codec_required:
            raise SettingsError(
                ["CODEC_REQUIRED: set CODEC_KEYS or CODEC_KEYS_DIR, or turn it off"]
            )
        return None

    def _build_authorizer(self) -> Authorizer | None:
        try:
            if self.auth_hs256_secret is not None:
                where = "AUTH_HS256_SECRET"
                verifier = self._verifier(hs256_secret=self.auth_hs256_secret.get_secret_value())
            elif self.auth_public_key_path is not None:
                where = "AUTH_PUBLIC_KEY_PATH"
                verifier = self._verifier(public_key=self.auth_public_key_path.read_bytes())
            elif self.auth_jwks_path is not None:
                where = "AUTH_JWKS_PATH"
                verifier = self._verifier(jwks=load_jwks(self.auth_jwks_path.read_bytes()))
            else:
                return None
        except ValueError as error:
            raise SettingsError([f"{where}: {error}"]) from None
        return Authorizer(verifier, self._policy)

    def _check_anonymous_role(self) -> None:
        role = self.codec_server_anonymous_role
        if role is not None and role not in self._policy.roles:
            where = "AUTH_POLICY_PATH" if self.auth_policy_path else "the default policy"
            raise SettingsError(
                [f"CODEC_SERVER_ANONYMOUS_ROLE={role!r}: not a role of {where} "
                 f"({', '.join(sorted(self._policy.roles))})"]
            )  # fmt: skip

    def _build_policy(self) -> Policy:
        if self.auth_policy_path is None:
            return Policy.default()
        try:
            return Policy.from_yaml(self.auth_policy_path)
        except ValueError as error:
            raise SettingsError([f"AUTH_POLICY_PATH: {error}"]) from None

    def _verifier(self, **key: Any) -> TokenVerifier:
        return TokenVerifier(
            **key, audience=self.auth_audience, issuer=self.auth_issuer, leeway=self.auth_leeway
        )

    def shutdown_cap(self) -> timedelta:
        """The hard cap on a worker's whole shutdown, past which the process exits 1.

        ``WORKER_SHUTDOWN_TIMEOUT``, or the graceful timeout plus 10 s. Size Kubernetes'
        ``terminationGracePeriodSeconds`` above it.
        """
        return self.worker_shutdown_timeout or (
            self.worker_graceful_shutdown_timeout + SHUTDOWN_MARGIN
        )

    def key_ring(self) -> KeyRing | None:
        """The encryption keys, or ``None`` when payloads are not encrypted."""
        return self._key_ring

    def payload_codec(
        self, key_ring: KeyRing | None = None
    ) -> temporalio.converter.PayloadCodec | None:
        """Encryption with ``key_ring`` or :meth:`key_ring`, compressing first if configured.

        Decompression is on even when compression is off, so that payloads
        others compressed (inside the encryption) still decode.
        """
        key_ring = key_ring or self._key_ring
        if key_ring is None:
            return None
        compression = CompressionCodec(
            threshold=self.codec_compression_threshold,
            max_decoded_bytes=self.codec_max_decoded_bytes,
            max_payloads=self.codec_max_payloads,
        )
        return EncryptionCodec(
            key_ring,
            compression=compression,
            max_decoded_bytes=self.codec_max_decoded_bytes,
            max_payloads=self.codec_max_payloads,
        )

    def codec_server_key_rings(self) -> dict[str, KeyRing]:
        """Key ring by namespace for the codec server.

        From ``CODEC_SERVER_KEYS_DIR`` (a key directory per namespace, named after
        it) if set, else this worker's keys for ``TEMPORAL_NAMESPACE``. In a
        namespace's directory, ``CODEC_ACTIVE_KEY_ID`` names the active key if the
        directory holds that key, else its ``ACTIVE`` file does.

        Raises:
            SettingsError: A directory's keys are invalid or its active key unclear.
        """
        if self.codec_server_keys_dir is None:
            return {} if self._key_ring is None else {self.temporal_namespace: self._key_ring}
        rings = {}
        for directory in sorted(self.codec_server_keys_dir.iterdir()):
            if not directory.is_dir() or directory.name.startswith("."):
                continue
            active = self.codec_active_key_id
            if active is not None and not (directory / active).is_file():
                active = None  # The setting names a key of other namespaces.
            rings[directory.name] = KeyRing.from_directory(
                directory, active=active, variable="CODEC_SERVER_KEYS_DIR"
            )
        return rings

    def policy(self) -> Policy:
        """The roles and their grants: ``AUTH_POLICY_PATH``, or the default roles."""
        return self._policy

    def authorizer(self) -> Authorizer | None:
        """The token verifier and policy of a worker, or ``None`` without auth."""
        return self._authorizer

    def auth_token_source(self) -> Callable[[], str | None] | str | None:
        """The token a client sends: fixed, read from a file on every call, or none."""
        if self.auth_token is not None:
            return self.auth_token.get_secret_value()
        if self.auth_token_file is not None:
            path = self.auth_token_file
            return lambda: path.read_text().strip() or None
        return None

    def client_connect_config(self) -> temporalio.envconfig.ClientConnectConfig:
        """Keyword arguments for :meth:`temporalio.client.Client.connect`.

        Built by :mod:`temporalio.envconfig`, so TLS and API keys behave exactly
        as they do for the Temporal CLI with the same variables.
        """
        profile = temporalio.envconfig.ClientConfigProfile(
            address=self.temporal_address,
            namespace=self.temporal_namespace,
            api_key=self.api_key(),
            tls=self._tls_config(),
            grpc_meta={
                key: value.get_secret_value() for key, value in self.temporal_grpc_meta.items()
            },
        )
        return profile.to_client_connect_config()

    def api_key(self) -> str | None:
        """The API key to connect with; read from ``TEMPORAL_API_KEY_FILE`` now, if set."""
        if self.temporal_api_key_file is not None:
            return self.temporal_api_key_file.read_text().strip() or None
        return _reveal(self.temporal_api_key)

    def _tls_config(self) -> temporalio.envconfig.ClientConfigTLS | None:
        sources = {
            "server_root_ca_cert": self.temporal_tls_server_ca_cert_path
            or self.temporal_tls_server_ca_cert_data,
            "client_cert": self.temporal_tls_client_cert_path or self.temporal_tls_client_cert_data,
            "client_private_key": self.temporal_tls_client_key_path
            or _reveal(self.temporal_tls_client_key_data),
        }
        if (
            self.temporal_tls is None
            and not self.temporal_tls_server_name
            and not any(sources.values())
        ):
            return None
        return temporalio.envconfig.ClientConfigTLS(
            disabled=None if self.temporal_tls is None else not self.temporal_tls,
            server_name=self.temporal_tls_server_name,
            **sources,
        )


def _legacy_problems(settings_cls: type[ShadowSettings]) -> list[str]:
    """The variables of the replaced system that are set but that no field reads."""
    names = {name.upper() for name in os.environ}
    env_file = settings_cls.model_config.get("env_file")
    if env_file is not None:
        import dotenv  # noqa: PLC0415  pydantic-settings' own dependency, for dotenv files.

        files = [env_file] if isinstance(env_file, (str, Path)) else list(env_file)
        for file in files:
            if Path(file).is_file():
                names |= {name.upper() for name in dotenv.dotenv_values(file)}
    return [
        f"{name}: a variable of the system this kit replaces, which this service does not "
        f"read; {advice}"
        for name, advice in LEGACY_VARIABLES.items()
        if name in names and name.lower() not in settings_cls.model_fields
    ]


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _is_secret(annotation: object) -> bool:
    origin = get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, (SecretStr, SecretBytes, pydantic.Secret)):
        return True
    return any(_is_secret(arg) for arg in get_args(annotation))


def _describe(settings_cls: type[ShadowSettings], problem: pydantic_core.ErrorDetails) -> str:
    """One line for one pydantic error: the variable, the value unless secret, the reason."""
    location = [str(part) for part in problem["loc"]]
    message = problem["msg"].removeprefix("Value error, ")
    if not location:
        return message
    variable = location[0].upper()
    field = settings_cls.model_fields.get(location[0].lower())
    value = problem.get("input")
    if (
        (field is not None and _is_secret(field.annotation))
        or value is None
        or isinstance(value, dict)
        or problem["type"] == "missing"
    ):
        return f"{variable}: {message}"
    return f"{variable}={str(value)!r}: {message}"


class _TemporalProfileSource(pydantic_settings.PydanticBaseSettingsSource):
    """Connection settings from a Temporal TOML profile and ``TEMPORAL_GRPC_META_*`` variables.

    The profile is read by :mod:`temporalio.envconfig` with its environment handling
    off: pydantic-settings reads and validates the variables, with higher priority.
    """

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """See base class."""
        raise NotImplementedError  # __call__ reads the whole profile at once.

    def __call__(self) -> dict[str, Any]:
        stronger = {key.lower(): value for key, value in self.current_state.items()}
        fields = self._profile_fields(stronger)
        grpc_meta = {**fields.get("temporal_grpc_meta", {}), **_grpc_meta_from_environment()}
        if grpc_meta:
            fields["temporal_grpc_meta"] = grpc_meta
        # A certificate given by a stronger source replaces the profile's, in either form.
        for name in _TLS_SOURCES:
            pair = (f"temporal_tls_{name}_path", f"temporal_tls_{name}_data")
            if any(field in stronger for field in pair):
                for field in pair:
                    fields.pop(field, None)
        return fields

    def _profile_fields(self, stronger: dict[str, Any]) -> dict[str, Any]:
        config_file = stronger.get("temporal_config_file")
        profile_name = stronger.get("temporal_profile")
        if config_file is not None and not Path(config_file).is_file():
            return {}  # Field validation reports the missing file by its variable.
        where = f"{config_file}" if config_file else "the default Temporal config file"
        try:
            profile = temporalio.envconfig.ClientConfigProfile.load(
                None if profile_name is None else str(profile_name),
                config_source=None if config_file is None else Path(config_file),
                disable_env=True,
            )
        except Exception as error:  # The bridge raises its own ConfigError type.
            variable = "TEMPORAL_PROFILE" if profile_name else "TEMPORAL_CONFIG_FILE"
            raise SettingsError([f"{variable}: {_without_source_lines(error)} ({where})"]) from None
        fields = _fields_of(profile)
        missing = [
            f"profile {profile_name or 'default'!r} of {where}: {field.removeprefix('temporal_')} "
            f"{str(path)!r} does not point to a file"
            for field, path in fields.items()
            if field.endswith("_path") and not Path(path).is_file()
        ]
        if missing:
            raise SettingsError(missing)
        return fields


_TLS_SOURCES = ("server_ca_cert", "client_cert", "client_key")
_GRPC_META_PREFIX = "TEMPORAL_GRPC_META_"


def _grpc_meta_from_environment() -> dict[str, str]:
    """Headers from ``TEMPORAL_GRPC_META_<NAME>``, named as temporalio.envconfig names them."""
    return {
        name.removeprefix(_GRPC_META_PREFIX).lower().replace("_", "-"): value
        for name, value in os.environ.items()
        if name.upper().startswith(_GRPC_META_PREFIX) and value
    }


def _without_source_lines(error: Exception) -> str:
    """The TOML parser's message minus the lines it quotes from the file, which may hold secrets."""
    lines = str(error).splitlines()
    return "; ".join(
        line.strip() for line in lines if line.strip() and not re.match(r"^\s*\d*\s*\|", line)
    )


def _fields_of(profile: temporalio.envconfig.ClientConfigProfile) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "temporal_address": profile.address,
        "temporal_namespace": profile.namespace,
        "temporal_api_key": profile.api_key,
        "temporal_grpc_meta": dict(profile.grpc_meta) or None,
    }
    if profile.tls is not None:
        tls = profile.tls
        fields["temporal_tls"] = None if tls.disabled is None else not tls.disabled
        fields["temporal_tls_server_name"] = tls.server_name
        for name, source in zip(
            _TLS_SOURCES,
            (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key),
            strict=True,
        ):
            if isinstance(source, Path):
                fields[f"temporal_tls_{name}_path"] = source
            elif source is not None:
                data = source.decode() if isinstance(source, bytes) else source
                fields[f"temporal_tls_{name}_data"] = data
    return {name: value for name, value in fields.items() if value is not None}
