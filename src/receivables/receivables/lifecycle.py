"""The receivable's lifecycle: one table, pure (DESIGN.md "Receivable")."""

from __future__ import annotations

from enum import StrEnum

from receivables.auth.roles import Role
from receivables.kit.transitions import Rule, Table, rule


class ReceivableStatus(StrEnum):
    submitted = "submitted"
    """Awaiting the debtor's confirmation."""
    confirmed = "confirmed"
    """The debtor confirmed amount and due date; it may be listed."""
    disputed = "disputed"
    """The debtor disputed it; the seller may amend it."""
    listed = "listed"
    """An auction for it is open."""
    awarded = "awarded"
    """A bid won; the deal awaits the bank's funding."""
    financed = "financed"
    """The bank funded escrow and the seller was paid its advance."""
    overdue = "overdue"
    defaulted = "defaulted"
    settled = "settled"
    """The debt was repaid in full; terminal."""
    expired = "expired"
    """Not confirmed within the confirmation window; terminal, fingerprint freed."""
    cancelled = "cancelled"
    """Withdrawn by the seller; terminal, fingerprint freed."""


class ReceivableAction(StrEnum):
    confirm = "confirm"
    dispute = "dispute"
    amend = "amend"
    cancel = "cancel"
    expire = "expire"
    list = "list"
    delist = "delist"
    """The auction ended without a deal (cancelled or expired)."""
    award = "award"
    unaward = "unaward"
    """The winning bank missed its funding deadline."""
    finance = "finance"
    mark_overdue = "mark_overdue"
    mark_defaulted = "mark_defaulted"
    settle = "settle"


S, A = ReceivableStatus, ReceivableAction

RECEIVABLE_TRANSITIONS: Table[ReceivableStatus, ReceivableAction] = {
    (S.submitted, A.confirm): rule(S.confirmed, Role.core),
    (S.submitted, A.dispute): rule(S.disputed, Role.core),
    (S.disputed, A.amend): rule(S.submitted, Role.sme),
    (S.submitted, A.expire): rule(S.expired, Role.system),
    (S.submitted, A.cancel): rule(S.cancelled, Role.sme),
    (S.disputed, A.cancel): rule(S.cancelled, Role.sme),
    (S.confirmed, A.cancel): rule(S.cancelled, Role.sme),
    (S.confirmed, A.list): rule(S.listed, Role.sme),
    (S.listed, A.delist): rule(S.confirmed, Role.sme, Role.system),
    (S.listed, A.award): rule(S.awarded, Role.sme, Role.system),
    (S.awarded, A.unaward): rule(S.confirmed, Role.system),
    (S.awarded, A.finance): rule(S.financed, Role.bank),
    (S.financed, A.mark_overdue): rule(S.overdue, Role.system),
    (S.overdue, A.mark_defaulted): rule(S.defaulted, Role.system),
    (S.financed, A.settle): rule(S.settled, Role.core, Role.sme),
    (S.overdue, A.settle): rule(S.settled, Role.core, Role.sme),
    (S.defaulted, A.settle): rule(S.settled, Role.core, Role.sme),
}

TERMINAL = frozenset({S.settled, S.expired, S.cancelled})
REGISTRY_FREED = frozenset({S.expired, S.cancelled})
"""States in which the fingerprint no longer blocks a new submission of the same invoice."""

__all__ = ["RECEIVABLE_TRANSITIONS", "ReceivableAction", "ReceivableStatus", "Rule"]
