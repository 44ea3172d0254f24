from __future__ import annotations

from pathlib import Path

import pytest

from shadow_sdk import PermissionDenied
from shadow_sdk.auth import PERMISSIONS, Grant, Identity, Policy


def who(*roles: str, namespaces: set[str] | None = None) -> Identity:
    return Identity(
        "alice", frozenset(roles), None if namespaces is None else frozenset(namespaces)
    )


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("admin", {"workflow:start", "workflow:signal", "workflow:query", "workflow:update",
                   "workflow:cancel", "schedule:manage", "payload:decode", "payload:encode"}),
        ("operator", {"workflow:start", "workflow:signal", "workflow:query", "workflow:update",
                      "workflow:cancel", "payload:decode", "payload:encode"}),
        ("viewer", {"workflow:query", "payload:decode"}),
        ("unknown-role", set()),
    ],
)  # fmt: skip
def test_default_roles(role: str, allowed: set[str]) -> None:
    """admin may do all, operator all but schedules, viewer only read."""
    policy = Policy.default()

    granted = {p for p in PERMISSIONS if policy.allows(who(role), p, namespace="default")}

    assert granted == allowed


def test_grants_narrow_to_namespaces_and_workflow_types() -> None:
    """A narrowed grant applies only where it says."""
    policy = Policy(
        {"support": [Grant("workflow:signal", frozenset({"orders"}), frozenset({"OrderWorkflow"}))]}
    )
    support = who("support")

    assert policy.allows(
        support, "workflow:signal", namespace="orders", workflow_type="OrderWorkflow"
    )
    assert not policy.allows(
        support, "workflow:signal", namespace="billing", workflow_type="OrderWorkflow"
    )
    assert not policy.allows(
        support, "workflow:signal", namespace="orders", workflow_type="RefundWorkflow"
    )


def test_a_token_restricted_to_namespaces_is_refused_elsewhere() -> None:
    """The namespaces claim limits even an admin token."""
    with pytest.raises(PermissionDenied) as excinfo:
        Policy.default().check(
            who("admin", namespaces={"orders"}), "payload:decode", namespace="billing"
        )

    assert str(excinfo.value) == "the token of 'alice' is not valid for namespace 'billing'"


def test_a_denial_names_who_what_and_where() -> None:
    """The reason says which subject and roles lacked which permission, on what."""
    with pytest.raises(PermissionDenied) as excinfo:
        Policy.default().check(
            who("viewer"), "workflow:start", namespace="orders", workflow_type="OrderWorkflow"
        )

    assert excinfo.value.permission == "workflow:start"
    assert (
        str(excinfo.value)
        == "'alice' (viewer) may not workflow:start on OrderWorkflow in namespace 'orders'"
    )


def test_loads_a_yaml_policy(tmp_path: Path) -> None:
    """Roles, plain grants and narrowed grants come from YAML."""
    path = tmp_path / "policy.yaml"
    path.write_text(
        "roles:\n"
        "  support:\n"
        "    - workflow:query\n"
        "    - permission: workflow:signal\n"
        "      workflow_types: [OrderWorkflow]\n"
    )

    policy = Policy.from_yaml(path)

    assert policy.roles == {
        "support": (
            Grant("workflow:query"),
            Grant("workflow:signal", None, frozenset({"OrderWorkflow"})),
        )
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("roles:\n  support: [workflow:strat]\n",
         "role 'support': unknown permission 'workflow:strat'"),
        ("roles: [a, b]\n", "expected a 'roles' mapping"),
        ("roles:\n  support: workflow:query\n", "role 'support': expected a list of grants"),
        ("roles:\n  support:\n    - {permission: workflow:query, namespace: [x]}\n",
         "role 'support': unknown keys ['namespace']"),
        ("roles: {support: [", "not YAML"),
    ],
)  # fmt: skip
def test_a_bad_policy_file_says_what_and_where(tmp_path: Path, text: str, problem: str) -> None:
    """Typos in permissions or keys fail loading, naming the file and the role."""
    path = tmp_path / "policy.yaml"
    path.write_text(text)

    with pytest.raises(ValueError, match="policy.yaml: ") as excinfo:
        Policy.from_yaml(path)

    assert problem in str(excinfo.value)


def test_a_grant_narrowed_to_workflow_types_covers_nothing_else() -> None:
    """A type-restricted wildcard does not open calls that concern no workflow type."""
    policy = Policy({"orders": [Grant("*", workflow_types=frozenset({"OrderWorkflow"}))]})

    assert policy.allows(
        who("orders"), "workflow:start", namespace="n", workflow_type="OrderWorkflow"
    )
    assert not policy.allows(who("orders"), "payload:decode", namespace="n")
