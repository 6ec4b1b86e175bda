"""Listings (one sealed auction each) and bids: two tables, pure (DESIGN.md)."""

from __future__ import annotations

from enum import StrEnum

from receivables.auth.roles import Role
from receivables.kit.transitions import Table, rule


class ListingStatus(StrEnum):
    open = "open"
    """Accepting sealed bids until closes_at."""
    awarded = "awarded"
    """A bid won; a deal exists."""
    cancelled = "cancelled"
    """The seller withdrew it while open."""
    expired = "expired"
    """closes_at passed without an award."""


class ListingAction(StrEnum):
    award = "award"
    cancel = "cancel"
    expire = "expire"


class BidStatus(StrEnum):
    active = "active"
    withdrawn = "withdrawn"
    won = "won"
    lost = "lost"


class BidAction(StrEnum):
    revise = "revise"
    withdraw = "withdraw"
    win = "win"
    lose = "lose"


L, LA = ListingStatus, ListingAction

LISTING_TRANSITIONS: Table[ListingStatus, ListingAction] = {
    (L.open, LA.award): rule(L.awarded, Role.sme, Role.system),
    (L.open, LA.cancel): rule(L.cancelled, Role.sme),
    (L.open, LA.expire): rule(L.expired, Role.system),
}

B, BA = BidStatus, BidAction

BID_TRANSITIONS: Table[BidStatus, BidAction] = {
    (B.active, BA.revise): rule(B.active, Role.bank),
    (B.active, BA.withdraw): rule(B.withdrawn, Role.bank),
    (B.active, BA.win): rule(B.won, Role.sme, Role.system),
    (B.active, BA.lose): rule(B.lost, Role.sme, Role.system),
}
