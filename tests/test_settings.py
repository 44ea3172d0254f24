from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field, Secret, SecretBytes
from pydantic_settings import SettingsConfigDict

from shadow_sdk import SettingsError, ShadowSettings

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n"


def problems_of(excinfo: pytest.ExceptionInfo[SettingsError]) -> str:
    return "\n".join(excinfo.value.problems)


def test_reads_environment_variables_named_after_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each field comes from the upper-case variable of its name."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "orders")
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", "orders-queue")
    monkeypatch.setenv("WORKER_MAX_CONCURRENT_ACTIVITIES", "25")
    monkeypatch.setenv("WORKER_GRACEFUL_SHUTDOWN_TIMEOUT", "2.5")

    settings = ShadowSettings()

    assert settings.temporal_address == "temporal.internal:7233"
    assert settings.temporal_namespace == "orders"
    assert settings.temporal_task_queue == "orders-queue"
    assert settings.worker_max_concurrent_activities == 25
    assert settings.worker_graceful_shutdown_timeout == timedelta(seconds=2.5)


def test_keyword_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit values win over variables, so tests and tools can pin what they need."""
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", "from-env")

    assert ShadowSettings(temporal_task_queue="explicit").temporal_task_queue == "explicit"


def test_durations_accept_iso_8601(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durations are seconds or ISO 8601, whichever an operator finds clearer."""
    monkeypatch.setenv("WORKER_GRACEFUL_SHUTDOWN_TIMEOUT", "PT1M30S")

    settings = ShadowSettings(temporal_task_queue="q")

    assert settings.worker_graceful_shutdown_timeout == timedelta(seconds=90)


def test_every_invalid_variable_is_named_with_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """One start-up error lists every bad variable, its value and why it is wrong."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", "no-port-here")
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", "has space")
    monkeypatch.setenv("TEMPORAL_TLS", "maybe")
    monkeypatch.setenv("WORKER_GRACEFUL_SHUTDOWN_TIMEOUT", "-3")
    monkeypatch.setenv("WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", "1")

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings()

    assert excinfo.value.problems == (
        "TEMPORAL_ADDRESS='no-port-here': expected host:port, for example localhost:7233",
        "TEMPORAL_TASK_QUEUE='has space': must not be empty or contain whitespace",
        "TEMPORAL_TLS='maybe': Input should be a valid boolean, unable to interpret input",
        "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS='1': Input should be greater than or equal to 2",
        "WORKER_GRACEFUL_SHUTDOWN_TIMEOUT='-3': must be more than 0 seconds",
    )
    assert str(excinfo.value).startswith("invalid settings:\n  TEMPORAL_ADDRESS=")


def test_the_task_queue_is_optional_for_tools() -> None:
    """Only a worker needs a task queue (see test_worker); tools and clients may omit it."""
    assert ShadowSettings().temporal_task_queue is None


@pytest.mark.parametrize("address", ["localhost", "localhost:0", "localhost:70000", "a b:7233"])
def test_addresses_must_be_host_and_port(address: str) -> None:
    """Anything but host:port with a valid port is refused before connecting."""
    with pytest.raises(SettingsError, match="TEMPORAL_ADDRESS"):
        ShadowSettings(temporal_address=address, temporal_task_queue="q")


@pytest.mark.parametrize("address", ["localhost:7233", "10.0.0.7:443", "[::1]:7233"])
def test_accepts_host_names_ipv4_and_ipv6(address: str) -> None:
    """The address check does not reject valid hosts."""
    assert ShadowSettings(temporal_address=address, temporal_task_queue="q").temporal_address == (
        address
    )


def test_secrets_never_appear_in_errors_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid or valid secret is never echoed, so logs of a failed start stay clean."""
    monkeypatch.setenv("TEMPORAL_API_KEY", "api-key-material")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_DATA", KEY)
    monkeypatch.setenv("TEMPORAL_GRPC_META", '{"authorization": "Bearer token-material"}')

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(temporal_task_queue="q")  # A key without its certificate is invalid.
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_DATA", CERT)
    settings = ShadowSettings(temporal_task_queue="q")

    for text in (str(excinfo.value), repr(settings), str(settings)):
        for secret in ("api-key-material", "secret-key-material", "token-material"):
            assert secret not in text


def test_a_secret_with_a_bad_shape_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A secret that fails validation is reported by name only."""
    monkeypatch.setenv("TEMPORAL_GRPC_META", "not-json-token-material")

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(temporal_task_queue="q")

    assert problems_of(excinfo).startswith("TEMPORAL_GRPC_META: ")
    assert "token-material" not in str(excinfo.value)


def test_api_key_turns_tls_on_as_the_temporal_cli_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """TEMPORAL_API_KEY alone means TLS, unless TEMPORAL_TLS says otherwise."""
    monkeypatch.setenv("TEMPORAL_API_KEY", "key")
    settings = ShadowSettings(temporal_task_queue="q")

    config = settings.client_connect_config()

    assert config["api_key"] == "key"
    assert config["tls"] is True
    no_tls = ShadowSettings(temporal_task_queue="q", temporal_tls=False)
    assert no_tls.client_connect_config()["tls"] is False


def test_plain_connection_has_no_tls() -> None:
    """Without TLS options the client connects in plain text, as to a dev server."""
    config = ShadowSettings(temporal_task_queue="q").client_connect_config()

    assert config == {"target_host": "localhost:7233", "namespace": "default"}


def test_tls_files_are_read_into_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mounted certificate files end up, as bytes, in the client's TLS configuration."""
    (tmp_path / "ca.pem").write_text(CERT)
    (tmp_path / "client.pem").write_text(CERT)
    (tmp_path / "client.key").write_text(KEY)
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "client.key"))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal.internal")

    tls = ShadowSettings(temporal_task_queue="q").client_connect_config()["tls"]

    assert not isinstance(tls, bool)
    assert tls.server_root_ca_cert == CERT.encode()
    assert tls.client_cert == CERT.encode()
    assert tls.client_private_key == KEY.encode()
    assert tls.domain == "temporal.internal"


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    """A path that points nowhere fails at start-up, not at the first TLS handshake."""
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(
            temporal_task_queue="q",
            temporal_tls_server_ca_cert_path=tmp_path / "missing.pem",
        )

    assert problems_of(excinfo) == (
        f"TEMPORAL_TLS_SERVER_CA_CERT_PATH='{tmp_path / 'missing.pem'}': "
        "Path does not point to a file"
    )


def test_path_and_data_for_one_certificate_conflict(tmp_path: Path) -> None:
    """Giving a certificate twice is ambiguous and refused."""
    (tmp_path / "ca.pem").write_text(CERT)

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(
            temporal_task_queue="q",
            temporal_tls_server_ca_cert_path=tmp_path / "ca.pem",
            temporal_tls_server_ca_cert_data=CERT,
        )

    assert problems_of(excinfo) == (
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_CA_CERT_DATA are both set; "
        "keep one"
    )


def test_reads_a_temporal_profile_through_envconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TOML profile supplies the connection; environment variables override it."""
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        "[profile.staging]\n"
        'address = "staging.internal:7233"\n'
        'namespace = "staging"\n'
        'api_key = "profile-key"\n'
        "[profile.staging.grpc_meta]\n"
        'x-team = "payments"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "staging")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "from-env")

    config = ShadowSettings(temporal_task_queue="q").client_connect_config()

    assert config["target_host"] == "staging.internal:7233"
    assert config["namespace"] == "from-env"
    assert config["api_key"] == "profile-key"
    assert config["rpc_metadata"] == {"x-team": "payments"}


def test_reads_the_default_profile_from_the_default_location(isolated_environment: Path) -> None:
    """Like the Temporal CLI, the default profile of the user's config file applies."""
    config_dir = isolated_environment / ".config" / "temporalio"
    config_dir.mkdir(parents=True)
    (config_dir / "temporal.toml").write_text('[profile.default]\naddress = "dev.box:7233"\n')

    assert ShadowSettings(temporal_task_queue="q").temporal_address == "dev.box:7233"


def test_an_unknown_profile_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for a profile the file does not have is an error, not a silent default."""
    config_file = tmp_path / "temporal.toml"
    config_file.write_text('[profile.default]\naddress = "a:1"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(temporal_task_queue="q")

    assert problems_of(excinfo) == f"TEMPORAL_PROFILE: Profile 'prod' not found ({config_file})"


def test_a_missing_config_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """temporalio.envconfig ignores a missing file; the settings do not."""
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "nope.toml"))

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(temporal_task_queue="q")

    assert problems_of(excinfo) == (
        f"TEMPORAL_CONFIG_FILE='{tmp_path / 'nope.toml'}': Path does not point to a file"
    )


def test_services_extend_settings_by_subclassing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A subclass adds fields and defaults, read and validated the same way."""

    class Settings(ShadowSettings):
        temporal_task_queue: str = "orders"
        orders_api_timeout: int = 5

    monkeypatch.setenv("ORDERS_API_TIMEOUT", "soon")

    with pytest.raises(SettingsError) as excinfo:
        Settings()

    assert problems_of(excinfo) == (
        "ORDERS_API_TIMEOUT='soon': Input should be a valid integer, unable to parse string as an "
        "integer"
    )
    monkeypatch.setenv("ORDERS_API_TIMEOUT", "9")
    assert Settings().orders_api_timeout == 9
    assert Settings().temporal_task_queue == "orders"


def test_settings_are_immutable() -> None:
    """Settings are read once at start-up; nothing changes them behind the worker's back."""
    settings = ShadowSettings(temporal_task_queue="q")

    with pytest.raises(Exception, match="frozen"):
        settings.temporal_task_queue = "other"  # type: ignore[misc]


def test_grpc_metadata_variables_follow_the_temporal_convention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TEMPORAL_GRPC_META_<NAME> adds a header, as it does for the Temporal CLI."""
    monkeypatch.setenv("TEMPORAL_GRPC_META_X_TEAM", "payments")

    config = ShadowSettings(temporal_task_queue="q").client_connect_config()

    assert config["rpc_metadata"] == {"x-team": "payments"}


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deployment tools often render unset values as empty strings; defaults then apply."""
    monkeypatch.setenv("WORKER_MAX_CONCURRENT_ACTIVITIES", "")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "")

    settings = ShadowSettings(temporal_task_queue="q")

    assert settings.worker_max_concurrent_activities is None
    assert settings.temporal_namespace == "default"


def test_a_broken_profile_never_quotes_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TOML parser quotes the bad line; the error keeps its position, not its text."""
    config_file = tmp_path / "temporal.toml"
    config_file.write_text('[profile.default]\napi_key = "api-key-material\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(temporal_task_queue="q")

    assert problems_of(excinfo).startswith("TEMPORAL_CONFIG_FILE: ")
    assert "line 2" in str(excinfo.value)
    assert "api-key-material" not in str(excinfo.value)


def test_a_certificate_from_the_environment_replaces_the_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Environment over profile holds per certificate, whether each gives a path or data."""
    (tmp_path / "client.pem").write_text(CERT)
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        f"[profile.default.tls]\nclient_cert_data = '''{CERT}'''\nclient_key_data = '''{KEY}'''\n"
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))

    settings = ShadowSettings(temporal_task_queue="q")

    assert settings.temporal_tls_client_cert_path == tmp_path / "client.pem"
    assert settings.temporal_tls_client_cert_data is None
    assert settings.temporal_tls_client_key_data is not None
    assert settings.temporal_tls_client_key_data.get_secret_value() == KEY


def test_a_missing_file_in_a_profile_names_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path in the profile is blamed on the profile, not on a variable nobody set."""
    config_file = tmp_path / "temporal.toml"
    config_file.write_text('[profile.staging.tls]\nserver_ca_cert_path = "/nowhere/ca.pem"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "staging")

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(temporal_task_queue="q")

    assert problems_of(excinfo) == (
        f"profile 'staging' of {config_file}: tls_server_ca_cert_path '/nowhere/ca.pem' "
        "does not point to a file"
    )


def test_unparsable_json_in_a_services_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list or dict setting that is not JSON fails as a SettingsError naming it."""

    class Settings(ShadowSettings):
        temporal_task_queue: str = "q"
        allowed_regions: list[str] = Field(default_factory=list)

    monkeypatch.setenv("ALLOWED_REGIONS", "eu-west-1")

    with pytest.raises(SettingsError) as excinfo:
        Settings()

    assert problems_of(excinfo).startswith("ALLOWED_REGIONS: cannot be parsed: Expecting value")


def test_every_kind_of_secret_is_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """SecretBytes and pydantic.Secret fields of a service are never echoed either."""

    class Settings(ShadowSettings):
        temporal_task_queue: str = "q"
        signing_key: Annotated[SecretBytes, Field(max_length=16)]
        pin: Secret[int]

    monkeypatch.setenv("SIGNING_KEY", "x" * 10_000)
    monkeypatch.setenv("PIN", "pin-material")

    with pytest.raises(SettingsError) as excinfo:
        Settings()

    assert "xxxxxxxx" not in str(excinfo.value)
    assert "pin-material" not in str(excinfo.value)
    assert "SIGNING_KEY: " in str(excinfo.value)
    assert "PIN: " in str(excinfo.value)


def test_a_service_can_read_a_dotenv_file_and_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """env_file and secrets_dir work in subclasses; variables still win over both."""
    (tmp_path / ".env").write_text(
        "TEMPORAL_TASK_QUEUE=from-dotenv\nTEMPORAL_NAMESPACE=dotenv-ns\n"
    )
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "temporal_api_key").write_text("mounted-key")

    class Settings(ShadowSettings):
        model_config = SettingsConfigDict(
            env_file=tmp_path / ".env", secrets_dir=tmp_path / "secrets"
        )

    monkeypatch.setenv("TEMPORAL_NAMESPACE", "env-ns")

    settings = Settings()

    assert settings.temporal_task_queue == "from-dotenv"
    assert settings.temporal_namespace == "env-ns"
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == "mounted-key"


def test_operations_settings_come_from_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ops server, logs and traces follow the usual names, OpenTelemetry's included."""
    monkeypatch.setenv("METRICS_PORT", "9100")
    monkeypatch.setenv("METRICS_HOST", "127.0.0.1")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders-worker")

    settings = ShadowSettings()

    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9100)
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert settings.otel_exporter_otlp_endpoint == "http://collector:4318"
    assert settings.otel_service_name == "orders-worker"


def test_invalid_operations_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "70000")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    monkeypatch.setenv("WORKER_TUNER", "magic")
    monkeypatch.setenv("WORKER_TARGET_CPU_USAGE", "1.5")

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings()

    problems = problems_of(excinfo)
    assert "METRICS_PORT='70000': Input should be less than 65536" in problems
    assert "LOG_FORMAT='xml': Input should be 'text' or 'json'" in problems
    assert "WORKER_TUNER='magic': Input should be 'fixed' or 'resource-based'" in problems
    assert "WORKER_TARGET_CPU_USAGE='1.5': Input should be less than or equal to 1" in problems


def test_the_hard_cap_must_leave_room_for_the_graceful_drain() -> None:
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(worker_graceful_shutdown_timeout=30, worker_shutdown_timeout=20)

    assert excinfo.value.problems == (
        "WORKER_SHUTDOWN_TIMEOUT: must be longer than WORKER_GRACEFUL_SHUTDOWN_TIMEOUT (30 s), "
        "which it caps",
    )


def test_the_resource_based_tuner_excludes_fixed_slot_counts() -> None:
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(worker_tuner="resource-based", worker_max_concurrent_activities=10)

    assert excinfo.value.problems == (
        "WORKER_TUNER=resource-based and WORKER_MAX_CONCURRENT_ACTIVITIES are both set; "
        "the tuner decides the slots",
    )


def test_the_shutdown_cap_defaults_to_the_graceful_timeout_plus_a_margin() -> None:
    """Kubernetes' grace period is sized from it; an explicit cap wins."""
    assert ShadowSettings(worker_graceful_shutdown_timeout=20).shutdown_cap() == timedelta(
        seconds=30
    )
    assert ShadowSettings(
        worker_graceful_shutdown_timeout=20, worker_shutdown_timeout=45
    ).shutdown_cap() == timedelta(seconds=45)


def test_the_deployment_name_decides_whether_a_worker_is_versioned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A build id alone is ignored (images carry one); a name without one is refused."""
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", "q")
    monkeypatch.setenv("TEMPORAL_WORKER_BUILD_ID", "3f2a9c1")

    assert not ShadowSettings().versioned
    monkeypatch.setenv("TEMPORAL_DEPLOYMENT_NAME", "orders")
    assert ShadowSettings().versioned
    # An image built without a build id has an empty one, which counts as unset.
    monkeypatch.setenv("TEMPORAL_WORKER_BUILD_ID", "")
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings()
    assert problems_of(excinfo).startswith(
        "TEMPORAL_WORKER_BUILD_ID: a versioned worker needs a build id besides "
        "TEMPORAL_DEPLOYMENT_NAME='orders'"
    )
