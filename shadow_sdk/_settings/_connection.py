"""Connection settings: the ``TEMPORAL_*`` variables of the Temporal CLI and SDKs."""

from __future__ import annotations

import re
from typing import Annotated

import temporalio.envconfig
from pydantic import Field, FilePath, SecretStr, field_validator

from shadow_sdk._settings._types import SecretsByName, SettingsPart, reveal

HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})$")
"""``host:port``, with an IPv6 host in brackets."""
TLS_SOURCES = ("server_ca_cert", "client_cert", "client_key")
"""The certificates and key, each given as ``TEMPORAL_TLS_<NAME>_PATH`` or ``_DATA``."""
_NAME = re.compile(r"^[^\s]+$")


class ConnectionSettings(SettingsPart):
    """Where Temporal is and how to reach it; built into a client by :meth:`client_connect_config`.

    The variables are those of :mod:`temporalio.envconfig` and the Temporal CLI,
    plus ``TEMPORAL_TASK_QUEUE``.
    """

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
    temporal_grpc_meta: SecretsByName = Field(default_factory=dict)
    """gRPC metadata for every call: ``TEMPORAL_GRPC_META_<NAME>`` variables or a profile."""
    temporal_config_file: FilePath | None = None
    """Temporal TOML configuration file; the default location is used when unset."""
    temporal_profile: str | None = None
    """Profile of the TOML file to read; ``default`` when unset."""

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

    def _problems(self) -> list[str]:
        problems = []
        for name in TLS_SOURCES:
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
        if self.temporal_api_key and self.temporal_api_key_file:
            problems.append("TEMPORAL_API_KEY and TEMPORAL_API_KEY_FILE are both set; keep one")
        return [*super()._problems(), *problems]

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
        return reveal(self.temporal_api_key)

    def _tls_config(self) -> temporalio.envconfig.ClientConfigTLS | None:
        sources = {
            "server_root_ca_cert": self.temporal_tls_server_ca_cert_path
            or self.temporal_tls_server_ca_cert_data,
            "client_cert": self.temporal_tls_client_cert_path or self.temporal_tls_client_cert_data,
            "client_private_key": self.temporal_tls_client_key_path
            or reveal(self.temporal_tls_client_key_data),
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
