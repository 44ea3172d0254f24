"""Tools the kit's tests run: uv, nox and the validators the test dependency group installs."""

from __future__ import annotations

import sys

import pytest

from shadow_sdk import BinaryNotFoundError
from shadow_sdk.testing import find_binary


def tool(name: str) -> str:
    """``name`` installed next to this Python (the test dependency group has it), else on PATH.

    A test that needs a tool that is in neither place fails and says so.
    """
    try:
        return str(find_binary(name, name))
    except BinaryNotFoundError as error:
        pytest.fail(
            f"{name} is not installed next to {sys.executable} or on PATH (searched: "
            f"{', '.join(error.searched)}): install the test dependency group",
            pytrace=False,
        )
