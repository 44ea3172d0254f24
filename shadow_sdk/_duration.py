"""Durations in the public API: seconds or a :class:`~datetime.timedelta`, everywhere alike.

Every parameter of shadow_sdk that is a duration (a timeout, a TTL, an interval,
a leeway) is typed :data:`Duration` and goes through :func:`to_timedelta`, so
that ``open_duration=30``, ``open_duration=2.5`` and
``open_duration=timedelta(seconds=30)`` mean the same thing wherever they are
written, and a wrong value is refused with the same message naming the
parameter. What the SDK keeps, and reports back in attributes, is always a
``timedelta``.

Settings read from the environment have their own type,
:data:`shadow_sdk.Seconds`, which also parses text (``"30"``, ``"PT1M"``).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TypeAlias

Duration: TypeAlias = timedelta | float
"""A duration: seconds (``int`` or ``float``) or a :class:`~datetime.timedelta`."""


def to_timedelta(
    value: object, name: str, *, positive: bool = False, non_negative: bool = False
) -> timedelta:
    """``value`` as a timedelta, or a ``ValueError`` that names the parameter.

    Args:
        value: Seconds (an ``int`` or ``float``, not a ``bool``) or a timedelta.
        name: The parameter's name, for the error message.
        positive: Refuse zero and negative durations.
        non_negative: Refuse negative durations.

    Raises:
        ValueError: ``value`` is of another type, not finite, or out of range.
    """
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
        try:
            duration = timedelta(seconds=value)
        except OverflowError:
            raise ValueError(f"{name} is too long: {value!r} s") from None
    else:
        raise ValueError(f"{name} must be seconds or a timedelta, got {value!r}")
    if positive and duration <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {duration.total_seconds():g} s")
    if non_negative and duration < timedelta(0):
        raise ValueError(f"{name} must not be negative, got {duration.total_seconds():g} s")
    return duration


def to_timedelta_or_none(
    value: object, name: str, *, positive: bool = False, non_negative: bool = False
) -> timedelta | None:
    """:func:`to_timedelta`, letting ``None`` (an option that is off) through."""
    if value is None:
        return None
    return to_timedelta(value, name, positive=positive, non_negative=non_negative)
