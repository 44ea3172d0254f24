"""Order fulfilment as a part of the service: its workflow, activities and command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..parts import Part
from ..settings import Settings
from . import cli
from .activities import FulfilmentActivities
from .services import PaymentGateway, Warehouse
from .workflow import OrderFulfilmentWorkflow


def activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    """The fulfilment activities, with the in-memory systems: build real clients here."""
    return FulfilmentActivities(PaymentGateway(), Warehouse()).all()


PART = Part(
    name="error_handling",
    workflows=[OrderFulfilmentWorkflow],
    activities=activities,
    start_commands=cli.add_start_command,
)
