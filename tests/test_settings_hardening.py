"""Settings that used to fail late, or not at all, are refused when read, naming the variable."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest
from pydantic_settings import SettingsConfigDict

from shadow_sdk import SettingsError, ShadowSettings
from shadow_sdk._settings import LEGACY_VARIABLES
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.testing import BackgroundProcess, free_port


def problems_of(excinfo: pytest.ExceptionInfo[SettingsError]) -> tuple[str, ...]:
    return excinfo.value.problems


def test_one_workflow_poller_is_refused_while_workflows_are_cached() -> None:
    """temporalio refuses it only when the worker starts, after connecting."""
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(worker_workflow_task_pollers=1)

    assert problems_of(excinfo) == (
        "WORKER_WORKFLOW_TASK_POLLERS=1: a worker that caches workflows polls its sticky "
        "queue too and needs at least 2; set 2 or more, or WORKER_MAX_CACHED_WORKFLOWS=0",
    )
    ShadowSettings(worker_workflow_task_pollers=1, worker_max_cached_workflows=0)
    ShadowSettings(worker_workflow_task_pollers=1, worker_poller_autoscaling=True)


@pytest.mark.parametrize(
    "url",
    [
        "not-a-url-s3cret",
        "http://:s3cret@redis:6379/0",
        "redis://:s3cret@",
        "redis://:s3cret@redis:port/0",
        "unix://s3cret",
    ],
)
def test_a_redis_url_that_is_not_one_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """The URL may hold a password, so the message shows the expected form, not the value."""
    monkeypatch.setenv("REDIS_URL", url)

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings()

    [problem] = problems_of(excinfo)
    assert problem.startswith("REDIS_URL: expected redis://host:6379/0, rediss://")
    assert "s3cret" not in problem


@pytest.mark.parametrize(
    "url",
    ["redis://redis:6379/0", "rediss://:secret@redis.internal:6380/1", "unix:///run/redis.sock"],
)
def test_redis_urls_of_every_kind_are_accepted(url: str) -> None:
    assert ShadowSettings(redis_url=url).redis_url is not None


def test_an_empty_key_directory_is_named_by_its_variable(tmp_path: Path) -> None:
    """The directory is read when the keys are needed, as a worker does before connecting."""
    settings = ShadowSettings(codec_keys_dir=tmp_path)

    with pytest.raises(SettingsError) as excinfo:
        settings.key_ring()

    assert problems_of(excinfo) == (f"CODEC_KEYS_DIR={str(tmp_path)!r}: holds no key files",)


def test_an_anonymous_role_the_policy_lacks_is_refused() -> None:
    """A mistyped role used to start a codec server that then refused every request."""
    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings(codec_server_anonymous_role="veiwer").policy()

    assert problems_of(excinfo) == (
        "CODEC_SERVER_ANONYMOUS_ROLE='veiwer': not a role of the default policy "
        "(admin, operator, viewer)",
    )
    assert "viewer" in ShadowSettings(codec_server_anonymous_role="viewer").policy().roles


@pytest.mark.parametrize("variable", sorted(LEGACY_VARIABLES))
def test_variables_of_the_replaced_system_are_refused_naming_what_to_set(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A .env written for the old system must not run without encryption or authorization."""
    monkeypatch.setenv(variable, "value-of-the-old-system")

    with pytest.raises(SettingsError) as excinfo:
        ShadowSettings()

    [problem] = problems_of(excinfo)
    assert problem.startswith(f"{variable}: a variable of the system this kit replaces")
    assert LEGACY_VARIABLES[variable] in problem
    assert "value-of-the-old-system" not in problem


def test_the_replacements_are_named() -> None:
    assert "AUTH_HS256_SECRET" in LEGACY_VARIABLES["JWT_SECRET"]
    assert "CODEC_KEYS" in LEGACY_VARIABLES["ENCRYPTION_KEY"]
    assert "WORKER_MAX_CONCURRENT_ACTIVITIES" in LEGACY_VARIABLES["WORKER_CONCURRENCY"]
    assert "WORKER_MAX_CACHED_WORKFLOWS" in LEGACY_VARIABLES["MAX_CACHED_WORKFLOWS"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in LEGACY_VARIABLES["JAEGER_ENDPOINT"]
    assert "database_url" in LEGACY_VARIABLES["DATABASE_URL"]


def test_a_service_that_declares_a_database_url_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable the service's own settings declare is the service's, not a leftover."""

    class Settings(ShadowSettings):
        database_url: str | None = None

    monkeypatch.setenv("DATABASE_URL", "postgresql://db/orders")

    assert Settings().database_url == "postgresql://db/orders"
    with pytest.raises(SettingsError):
        ShadowSettings()


def test_a_dotenv_file_of_the_old_system_is_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("JWT_SECRET=old\nTEMPORAL_TASK_QUEUE=orders\n")

    class Settings(ShadowSettings):
        model_config = SettingsConfigDict(env_file=env_file)

    with pytest.raises(SettingsError) as excinfo:
        Settings()

    assert problems_of(excinfo)[0].startswith("JWT_SECRET: a variable of the system")


def shadow_codec_server(env: dict[str, str]) -> BackgroundProcess:
    """`shadow codec-server` with ``env`` added to this environment, started."""
    return BackgroundProcess(
        [sys.executable, "-c", "from shadow_sdk._cli import main; main()", "codec-server"],
        {**os.environ, **env},
        name="shadow codec-server",
    ).start()


def write_keys(directory: Path, *ids: str) -> None:
    directory.mkdir(parents=True)
    for index, key_id in enumerate(ids):
        (directory / key_id).write_text(base64.b64encode(bytes([index]) * 32).decode())


def test_the_codec_server_honours_the_active_key_setting_in_namespace_directories(
    tmp_path: Path,
) -> None:
    """Two keys in a namespace's directory and no ACTIVE file: CODEC_ACTIVE_KEY_ID decides."""
    write_keys(tmp_path / "orders", "2026-11", "2026-12")
    write_keys(tmp_path / "billing", "b-1")
    port = free_port()
    server = shadow_codec_server(
        {
            "CODEC_SERVER_KEYS_DIR": str(tmp_path),
            "CODEC_ACTIVE_KEY_ID": "2026-12",
            "CODEC_SERVER_PORT": str(port),
            "CODEC_SERVER_ANONYMOUS_ROLE": "viewer",
        }
    )
    with server:
        server.wait_until_listening(port)
    output = server.output

    assert "codec server on http://127.0.0.1" in output
    assert "billing, orders" in output
    settings = ShadowSettings(
        codec_server_keys_dir=tmp_path, codec_active_key_id="2026-12", temporal_namespace="orders"
    )
    rings = KeyRing.by_namespace_from_settings(settings)
    assert {name: ring.active_id for name, ring in rings.items()} == {
        "billing": "b-1",
        "orders": "2026-12",
    }


def test_the_codec_server_refuses_an_active_key_that_no_namespace_holds(tmp_path: Path) -> None:
    """A mistyped CODEC_ACTIVE_KEY_ID once fell back to the directories' ACTIVE files."""
    write_keys(tmp_path / "orders", "2026-11", "2026-12")
    (tmp_path / "orders" / "ACTIVE").write_text("2026-11")
    server = shadow_codec_server(
        {
            "CODEC_SERVER_KEYS_DIR": str(tmp_path),
            "CODEC_ACTIVE_KEY_ID": "2026-1x",
            "CODEC_SERVER_PORT": str(free_port()),
        }
    )
    code, output = server.wait(60), server.output

    assert code == 2
    assert (
        "CODEC_ACTIVE_KEY_ID='2026-1x': no namespace directory of CODEC_SERVER_KEYS_DIR" in output
    )
    assert "codec server on" not in output


def test_the_codec_server_without_an_active_key_names_both_ways_to_choose(tmp_path: Path) -> None:
    write_keys(tmp_path / "orders", "2026-11", "2026-12")
    server = shadow_codec_server(
        {"CODEC_SERVER_KEYS_DIR": str(tmp_path), "CODEC_SERVER_PORT": str(free_port())}
    )
    code, output = server.wait(60), server.output

    assert code == 2
    assert f"CODEC_SERVER_KEYS_DIR={str(tmp_path / 'orders')!r}: holds 2 keys" in output
    assert "CODEC_ACTIVE_KEY_ID" in output


def test_the_codec_server_checks_its_policy_and_anonymous_role_before_serving(
    tmp_path: Path,
) -> None:
    """A mistyped anonymous role stops the codec server, exit 2, as it did when settings held it."""
    write_keys(tmp_path / "orders", "k1")
    server = shadow_codec_server(
        {
            "CODEC_SERVER_KEYS_DIR": str(tmp_path),
            "CODEC_SERVER_PORT": str(free_port()),
            "CODEC_SERVER_ANONYMOUS_ROLE": "veiwer",
        }
    )
    code, output = server.wait(60), server.output

    assert code == 2
    assert "CODEC_SERVER_ANONYMOUS_ROLE='veiwer': not a role of the default policy" in output
    assert "codec server on" not in output


def test_the_decoding_limits_reach_the_codec() -> None:
    settings = ShadowSettings(
        codec_keys={"k": base64.b64encode(bytes(32)).decode()},
        codec_compression_threshold=100,
        codec_max_decoded_bytes=1 << 20,
        codec_max_payloads=5,
    )

    codec = settings.payload_codec()

    assert isinstance(codec, EncryptionCodec)
    assert codec.compression is not None
    assert (codec.max_decoded_bytes, codec.max_payloads) == (1 << 20, 5)
    assert (codec.compression.max_decoded_bytes, codec.compression.max_payloads) == (1 << 20, 5)
