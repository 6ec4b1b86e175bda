"""Goal: prove that who may call what, on whose objects, is exactly what the
authorization matrix (receivables/auth/matrix.py) says, for every route the app serves
(OWASP API1 broken object-level and API5 broken function-level authorization).

Method: the routes come from the app itself (`app.routes`), so a new route without a
matrix entry fails `test_every_route_has_an_entry`. For each route, real objects are
built through the API (tests/fixtures), and the route is called anonymously and as each
role (sme, core, bank, regulator, operator) on its own object and on another
organization's object. The status must be exactly what `Rule.expected` derives from
the entry: 401, 403, 404, or a 2xx for the allowed role on its own object. Every
refused call is checked to have changed nothing: the full contents of every table are
compared before and after. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import inspect, select

from receivables.app import create_app
from receivables.auth.matrix import MATRIX, Rule
from receivables.auth.roles import Role
from receivables.config import Settings
from receivables.models import metadata
from tests.fixtures.flows import receivable_body, submit_receivable
from tests.fixtures.market import award, bid, closes_in, fund, listed_receivable, ok, open_listing
from tests.fixtures.world import PASSWORD, Party, World, new_credit_code

ROLES = (Role.sme, Role.core, Role.bank, Role.regulator, Role.operator)
SECOND_PARTY = {Role.sme: "sme2", Role.core: "core2", Role.bank: "bank2"}
"""Another organization of the same role: "another organization's object" for it."""

_serials = itertools.count(1)


def _served_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(jwt_secret="matrix-" + "x" * 40, simulated_clock=True))
    found = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return sorted(found, key=lambda key: (key[1], key[0]))


SERVED = _served_routes()

PENDING_CONTRACT_ROUTES: set[tuple[str, str]] = set()
"""API.md routes the matrix already rules on but the app does not serve yet."""


def test_every_route_has_an_entry() -> None:
    missing = [f"{method} {path}" for method, path in SERVED if (method, path) not in MATRIX]
    assert not missing, f"routes without an authorization-matrix entry: {missing}"


def test_every_entry_is_served_or_pending() -> None:
    stale = sorted(set(MATRIX) - set(SERVED) - PENDING_CONTRACT_ROUTES)
    assert not stale, f"matrix entries for routes the app does not serve: {stale}"


def test_every_served_route_has_a_scenario() -> None:
    missing = [
        f"{method} {path}" for method, path in SERVED
        if (method, path) not in SCENARIOS and "{" in path
    ]
    assert not missing, f"routes on an object need a scenario here: {missing}"


# ---------------------------------------------------------------------- scenarios


@dataclass
class Context:
    app: FastAPI
    client: httpx.AsyncClient
    world: World

    @property
    def clock(self):
        return self.app.state.clock

    def party(self, name: str) -> Party:
        return getattr(self.world, name)

    def organizations(self, *names: str) -> frozenset[uuid.UUID]:
        return frozenset(self.party(name).organization_id for name in names)


@dataclass
class Target:
    """One object a route acts on: its path parameters, the organizations that own it
    or are party to it, and anything the body needs."""

    params: dict[str, str] = field(default_factory=dict)
    parties: frozenset[uuid.UUID] = frozenset()
    data: dict[str, Any] = field(default_factory=dict)


Body = Callable[[Context, Target, Party], Awaitable[dict[str, Any]]]


@dataclass
class Scenario:
    build: Callable[[Context], Awaitable[Target]] | None = None
    """Builds the object every caller is tried on (None: a collection route)."""
    build_for: Callable[[Context, Party, bool], Awaitable[Target]] | None = None
    """Builds an object relative to the caller: its own (True) or a stranger's (False);
    for routes on organizations, where "own" differs per caller."""
    body: Body | None = None


async def _no_body(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    return {}


def _json(payload: dict[str, Any]) -> Body:
    async def body(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
        return {"json": payload}

    return body


# -- receivables, listings, bids, deals (fixed objects: world.sme sells to world.core)


async def submitted(ctx: Context) -> Target:
    receivable = await submit_receivable(ctx.client, ctx.world.sme, ctx.world.core)
    return Target({"receivable_id": receivable["id"]}, ctx.organizations("sme", "core"))


async def disputed(ctx: Context) -> Target:
    target = await submitted(ctx)
    await ok(await ctx.client.post(
        f"/receivables/{target.params['receivable_id']}/dispute", json={"reason": "wrong amount"},
        headers=ctx.world.core.headers,
    ))
    return target


async def confirmed(ctx: Context) -> Target:
    target = await submitted(ctx)
    await ok(await ctx.client.post(
        f"/receivables/{target.params['receivable_id']}/confirm", json={},
        headers=ctx.world.core.headers,
    ))
    return target


async def open_listing_without_bids(ctx: Context) -> Target:
    receivable, listing = await listed_receivable(ctx.client, ctx.world, ctx.clock)
    return Target(
        {"listing_id": listing["id"], "receivable_id": receivable["id"]},
        ctx.organizations("sme", "core"),
    )


async def open_listing_with_bid(ctx: Context) -> Target:
    target = await open_listing_without_bids(ctx)
    placed = await bid(ctx.client, ctx.world.bank, target.params["listing_id"], "0.0450")
    target.params["bid_id"] = placed["id"]
    target.parties = ctx.organizations("sme", "core", "bank")
    return target


async def awarded(ctx: Context) -> Target:
    target = await open_listing_with_bid(ctx)
    deal = await award(ctx.client, ctx.world.sme, target.params["listing_id"], target.params["bid_id"])
    return Target({"deal_id": deal["id"]}, ctx.organizations("sme", "core", "bank"), {"deal": deal})


async def funded(ctx: Context) -> Target:
    target = await awarded(ctx)
    target.data["deal"] = await fund(ctx.client, ctx.world.bank, target.data["deal"])
    return target


async def fresh_organization(ctx: Context) -> Target:
    body = {"name": f"Victim {next(_serials)}", "kind": "sme", "credit_code": new_credit_code()}
    created = await ok(await ctx.client.post(
        "/organizations", json=body, headers=ctx.world.operator.headers), 201)
    return Target({"organization_id": created["id"]}, frozenset())


# -- organizations and API clients (objects relative to the caller)


def _organization_of(
    ctx: Context, caller: Party, own: bool
) -> tuple[str, frozenset[uuid.UUID]]:
    """The caller's own organization, or a stranger's: world.sme2 has no dealings with
    anyone in a fresh world (it is no core, so not in the debtors' directory either)."""
    if own:
        return str(caller.organization_id), frozenset({caller.organization_id})
    return str(ctx.world.sme2.organization_id), ctx.organizations("sme2")


async def organization_for(ctx: Context, caller: Party, own: bool) -> Target:
    organization_id, parties = _organization_of(ctx, caller, own)
    return Target({"organization_id": organization_id}, parties)


async def api_client_for(ctx: Context, caller: Party, own: bool) -> Target:
    target = await organization_for(ctx, caller, own)
    created = await ok(await ctx.client.post(
        f"/organizations/{target.params['organization_id']}/api-clients",
        headers=ctx.world.operator.headers), 201)
    target.params["client_id"] = created["client_id"]
    return target


async def debtor_organization(ctx: Context) -> Target:
    return Target({"organization_id": str(ctx.world.core.organization_id)}, ctx.organizations("core"))


WEBHOOK = {"url": "https://hooks.example.com/receivables", "events": ["*"]}


async def webhook_for(ctx: Context, caller: Party, own: bool) -> Target:
    """A webhook of the caller's organization, or one of world.sme2's."""
    owner = caller if own else ctx.world.sme2
    created = await ok(await ctx.client.post("/webhooks", json=WEBHOOK, headers=owner.headers), 201)
    return Target({"webhook_id": created["id"]}, frozenset({owner.organization_id}))


# -- bodies


async def receivable_for(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    return {"json": receivable_body(ctx.client, ctx.world.core)}


async def listing_for(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    return {"json": {
        "receivable_id": target.params["receivable_id"], "max_discount_rate": "0.0800",
        "closes_at": closes_in(ctx.clock),
    }}


async def award_for(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    return {"json": {"bid_id": target.params["bid_id"]}}


async def funding_for(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    amount = target.data["deal"]["funding_amount"]
    return {"json": {"amount": amount, "payment_reference": "WIRE-MATRIX"}}


async def login_form(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    return {"data": {"grant_type": "password", "username": ctx.world.bank.email, "password": PASSWORD}}


async def fresh_refresh_token(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    pair = await ok(await ctx.client.post("/auth/token", data=(await login_form(ctx, target, caller))["data"]))
    return {"json": {"refresh_token": pair["refresh_token"]}}


async def new_organization(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    return {"json": {"name": f"New Org {next(_serials)}", "kind": "sme", "credit_code": new_credit_code()}}


async def new_user(ctx: Context, target: Target, caller: Party) -> dict[str, Any]:
    return {"json": {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "password": "long enough pw"}}


SCENARIOS: dict[tuple[str, str], Scenario] = {
    ("POST", "/admin/clock"): Scenario(body=_json({"advance_seconds": 0})),
    ("POST", "/auth/token"): Scenario(body=login_form),
    ("POST", "/auth/refresh"): Scenario(body=fresh_refresh_token),
    ("POST", "/organizations"): Scenario(body=new_organization),
    ("GET", "/organizations/{organization_id}"): Scenario(build_for=organization_for),
    ("POST", "/organizations/{organization_id}/suspend"): Scenario(build=fresh_organization),
    ("POST", "/organizations/{organization_id}/users"): Scenario(build=fresh_organization, body=new_user),
    ("POST", "/organizations/{organization_id}/api-clients"): Scenario(
        build_for=organization_for, body=_json({"name": "matrix"})),
    ("GET", "/organizations/{organization_id}/api-clients"): Scenario(build_for=organization_for),
    ("DELETE", "/organizations/{organization_id}/api-clients/{client_id}"): Scenario(
        build_for=api_client_for),
    ("GET", "/organizations/{organization_id}/profile"): Scenario(build=debtor_organization),
    ("POST", "/webhooks"): Scenario(body=_json(WEBHOOK)),
    ("DELETE", "/webhooks/{webhook_id}"): Scenario(build_for=webhook_for),
    ("GET", "/webhooks/{webhook_id}/deliveries"): Scenario(build_for=webhook_for),
    ("POST", "/receivables"): Scenario(body=receivable_for),
    ("GET", "/receivables/{receivable_id}"): Scenario(build=open_listing_with_bid),
    ("POST", "/receivables/{receivable_id}/confirm"): Scenario(build=submitted, body=_json({})),
    ("POST", "/receivables/{receivable_id}/dispute"): Scenario(
        build=submitted, body=_json({"reason": "not delivered"})),
    ("PATCH", "/receivables/{receivable_id}"): Scenario(
        build=disputed, body=_json({"description": "corrected"})),
    ("POST", "/receivables/{receivable_id}/cancel"): Scenario(build=submitted),
    ("POST", "/listings"): Scenario(build=confirmed, body=listing_for),
    ("GET", "/listings/{listing_id}"): Scenario(build=open_listing_with_bid),
    ("POST", "/listings/{listing_id}/cancel"): Scenario(build=open_listing_without_bids),
    ("POST", "/listings/{listing_id}/bids"): Scenario(
        build=open_listing_without_bids, body=_json({"discount_rate": "0.0500"})),
    ("GET", "/listings/{listing_id}/bids"): Scenario(build=open_listing_with_bid),
    ("POST", "/listings/{listing_id}/award"): Scenario(build=open_listing_with_bid, body=award_for),
    ("GET", "/bids/{bid_id}"): Scenario(build=open_listing_with_bid),
    ("PATCH", "/bids/{bid_id}"): Scenario(
        build=open_listing_with_bid, body=_json({"discount_rate": "0.0400"})),
    ("POST", "/bids/{bid_id}/withdraw"): Scenario(build=open_listing_with_bid),
    ("GET", "/deals/{deal_id}"): Scenario(build=awarded),
    ("POST", "/deals/{deal_id}/fund"): Scenario(build=awarded, body=funding_for),
    ("POST", "/deals/{deal_id}/repay"): Scenario(
        build=funded, body=_json({"amount": "1000.00", "payment_reference": "PAY-MATRIX"})),
    ("GET", "/deals/{deal_id}/ledger"): Scenario(build=funded),
}
"""How to build a real object for each route on one; collection routes without a body
need no entry."""

# ---------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Cell:
    role: Role | None
    own: bool

    def __str__(self) -> str:
        who = self.role.value if self.role else "anonymous"
        return f"{who}/{'own' if self.own else 'other'}"


async def snapshot(app: FastAPI) -> dict[str, list[tuple]]:
    """Every row of every table, ordered: "changed nothing" means this is equal."""
    contents = {}
    async with app.state.sessionmaker() as session:
        connection = await session.connection()
        existing = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        # A model whose migration is not written yet has no table: nothing can change
        # there (tests/test_migrations.py is the test that reports the missing table).
        for table in [t for t in metadata.sorted_tables if t.name in existing]:
            rows = (await session.execute(select(table))).all()
            contents[table.name] = sorted((tuple(map(repr, row)) for row in rows))
    return contents


def _cells(scenario: Scenario, has_object: bool) -> list[Cell]:
    cells = [Cell(None, True)]
    for role in ROLES:
        cells.append(Cell(role, True))
        two_objects = scenario.build_for is not None
        if has_object and (role in SECOND_PARTY or two_objects):
            cells.append(Cell(role, False))
    return cells


def _caller(ctx: Context, cell: Cell, per_caller: bool) -> Party:
    role = cell.role or Role.sme
    if cell.own or per_caller:
        return ctx.party(role.value)
    return ctx.party(SECOND_PARTY[role])


def _related(target: Target, caller: Party) -> bool:
    return caller.organization_id in target.parties


def _outcome(status: int) -> Any:
    return "ok" if 200 <= status < 300 else status


class Walk:
    def __init__(self, ctx: Context, method: str, path: str, rule: Rule, scenario: Scenario):
        self.ctx, self.method, self.path, self.rule, self.scenario = ctx, method, path, rule, scenario
        self.has_object = "{" in path or scenario.build is not None
        self.shared: Target | None = None
        self.failures: list[str] = []

    async def target_for(self, caller: Party, cell: Cell) -> Target:
        if self.scenario.build_for is not None:
            return await self.scenario.build_for(self.ctx, caller, cell.own)
        if self.scenario.build is None:
            return Target()
        if self.shared is None:
            self.shared = await self.scenario.build(self.ctx)
        return self.shared

    async def call(self, cell: Cell) -> None:
        per_caller = self.scenario.build_for is not None
        caller = _caller(self.ctx, cell, per_caller)
        target = await self.target_for(caller, cell)
        related = _related(target, caller) if self.has_object else True
        expected = self.rule.expected(cell.role, related=related, has_object=self.has_object)
        request = await (self.scenario.body or _no_body)(self.ctx, target, caller)
        headers = dict(caller.headers) if cell.role is not None else {}
        url = self.path.format(**target.params)
        before = await snapshot(self.ctx.app) if expected != "ok" else None
        response = await self.ctx.client.request(self.method, url, headers=headers, **request)
        got = _outcome(response.status_code)
        label = f"{cell} as {caller.name}: expected {expected}, got {response.status_code}"
        if got != expected:
            self.failures.append(f"{label} {response.text[:200]}")
        elif before is not None and await snapshot(self.ctx.app) != before:
            self.failures.append(f"{label} but the refused call changed the database")
        if got == "ok" and self.method != "GET":
            self.shared = None  # the object was used up; the next caller gets a fresh one

    async def run(self) -> list[str]:
        for cell in _cells(self.scenario, self.has_object):
            await self.call(cell)
        return self.failures


@pytest.mark.parametrize("method,path", SERVED, ids=[f"{m} {p}" for m, p in SERVED])
async def test_route_answers_exactly_as_the_matrix_says(
    method: str, path: str, app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    rule = MATRIX.get((method, path))
    if rule is None:
        pytest.fail(f"{method} {path} has no matrix entry")
    scenario = SCENARIOS.get((method, path), Scenario())
    failures = await Walk(Context(app, client, world), method, path, rule, scenario).run()
    assert not failures, f"{method} {path}:\n  " + "\n  ".join(failures)


# ---------------------------------------------------------------------- the rules' logic


class TestRuleSemantics:
    """`Rule.expected` is the matrix's meaning; pin it down without HTTP."""

    def test_public_routes_admit_everyone(self) -> None:
        assert MATRIX[("GET", "/healthz")].expected(None, related=False, has_object=False) == "ok"

    def test_anonymous_is_401_and_the_gate_precedes_the_object(self) -> None:
        fund = MATRIX[("POST", "/deals/{deal_id}/fund")]
        assert fund.expected(None, related=True, has_object=True) == 401
        assert fund.expected(Role.sme, related=True, has_object=True) == 403
        assert fund.expected(Role.bank, related=False, has_object=True) == 404
        assert fund.expected(Role.bank, related=True, has_object=True) == "ok"

    def test_visible_but_not_allowed_is_403_invisible_is_404(self) -> None:
        confirm = MATRIX[("POST", "/receivables/{receivable_id}/confirm")]
        assert confirm.expected(Role.sme, related=True, has_object=True) == 403
        assert confirm.expected(Role.sme, related=False, has_object=True) == 404
        assert confirm.expected(Role.regulator, related=False, has_object=True) == 403

    def test_every_entry_sees_at_least_what_it_acts_on(self) -> None:
        for key, rule in MATRIX.items():
            assert set(rule.act) <= set(rule.see), key
            if rule.gate is not None:
                assert set(rule.act) <= rule.gate, key

    def test_the_regulator_never_writes_anyone_elses_data(self) -> None:
        """Read-only supervisor (DESIGN.md): any write it may make is on its own
        organization's configuration (API clients)."""
        for (method, path), rule in MATRIX.items():
            if method != "GET" and not rule.public and Role.regulator in rule.act:
                assert rule.act[Role.regulator].value == "own", (method, path)

    def test_the_debtor_never_sees_market_data(self) -> None:
        for path in ("/listings", "/listings/{listing_id}", "/listings/{listing_id}/bids", "/bids/{bid_id}"):
            assert Role.core not in MATRIX[("GET", path)].see, path

