"""Policy: which roles may do what, optionally only in some namespaces or workflow types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from shadow_sdk._exceptions import PermissionDenied, SettingsError
from shadow_sdk.auth._tokens import Identity

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

PERMISSIONS = frozenset(
    {
        "workflow:start",
        "workflow:signal",
        "workflow:query",
        "workflow:update",
        "workflow:cancel",
        "schedule:manage",
        "payload:decode",
        "payload:encode",
    }
)
"""Every permission a policy can grant; ``*`` grants them all."""


@dataclass(frozen=True)
class Grant:
    """A permission, possibly narrowed to some namespaces and workflow types.

    Attributes:
        permission: One of :data:`PERMISSIONS`, or ``*`` for all of them.
        namespaces: Where it applies; ``None`` means every namespace.
        workflow_types: Which workflow types it applies to; ``None`` means all.
    """

    permission: str
    namespaces: frozenset[str] | None = None
    workflow_types: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.permission != "*" and self.permission not in PERMISSIONS:
            raise ValueError(
                f"unknown permission {self.permission!r}; known: {', '.join(sorted(PERMISSIONS))}"
            )

    def covers(self, permission: str, namespace: str, workflow_type: str | None) -> bool:
        """Whether this grant allows ``permission`` in ``namespace`` on ``workflow_type``."""
        # A grant narrowed to workflow types covers no call that concerns no workflow type.
        return (
            self.permission in ("*", permission)
            and (self.namespaces is None or namespace in self.namespaces)
            and (self.workflow_types is None or workflow_type in self.workflow_types)
        )


DEFAULT_ROLES: Mapping[str, tuple[Grant, ...]] = {
    "admin": (Grant("*"),),
    "operator": tuple(
        Grant(permission)
        for permission in (
            "workflow:start",
            "workflow:signal",
            "workflow:query",
            "workflow:update",
            "workflow:cancel",
            "payload:decode",
            "payload:encode",
        )
    ),
    "viewer": (Grant("workflow:query"), Grant("payload:decode")),
}
"""``admin`` may do anything; ``operator`` anything on workflows and payloads but
managing schedules; ``viewer`` may query workflows and read payloads."""


class Policy:
    """Maps roles to grants, and decides whether an identity may do something.

    Args:
        roles: Grants by role name.
    """

    def __init__(self, roles: Mapping[str, Iterable[Grant]]) -> None:
        self.roles = {role: tuple(grants) for role, grants in roles.items()}

    @classmethod
    def default(cls) -> Policy:
        """The roles ``admin``, ``operator`` and ``viewer`` (see :data:`DEFAULT_ROLES`)."""
        return cls(DEFAULT_ROLES)

    @classmethod
    def from_mapping(cls, data: object, *, source: str = "policy") -> Policy:
        """Build a policy from plain data, as read from YAML or JSON.

        The shape is ``{"roles": {role: [grant, ...]}}``, where a grant is a
        permission string or a mapping with ``permission`` and optional
        ``namespaces`` and ``workflow_types`` lists::

            roles:
              support:
                - workflow:query
                - permission: workflow:signal
                  workflow_types: [OrderWorkflow]
                  namespaces: [orders]

        Raises:
            ValueError: The data has another shape or names an unknown permission;
                the message says where, starting with ``source``.
        """
        roles = data.get("roles") if isinstance(data, Mapping) else None
        if not isinstance(roles, Mapping):
            raise ValueError(f"{source}: expected a 'roles' mapping of role names to grants")
        return cls(
            {
                str(role): [
                    _grant(item, f"{source}: role {role!r}")
                    for item in _list(grants, f"{source}: role {role!r}")
                ]
                for role, grants in roles.items()
            }
        )

    @classmethod
    def from_yaml(cls, path: Path) -> Policy:
        """Read a policy from a YAML file (see :meth:`from_mapping` for its shape)."""
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not YAML: {error}") from None
        return cls.from_mapping(data or {}, source=str(path))

    @classmethod
    def from_settings(cls, settings: ShadowSettings) -> Policy:
        """The policy of ``AUTH_POLICY_PATH``, or the default roles when it is unset.

        The roles that other settings name must be roles of this policy:
        ``CODEC_SERVER_ANONYMOUS_ROLE``, if set, is one.

        Raises:
            SettingsError: The file is not a policy, or names an unknown permission
                (naming ``AUTH_POLICY_PATH``); or the anonymous role is not a role of
                the policy (naming ``CODEC_SERVER_ANONYMOUS_ROLE``).
        """
        if settings.auth_policy_path is None:
            policy = cls.default()
        else:
            try:
                policy = cls.from_yaml(settings.auth_policy_path)
            except ValueError as error:
                raise SettingsError([f"AUTH_POLICY_PATH: {error}"]) from None
        role = settings.codec_server_anonymous_role
        if role is not None and role not in policy.roles:
            where = "AUTH_POLICY_PATH" if settings.auth_policy_path else "the default policy"
            raise SettingsError(
                [f"CODEC_SERVER_ANONYMOUS_ROLE={role!r}: not a role of {where} "
                 f"({', '.join(sorted(policy.roles))})"]
            )  # fmt: skip
        return policy

    def allows(
        self,
        identity: Identity,
        permission: str,
        *,
        namespace: str,
        workflow_type: str | None = None,
    ) -> bool:
        """Whether ``identity`` may do ``permission`` in ``namespace`` (on ``workflow_type``)."""
        if permission not in PERMISSIONS:
            raise ValueError(f"permission: unknown permission {permission!r}")
        if identity.namespaces is not None and namespace not in identity.namespaces:
            return False
        return any(
            grant.covers(permission, namespace, workflow_type)
            for role in identity.roles
            for grant in self.roles.get(role, ())
        )

    def check(
        self,
        identity: Identity,
        permission: str,
        *,
        namespace: str,
        workflow_type: str | None = None,
    ) -> None:
        """Raise :class:`~shadow_sdk.PermissionDenied` unless :meth:`allows`."""
        if self.allows(identity, permission, namespace=namespace, workflow_type=workflow_type):
            return
        target = (
            f"{workflow_type} in namespace {namespace!r}"
            if workflow_type
            else f"namespace {namespace!r}"
        )
        if identity.namespaces is not None and namespace not in identity.namespaces:
            reason = f"the token of {identity.subject!r} is not valid for namespace {namespace!r}"
        else:
            roles = ", ".join(sorted(identity.roles)) or "no roles"
            reason = f"{identity.subject!r} ({roles}) may not {permission} on {target}"
        raise PermissionDenied(identity.subject, permission, reason)


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of grants")
    return value


def _grant(item: object, where: str) -> Grant:
    try:
        if isinstance(item, str):
            return Grant(item)
        if isinstance(item, Mapping) and isinstance(item.get("permission"), str):
            unknown = set(item) - {"permission", "namespaces", "workflow_types"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}")
            return Grant(
                item["permission"],
                namespaces=_names(item.get("namespaces"), "namespaces"),
                workflow_types=_names(item.get("workflow_types"), "workflow_types"),
            )
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    raise ValueError(f"{where}: a grant is a permission or a mapping with 'permission'")


def _names(value: object, key: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValueError(f"{key!r} is not a list of names")
    return frozenset(value)
