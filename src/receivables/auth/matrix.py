"""The authorization matrix: for every route of the app, who may call it and whose
objects they may touch. Data, not prose; tests/security/test_authorization_matrix.py
walks every route the app serves against this table (a route without an entry fails)
and checks each cell over HTTP: roles x (own object, another organization's object).

How a cell's answer follows from an entry (`expected`):

1. `public` routes need no token: every caller gets its 2xx.
2. No token → 401.
3. A role outside the route's `gate` (a role dependency that runs before any lookup)
   → 403, whatever the object.
4. Routes on one object (an id in the path or body): if the caller may not `see` it
   (its ownership rule does not cover the object) → 404, so ids leak nothing (API.md);
   if it may see but not `act` on it → 403.
5. Otherwise the call is allowed: 2xx (collection routes are filtered to what the
   caller may see, never refused for the object).

Ownership, for the caller's organization:
`own` its own organization (or its own resources: its API clients, its accounts);
`party` an object it is a party to (seller, debtor, bank that bid or financed, a
counterparty organization); `any` every object. Rules that depend on state as well
(a bank sees a closed listing only if it bid; a seller repays only under recourse once
defaulted) are noted at their entry; the matrix test builds objects in the state the
main rule speaks of.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from receivables.auth.roles import ORGANIZATION_KINDS, Role


class Ownership(StrEnum):
    own = "own"
    """The caller's own organization, or resources that belong to it."""
    party = "party"
    """Objects the caller's organization is a party to."""
    any = "any"
    """Every object."""


Outcome = Literal["ok", 401, 403, 404]


@dataclass(frozen=True)
class Rule:
    act: Mapping[Role, Ownership] = field(default_factory=dict)
    """Roles that may call the route, each with the objects it may act on."""
    see: Mapping[Role, Ownership] = field(default_factory=dict)
    """Roles that may see the route's object (a superset of `act`): the rest get 404."""
    gate: frozenset[Role] | None = None
    """Roles a role dependency admits before anything is looked up (None: any token)."""
    public: bool = False
    note: str = ""

    def expected(self, role: Role | None, *, related: bool, has_object: bool) -> Outcome:
        """The answer a caller gets: `role` None is anonymous; `related` says whether the
        caller's organization owns or is a party to the object."""
        if self.public:
            return "ok"
        if role is None:
            return 401
        if self.gate is not None and role not in self.gate:
            return 403
        if not has_object:
            return "ok" if role in self.act else 403
        if not _covers(self.see.get(role), related):
            return 404
        return "ok" if _covers(self.act.get(role), related) else 403


def _covers(ownership: Ownership | None, related: bool) -> bool:
    return ownership is Ownership.any or (ownership is not None and related)


def rule(
    act: Mapping[Role, Ownership],
    *,
    see: Mapping[Role, Ownership] | None = None,
    gate: frozenset[Role] | set[Role] | None = None,
    note: str = "",
) -> Rule:
    seen = {**act, **(see or {})}  # an explicit `see` widens what `act` implies
    return Rule(
        act=MappingProxyType(dict(act)),
        see=MappingProxyType(seen),
        gate=None if gate is None else frozenset(gate),
        note=note,
    )


PUBLIC = Rule(public=True)

SME, CORE, BANK, REGULATOR, OPERATOR = (
    Role.sme, Role.core, Role.bank, Role.regulator, Role.operator,
)
OWN, PARTY, ANY = Ownership.own, Ownership.party, Ownership.any

SUPERVISORS = {OPERATOR: ANY, REGULATOR: ANY}
EVERYONE_OWN = {role: OWN for role in ORGANIZATION_KINDS}
"""Collection routes filtered to the caller's own view."""
MARKET = frozenset({SME, BANK, OPERATOR, REGULATOR})
"""Everyone but the debtor: a core enterprise never sees listings or bid rates."""
RECEIVABLE_READERS = {SME: PARTY, CORE: PARTY, BANK: PARTY, **SUPERVISORS}
DEAL_READERS = {SME: PARTY, CORE: PARTY, BANK: PARTY, **SUPERVISORS}
ORGANIZATION_SELF = {SME: OWN, CORE: OWN, BANK: OWN, REGULATOR: OWN, OPERATOR: ANY}

MATRIX: Mapping[tuple[str, str], Rule] = MappingProxyType({
    # ------------------------------------------------------------ documents, operations
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/admin/clock"): rule(
        {OPERATOR: ANY}, gate={OPERATOR},
        note="only with RECEIVABLES_SIMULATED_CLOCK=true; otherwise 404 for everyone",
    ),
    ("POST", "/admin/tick"): rule(
        {OPERATOR: ANY}, gate={OPERATOR},
        note="only with RECEIVABLES_SIMULATED_CLOCK=true; otherwise 404 for everyone",
    ),
    # ------------------------------------------------------------ auth
    ("POST", "/auth/token"): PUBLIC,
    ("POST", "/auth/refresh"): PUBLIC,
    ("GET", "/me"): rule(EVERYONE_OWN),
    # ------------------------------------------------------------ organizations
    ("POST", "/organizations"): rule({OPERATOR: ANY}, gate={OPERATOR}),
    ("GET", "/organizations"): rule(EVERYONE_OWN),
    ("GET", "/organizations/{organization_id}"): rule(
        {SME: PARTY, CORE: PARTY, BANK: PARTY, **SUPERVISORS},
        note="party: its own organization, its counterparties, and every core enterprise "
        "(the directory of debtors)",
    ),
    ("POST", "/organizations/{organization_id}/suspend"): rule({OPERATOR: ANY}, gate={OPERATOR}),
    ("POST", "/organizations/{organization_id}/users"): rule({OPERATOR: ANY}, gate={OPERATOR}),
    ("GET", "/organizations/{organization_id}/profile"): rule(
        {BANK: ANY, **SUPERVISORS}, gate={BANK, OPERATOR, REGULATOR},
    ),
    ("POST", "/organizations/{organization_id}/api-clients"): rule(
        ORGANIZATION_SELF, see={REGULATOR: ANY}, note="users only: an API client cannot mint clients",
    ),
    ("GET", "/organizations/{organization_id}/api-clients"): rule(
        {**ORGANIZATION_SELF, REGULATOR: ANY},
    ),
    ("DELETE", "/organizations/{organization_id}/api-clients/{client_id}"): rule(
        ORGANIZATION_SELF, see={REGULATOR: ANY}, note="users only",
    ),
    # ------------------------------------------------------------ receivables
    ("POST", "/receivables"): rule({SME: OWN}, gate={SME}),
    ("GET", "/receivables"): rule(EVERYONE_OWN),
    ("GET", "/receivables/{receivable_id}"): rule(
        RECEIVABLE_READERS, note="bank: party once it bid on or financed the receivable",
    ),
    ("POST", "/receivables/{receivable_id}/confirm"): rule({CORE: PARTY}, see=RECEIVABLE_READERS),
    ("POST", "/receivables/{receivable_id}/dispute"): rule({CORE: PARTY}, see=RECEIVABLE_READERS),
    ("PATCH", "/receivables/{receivable_id}"): rule({SME: PARTY}, see=RECEIVABLE_READERS),
    ("POST", "/receivables/{receivable_id}/cancel"): rule({SME: PARTY}, see=RECEIVABLE_READERS),
    # ------------------------------------------------------------ auctions
    ("POST", "/listings"): rule({SME: PARTY}, gate={SME}, note="the receivable in the body"),
    ("GET", "/listings"): rule({SME: OWN, BANK: OWN, **SUPERVISORS}, gate=MARKET),
    ("GET", "/listings/{listing_id}"): rule(
        {SME: PARTY, BANK: ANY, **SUPERVISORS}, gate=MARKET,
        note="bank: any open listing; a closed one only if it bid",
    ),
    ("POST", "/listings/{listing_id}/cancel"): rule({SME: PARTY}, gate={SME}),
    ("POST", "/listings/{listing_id}/bids"): rule({BANK: ANY}, gate={BANK}, note="open listings"),
    ("GET", "/listings/{listing_id}/bids"): rule(
        {SME: PARTY, BANK: ANY, **SUPERVISORS}, gate=MARKET,
        note="a bank lists only its own bids (sealed auction)",
    ),
    ("POST", "/listings/{listing_id}/award"): rule({SME: PARTY}, gate={SME}),
    ("GET", "/bids/{bid_id}"): rule({SME: PARTY, BANK: PARTY, **SUPERVISORS}, gate=MARKET),
    ("PATCH", "/bids/{bid_id}"): rule({BANK: PARTY}, gate={BANK}),
    ("POST", "/bids/{bid_id}/withdraw"): rule({BANK: PARTY}, gate={BANK}),
    # ------------------------------------------------------------ deals
    ("GET", "/deals"): rule(EVERYONE_OWN),
    ("GET", "/deals/{deal_id}"): rule(DEAL_READERS, note="the debtor's view omits the price"),
    ("POST", "/deals/{deal_id}/fund"): rule({BANK: PARTY}, gate={BANK}),
    ("POST", "/deals/{deal_id}/repay"): rule(
        {CORE: PARTY}, see={SME: PARTY}, gate={CORE, SME},
        note="the seller too, under recourse, once the deal has defaulted",
    ),
    ("GET", "/deals/{deal_id}/ledger"): rule(
        {SME: PARTY, BANK: PARTY, **SUPERVISORS}, see={CORE: PARTY},
        note="never the debtor: the entries would show the price",
    ),
    # ------------------------------------------------------------ ledger, events, audit
    ("GET", "/accounts/me"): rule(EVERYONE_OWN),
    ("GET", "/ledger/verify"): rule(SUPERVISORS, gate={OPERATOR, REGULATOR}),
    ("GET", "/events"): rule(EVERYONE_OWN),
    ("GET", "/audit"): rule(SUPERVISORS, gate={OPERATOR, REGULATOR}),
    ("GET", "/audit/verify"): rule(SUPERVISORS, gate={OPERATOR, REGULATOR}),
    # ------------------------------------------------------------ webhooks
    ("POST", "/webhooks"): rule(EVERYONE_OWN),
    ("GET", "/webhooks"): rule(EVERYONE_OWN),
    ("DELETE", "/webhooks/{webhook_id}"): rule(EVERYONE_OWN),
    ("GET", "/webhooks/{webhook_id}/deliveries"): rule(EVERYONE_OWN),
    # ------------------------------------------------------------ statistics
    ("GET", "/stats/overview"): rule(SUPERVISORS, gate={OPERATOR, REGULATOR}),
    ("GET", "/stats/core-enterprises"): rule(SUPERVISORS, gate={OPERATOR, REGULATOR}),
    ("GET", "/stats/arrears"): rule(
        {BANK: ANY, **SUPERVISORS}, gate={BANK, OPERATOR, REGULATOR},
    ),
})
"""(method, path template) → Rule. HEAD is served wherever GET is and is not listed.
A route added to the app without an entry here fails the matrix test, and so does an
entry for a route the app does not serve."""


def rule_for(method: str, path: str) -> Rule | None:
    return MATRIX.get((method.upper(), path))
