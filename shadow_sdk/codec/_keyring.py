"""KeyRing: AES-256 keys by id, one of them active."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shadow_sdk._codec_values import KEY_BYTES, check_key_id, decode_key
from shadow_sdk._duration import Duration, to_timedelta
from shadow_sdk._exceptions import SettingsError, UnknownKeyError

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

ACTIVE_FILE = "ACTIVE"
"""In a key directory, the file that names the active key (optional)."""


class KeyRing:
    """AES-256-GCM keys by id: the active key encrypts, every key decrypts.

    Rotating a key is: add the new key, make it active, and keep the old one until
    no workflow history needs it any more.

    A key ring read from a directory (a Kubernetes secret mounted as files, one
    file per key, named by key id, holding the base64 key) reads the directory
    again, at most once a second, when asked for a key id it does not have. A
    key added to the secret is therefore picked up without a restart, and a
    workflow task that failed for want of it succeeds on its next retry.

    Args:
        keys: Key bytes by key id.
        active: Id of the key that encrypts; may be omitted when there is one key.
        directory: The directory the keys came from, read again on a miss.
        reload_interval: Least time between two readings of ``directory``, in seconds or
            as a timedelta.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        active: str | None = None,
        directory: Path | None = None,
        reload_interval: Duration = 1.0,
    ) -> None:
        if not keys:
            raise ValueError("keys: a key ring needs at least one key")
        for key_id, key in keys.items():
            check_key_id(key_id, source="keys")
            if len(key) != KEY_BYTES:
                raise ValueError(f"keys: key {key_id!r} is {len(key)} bytes, not {KEY_BYTES}")
        if active is None:
            if len(keys) > 1:
                raise ValueError(f"active: {len(keys)} keys are given; say which one encrypts")
            active = next(iter(keys))
        if active not in keys:
            raise ValueError(f"active: {active!r} is not one of the keys {sorted(keys)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active
        self._directory = directory
        self._reload_interval = to_timedelta(
            reload_interval, "reload_interval", non_negative=True
        ).total_seconds()
        self._lock = threading.Lock()
        self._last_reload = time.monotonic()

    @classmethod
    def from_directory(
        cls,
        directory: Path,
        *,
        active: str | None = None,
        reload_interval: Duration = 1.0,
        variable: str | None = None,
    ) -> KeyRing:
        """Read one key per file; the file name is the key id.

        The active key is ``active`` if given, else the id written in a file named
        ``ACTIVE`` in the directory, else the only key. Hidden files (such as the
        ``..data`` links Kubernetes makes) are ignored.

        Args:
            directory: The key directory.
            active: Id of the key that encrypts, overriding an ``ACTIVE`` file.
            reload_interval: See the class.
            variable: The setting that named the directory (``CODEC_KEYS_DIR``), for
                error messages.

        Raises:
            SettingsError: A key or key id is invalid, or the active key is unclear.
        """
        source = str(directory) if variable is None else f"{variable}={str(directory)!r}"
        keys = _read_directory(directory, source if variable is not None else None)
        if active is None and (directory / ACTIVE_FILE).is_file():
            active = (directory / ACTIVE_FILE).read_text().strip()
        if not keys:
            raise SettingsError([f"{source}: holds no key files"])
        if active is None and len(keys) > 1:
            raise SettingsError(
                [f"{source}: holds {len(keys)} keys; name the active one in CODEC_ACTIVE_KEY_ID "
                 f"or in a file named {ACTIVE_FILE}"]
            )  # fmt: skip
        if active is not None and active not in keys:
            raise SettingsError([f"{source}: active key {active!r} is not one of {sorted(keys)}"])
        return cls(keys, active=active, directory=directory, reload_interval=reload_interval)

    @classmethod
    def from_settings(cls, settings: ShadowSettings) -> KeyRing | None:
        """The keys of ``CODEC_KEYS_DIR`` or ``CODEC_KEYS``, or ``None`` when neither is set.

        The active key is ``CODEC_ACTIVE_KEY_ID``, or as :meth:`from_directory` says.
        The settings have checked the form of ``CODEC_KEYS`` already; the key
        directory is read here.

        Raises:
            SettingsError: A key file or key id of the directory is invalid, or its
                active key is unclear; the message names ``CODEC_KEYS_DIR``.
        """
        if settings.codec_keys_dir is not None:
            return cls.from_directory(
                settings.codec_keys_dir,
                active=settings.codec_active_key_id,
                variable="CODEC_KEYS_DIR",
            )
        if not settings.codec_keys:
            return None
        keys = {
            key_id: decode_key(key.get_secret_value(), key_id=key_id, source="CODEC_KEYS")
            for key_id, key in settings.codec_keys.items()
        }
        return cls(keys, active=settings.codec_active_key_id)

    @classmethod
    def by_namespace_from_settings(cls, settings: ShadowSettings) -> dict[str, KeyRing]:
        """Key ring by namespace for the codec server.

        From ``CODEC_SERVER_KEYS_DIR`` (a key directory per namespace, named after
        it) if set, else the worker's keys (:meth:`from_settings`) for
        ``TEMPORAL_NAMESPACE``. In a namespace's directory, ``CODEC_ACTIVE_KEY_ID``
        names the active key if the directory holds that key, else its ``ACTIVE``
        file does.

        Raises:
            SettingsError: A directory's keys are invalid or its active key unclear,
                or ``CODEC_ACTIVE_KEY_ID`` names a key that no directory holds.
        """
        if settings.codec_server_keys_dir is None:
            key_ring = cls.from_settings(settings)
            return {} if key_ring is None else {settings.temporal_namespace: key_ring}
        rings = {}
        wanted = settings.codec_active_key_id
        directories = [
            directory
            for directory in sorted(settings.codec_server_keys_dir.iterdir())
            if directory.is_dir() and not directory.name.startswith(".")
        ]
        if wanted is not None and not any((d / wanted).is_file() for d in directories):
            raise SettingsError(
                [f"CODEC_ACTIVE_KEY_ID={wanted!r}: no namespace directory of "
                 f"CODEC_SERVER_KEYS_DIR={str(settings.codec_server_keys_dir)!r} holds that key"]
            )  # fmt: skip
        for directory in directories:
            active = wanted if wanted is not None and (directory / wanted).is_file() else None
            rings[directory.name] = cls.from_directory(
                directory, active=active, variable="CODEC_SERVER_KEYS_DIR"
            )
        return rings

    @property
    def active_id(self) -> str:
        """Id of the key that encrypts."""
        return self._active

    @property
    def ids(self) -> tuple[str, ...]:
        """Ids of every key that decrypts, sorted."""
        return tuple(sorted(self._ciphers))

    def active_cipher(self) -> tuple[str, AESGCM]:
        """The active key's id and cipher."""
        return self._active, self._ciphers[self._active]

    def cipher(self, key_id: str) -> AESGCM:
        """The cipher of ``key_id``, reading the key directory again if it is new.

        Raises:
            UnknownKeyError: No key has that id.
        """
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            self._reload()
            cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(key_id, f"no such key; the key ring has {', '.join(self.ids)}")
        return cipher

    def _reload(self) -> None:
        if self._directory is None:
            return
        with self._lock:
            if time.monotonic() - self._last_reload < self._reload_interval:
                return
            self._last_reload = time.monotonic()
            try:
                keys = _read_directory(self._directory)
            except (OSError, SettingsError):
                return  # A half-written secret; the next miss tries again.
            self._ciphers = {
                **{key_id: AESGCM(key) for key_id, key in keys.items()},
                **self._ciphers,
            }

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self.ids)}, active={self._active!r})"


def _read_directory(directory: Path, source: str | None = None) -> dict[str, bytes]:
    keys = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name == ACTIVE_FILE or not path.is_file():
            continue
        key_id = check_key_id(path.name, source=source or str(directory))
        where = str(path) if source is None else f"{source}, file {path}"
        keys[key_id] = decode_key(path.read_text(), key_id=key_id, source=where)
    return keys
