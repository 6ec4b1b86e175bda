"""One generic enforcer for every lifecycle's transition table.

A table maps (state, action) to a Rule(target, roles). `apply` answers in the order the
API promises after visibility (404) has been settled: a role that no rule for the action
admits → 403; a pair missing from the table → 409 naming the current state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeAlias, TypeVar

from receivables.auth.roles import Role
from receivables.kit.errors import Forbidden, IllegalTransition

S = TypeVar("S", bound=StrEnum)
A = TypeVar("A", bound=StrEnum)


@dataclass(frozen=True)
class Rule(Generic[S]):
    target: S
    roles: frozenset[Role]


Table: TypeAlias = Mapping[tuple[S, A], Rule[S]]


def rule(target: S, *roles: Role) -> Rule[S]:
    return Rule(target, frozenset(roles))


def apply(table: Table[S, A], state: S, action: A, role: Role) -> S:
    """The state `action` leads to from `state` for `role`, or a 403/409 error."""
    roles_for_action = {r for (_, a), found in table.items() if a == action for r in found.roles}
    if role not in roles_for_action:
        raise Forbidden(f"role '{role}' may not {action}")
    found = table.get((state, action))
    if found is None or role not in found.roles:
        raise IllegalTransition(f"cannot {action} while {state}")
    return found.target


def states_of(table: Table[S, A]) -> set[S]:
    return {s for s, _ in table} | {r.target for r in table.values()}
