"""ShadowSettings: every part of the settings in one flat model, read from the environment."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import pydantic
import pydantic_settings
from pydantic import AliasGenerator, PrivateAttr, model_validator

from shadow_sdk._exceptions import SettingsError
from shadow_sdk._settings._auth import AuthSettings
from shadow_sdk._settings._codec import CodecSettings
from shadow_sdk._settings._connection import ConnectionSettings
from shadow_sdk._settings._ops import OpsSettings
from shadow_sdk._settings._problems import describe, legacy_problems
from shadow_sdk._settings._profile import TemporalProfileSource
from shadow_sdk._settings._shared_state import SharedStateSettings
from shadow_sdk._settings._versioning import VersioningSettings
from shadow_sdk._settings._worker import WorkerSettings

if TYPE_CHECKING:
    import temporalio.converter

    from shadow_sdk.auth import Authorizer, Policy
    from shadow_sdk.codec import KeyRing

_T = TypeVar("_T")


class ShadowSettings(
    # Listed last to first: pydantic orders fields from the last base to the first, and
    # the repr and the list of problems follow the fields' order.
    AuthSettings,
    CodecSettings,
    SharedStateSettings,
    OpsSettings,
    VersioningSettings,
    WorkerSettings,
    ConnectionSettings,
    pydantic_settings.BaseSettings,
):
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

    Settings are data: they check values and how values combine, and read no
    key, key directory or policy file. The objects built from those
    (:meth:`key_ring`, :meth:`payload_codec`, :meth:`policy`, :meth:`authorizer`,
    :meth:`codec_server_key_rings`) come from the ``from_settings`` constructors
    of their classes when first asked for, and are kept by this instance;
    :func:`~shadow_sdk.run_worker` and ``shadow codec-server`` ask for them before
    they do anything else.
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

    _runtime: dict[str, Any] = PrivateAttr(default_factory=dict)

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
            TemporalProfileSource(settings_cls),
        )

    @model_validator(mode="wrap")
    @classmethod
    def _name_invalid_variables(
        cls, data: Any, handler: pydantic.ModelWrapValidatorHandler[Self]
    ) -> Self:
        legacy = legacy_problems(cls)
        try:
            settings = handler(data)
        except pydantic.ValidationError as error:
            described = [describe(cls, problem) for problem in error.errors()]
            raise SettingsError(legacy + described) from None
        if problems := legacy + settings._problems():
            raise SettingsError(problems)
        return settings

    def __copy__(self) -> Self:
        # model_copy() copies, then may change fields: the copy builds its own objects.
        copied = super().__copy__()
        copied._runtime = {}
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        memo[id(self._runtime)] = {}  # Built objects hold locks and ciphers: not copied.
        return super().__deepcopy__(memo)

    def key_ring(self) -> KeyRing | None:
        """The encryption keys, or ``None`` when payloads are not encrypted.

        Built by :meth:`KeyRing.from_settings <shadow_sdk.codec.KeyRing.from_settings>`
        on the first call.

        Raises:
            SettingsError: ``CODEC_KEYS_DIR`` holds no valid keys, or its active key
                is unclear.
        """
        from shadow_sdk.codec import KeyRing  # noqa: PLC0415  Settings are data.

        return self._built("key_ring", lambda: KeyRing.from_settings(self))

    def payload_codec(
        self, key_ring: KeyRing | None = None
    ) -> temporalio.converter.PayloadCodec | None:
        """Encryption with ``key_ring`` or :meth:`key_ring`, compressing first if configured.

        A new codec on each call, from :meth:`EncryptionCodec.from_settings
        <shadow_sdk.codec.EncryptionCodec.from_settings>`. Decompression is on even
        when compression is off, so that payloads others compressed (inside the
        encryption) still decode.

        Raises:
            SettingsError: As :meth:`key_ring`.
        """
        from shadow_sdk.codec import EncryptionCodec  # noqa: PLC0415  Settings are data.

        return EncryptionCodec.from_settings(self, key_ring=key_ring or self.key_ring())

    def codec_server_key_rings(self) -> dict[str, KeyRing]:
        """Key ring by namespace for the codec server.

        From ``CODEC_SERVER_KEYS_DIR`` (a key directory per namespace, named after
        it) if set, else this worker's keys for ``TEMPORAL_NAMESPACE``. In a
        namespace's directory, ``CODEC_ACTIVE_KEY_ID`` names the active key if the
        directory holds that key, else its ``ACTIVE`` file does. Built by
        :meth:`KeyRing.by_namespace_from_settings
        <shadow_sdk.codec.KeyRing.by_namespace_from_settings>` on the first call.

        Raises:
            SettingsError: A directory's keys are invalid or its active key unclear.
        """
        from shadow_sdk.codec import KeyRing  # noqa: PLC0415  Settings are data.

        return self._built("key_rings", lambda: KeyRing.by_namespace_from_settings(self))

    def policy(self) -> Policy:
        """The roles and their grants: ``AUTH_POLICY_PATH``, or the default roles.

        Built by :meth:`Policy.from_settings <shadow_sdk.auth.Policy.from_settings>`
        on the first call.

        Raises:
            SettingsError: The policy file is invalid, or ``CODEC_SERVER_ANONYMOUS_ROLE``
                is not one of its roles.
        """
        from shadow_sdk.auth import Policy  # noqa: PLC0415  Settings are data.

        return self._built("policy", lambda: Policy.from_settings(self))

    def authorizer(self) -> Authorizer | None:
        """The token verifier and policy of a worker, or ``None`` without auth.

        Built by :meth:`Authorizer.from_settings <shadow_sdk.auth.Authorizer.from_settings>`
        with :meth:`policy` on the first call.

        Raises:
            SettingsError: The secret, key or JWKS that verifies tokens is not usable,
                or as :meth:`policy`.
        """
        from shadow_sdk.auth import Authorizer  # noqa: PLC0415  Settings are data.

        return self._built(
            "authorizer", lambda: Authorizer.from_settings(self, policy=self.policy())
        )

    def _built(self, name: str, build: Callable[[], _T]) -> _T:
        """The object ``build`` makes, made on the first call for ``name`` and kept."""
        if name not in self._runtime:
            self._runtime[name] = build()
        return cast("_T", self._runtime[name])
