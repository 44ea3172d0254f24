"""Connection settings from a Temporal TOML profile, read through :mod:`temporalio.envconfig`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pydantic_settings
import temporalio.envconfig

from shadow_sdk._exceptions import SettingsError
from shadow_sdk._settings._connection import TLS_SOURCES

_GRPC_META_PREFIX = "TEMPORAL_GRPC_META_"


class TemporalProfileSource(pydantic_settings.PydanticBaseSettingsSource):
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
        for name in TLS_SOURCES:
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
            TLS_SOURCES,
            (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key),
            strict=True,
        ):
            if isinstance(source, Path):
                fields[f"temporal_tls_{name}_path"] = source
            elif source is not None:
                data = source.decode() if isinstance(source, bytes) else source
                fields[f"temporal_tls_{name}_data"] = data
    return {name: value for name, value in fields.items() if value is not None}
