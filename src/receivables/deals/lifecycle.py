"""The escrow state machine of a deal: one table, pure (DESIGN.md "Deal").

The service picks `repay` or `repay_in_full` from amounts computed by kit/money, which
keeps arithmetic out of this table.
"""

from __future__ import annotations

from enum import StrEnum

from receivables.auth.roles import Role
from receivables.kit.transitions import Table, rule


class DealStatus(StrEnum):
    awaiting_funding = "awaiting_funding"
    """Awarded; the bank must fund escrow before the funding deadline."""
    disbursed = "disbursed"
    """Funded: escrow paid the SME its advance at once; awaiting the debtor."""
    overdue = "overdue"
    """The due date passed with money still owed."""
    defaulted = "defaulted"
    """The grace period passed with money still owed."""
    settled = "settled"
    """Paid in full; terminal."""
    cancelled = "cancelled"
    """The bank missed the funding deadline; terminal."""


class DealAction(StrEnum):
    fund = "fund"
    repay = "repay"
    repay_in_full = "repay_in_full"
    expire_funding = "expire_funding"
    mark_overdue = "mark_overdue"
    mark_defaulted = "mark_defaulted"


D, DA = DealStatus, DealAction

DEAL_TRANSITIONS: Table[DealStatus, DealAction] = {
    (D.awaiting_funding, DA.fund): rule(D.disbursed, Role.bank),
    (D.awaiting_funding, DA.expire_funding): rule(D.cancelled, Role.system),
    (D.disbursed, DA.repay): rule(D.disbursed, Role.core),
    (D.disbursed, DA.repay_in_full): rule(D.settled, Role.core),
    (D.disbursed, DA.mark_overdue): rule(D.overdue, Role.system),
    (D.overdue, DA.repay): rule(D.overdue, Role.core),
    (D.overdue, DA.repay_in_full): rule(D.settled, Role.core),
    (D.overdue, DA.mark_defaulted): rule(D.defaulted, Role.system),
    (D.defaulted, DA.repay): rule(D.defaulted, Role.core, Role.sme),
    (D.defaulted, DA.repay_in_full): rule(D.settled, Role.core, Role.sme),
}

REPAYABLE = frozenset({D.disbursed, D.overdue, D.defaulted})
