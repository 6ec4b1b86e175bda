"""A marketplace with known figures, built over HTTP with the simulated clock and the
worker's tick, for the statistics tests. Every number the tests expect is derived in
the docstring of `build_market` from the steps below, by hand.

Parties: the world's (two small SMEs, core enterprises "Great Motors" and "Grid Power",
three banks, operator, regulator), plus a `large` supplier and two debtors that are not
private firms: a government bureau and a state-owned company.
"""

from __future__ import annotations

import csv as stdlib_csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from tests.fixtures.flows import advance_clock, confirm_receivable, submit_receivable
from tests.fixtures.market import award, bid, fund, ok, open_listing, repay
from tests.fixtures.world import Party, World, add_party, mint_token

HOUR = 3600
DAY = 24 * HOUR


@dataclass
class Market:
    world: World
    big: Party
    """A supplier of size class `large` (not an SME by size)."""
    gov: Party
    """A core enterprise of sector `government`."""
    soe: Party
    """A core enterprise of sector `state_owned`."""
    receivables: dict[str, dict[str, Any]]
    deals: dict[str, dict[str, Any]]


EXTRA_PARTIES_KEY = "stats_test_parties"


def remember(app: FastAPI, *parties: Party) -> None:
    """Parties beyond the world's, whose tokens `advance_to` renews too."""
    app.state.__dict__.setdefault(EXTRA_PARTIES_KEY, []).extend(parties)


async def advance_to(app: FastAPI, world: World, instant: dt.datetime) -> None:
    """Move the simulated clock to `instant`; every party gets a fresh token (they live
    24 hours of that clock)."""
    seconds = (instant - app.state.clock.now()).total_seconds()
    assert seconds >= 0, instant
    advance_clock(app, world, seconds=seconds)
    for party in app.state.__dict__.get(EXTRA_PARTIES_KEY, []):
        party.token = mint_token(
            app, user_id=party.user_id, organization_id=party.organization_id, role=party.kind
        )
        party.headers = {"Authorization": f"Bearer {party.token}"}


async def tick(client: httpx.AsyncClient, world: World) -> dict[str, int]:
    body = await ok(await client.post("/admin/tick", headers=world.operator.headers))
    assert body["failed"] == [], body
    return body["processed"]


async def get(client: httpx.AsyncClient, party: Party, path: str, **params: Any) -> dict[str, Any]:
    return await ok(await client.get(path, params=params, headers=party.headers))


async def get_csv(
    client: httpx.AsyncClient, party: Party, path: str, **params: Any
) -> tuple[list[str], list[list[str]], httpx.Response]:
    headers = {**party.headers, "Accept": "text/csv"}
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv"), response.headers
    rows = list(stdlib_csv.reader(io.StringIO(response.text)))
    return rows[0], rows[1:], response


def as_cell(value: Any) -> str:
    """How the CSV writes a JSON value (stats/csv.py), written again independently."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


async def _list_award_fund(
    client: httpx.AsyncClient, clock, seller: Party, receivable: dict, bank: Party, rate: str,
    *, funded: bool = True, **listing: Any,
) -> dict[str, Any]:
    opened = await open_listing(client, seller, receivable["id"], clock, **listing)
    winning = await bid(client, bank, opened["id"], rate)
    deal = await award(client, seller, opened["id"], winning["id"])
    return await fund(client, bank, deal) if funded else deal


T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
"""The suite's clock start (tests/conftest.py CLOCK_START)."""
FINAL = dt.datetime(2026, 6, 2, 10, 0, tzinfo=dt.UTC)


async def look(client: httpx.AsyncClient, world: World) -> None:
    """Read statistics mid-story, so the summary tables are built early and then kept
    current by incremental refreshes (not built once at the end)."""
    await get(client, world.regulator, "/stats/overview")
    await get(client, world.operator, "/stats/arrears", group_by="sector")


async def build_market(app: FastAPI, client: httpx.AsyncClient, world: World) -> Market:
    """Receivables (CNY unless said; due 2026-03-31 unless said), all submitted at T0
    (2026-03-02 09:00 UTC):

    | id | seller → debtor | face value | fate |
    |---|---|---|---|
    | R1 | big → core | 8,000,000 | confirmed +2 h; listed with advance 0.80 (P 6,400,000), bank 4.00 %, funded 03-03; repaid in full 03-30: on time |
    | R2 | sme → core | 1,000,000 | confirmed +4 h; bank2 5.00 %, funded 03-03; never repaid: overdue 04-01, defaulted 05-01 |
    | R3 | sme2 → gov | 1,000,000, due 05-20 | confirmed +10 h; bank 6.00 %, funded 04-02; overdue since 05-21 |
    | R4 | sme → core | 1,000,000 | disputed +1 h |
    | R5 | sme2 → core | 1,000,000 | never answered: expired at the 04-02 tick |
    | R6 | sme → core | 1,000,000, due 05-31 | confirmed +6 h; bank3 5.50 % won, never funded: deal cancelled |
    | R7 | sme → soe | 500,000 | confirmed +20 h; bank 4.50 %, funded 03-03; 100,000 repaid 03-20, 200,000 on 04-02 (after falling overdue); defaulted |
    | R8 | sme → core, USD | 100,000 | never answered: expired at the 04-02 tick (only in USD figures) |
    | R9 | sme → soe | 300,000 | confirmed +30 h; bank2 5.00 %, funded 03-03; repaid in full 04-02: late |

    The clock ends at FINAL (2026-06-02 10:00 UTC) after a last tick.
    """
    clock = app.state.clock
    operator = world.operator
    big = await add_party(app, client, operator, "Titan Steel", "sme", size="large")
    gov = await add_party(app, client, operator, "City Works Bureau", "core", sector="government")
    soe = await add_party(app, client, operator, "State Grid Co", "core", sector="state_owned")
    remember(app, big, gov, soe)
    due = {"due_in_days": 29}  # 2026-03-31
    r: dict[str, dict[str, Any]] = {}
    r["R1"] = await submit_receivable(client, big, world.core, face_value="8000000.00", **due)
    r["R2"] = await submit_receivable(client, world.sme, world.core, **due)
    r["R3"] = await submit_receivable(client, world.sme2, gov, due_in_days=79)
    r["R4"] = await submit_receivable(client, world.sme, world.core, **due)
    r["R5"] = await submit_receivable(client, world.sme2, world.core, **due)
    r["R6"] = await submit_receivable(client, world.sme, world.core, due_in_days=90)
    r["R7"] = await submit_receivable(client, world.sme, soe, face_value="500000.00", **due)
    r["R8"] = await submit_receivable(
        client, world.sme, world.core, face_value="100000.00", currency="USD", **due
    )
    r["R9"] = await submit_receivable(client, world.sme, soe, face_value="300000.00", **due)
    await look(client, world)
    answers = [
        (1, "R4", world.core), (2, "R1", world.core), (4, "R2", world.core), (6, "R6", world.core),
        (10, "R3", gov), (20, "R7", soe), (30, "R9", soe),
    ]
    for hours, key, debtor in answers:
        await advance_to(app, world, T0 + dt.timedelta(hours=hours))
        if key == "R4":
            response = await client.post(
                f"/receivables/{r[key]['id']}/dispute", json={"reason": "wrong quantity"},
                headers=debtor.headers,
            )
            await ok(response)
        else:
            await confirm_receivable(client, debtor, r[key]["id"])
    d: dict[str, dict[str, Any]] = {}
    d["D1"] = await _list_award_fund(
        client, clock, big, r["R1"], world.bank, "0.0400", advance_ratio="0.80"
    )
    d["D2"] = await _list_award_fund(client, clock, world.sme, r["R2"], world.bank2, "0.0500")
    d["D7"] = await _list_award_fund(client, clock, world.sme, r["R7"], world.bank, "0.0450")
    d["D9"] = await _list_award_fund(client, clock, world.sme, r["R9"], world.bank2, "0.0500")
    d["D6"] = await _list_award_fund(
        client, clock, world.sme, r["R6"], world.bank3, "0.0550", funded=False
    )
    await look(client, world)
    await advance_to(app, world, dt.datetime(2026, 3, 20, 10, 0, tzinfo=dt.UTC))
    await repay(client, soe, d["D7"]["id"], "100000.00")
    await advance_to(app, world, dt.datetime(2026, 3, 30, 10, 0, tzinfo=dt.UTC))
    await repay(client, world.core, d["D1"]["id"], "8000000.00")
    await advance_to(app, world, dt.datetime(2026, 4, 2, 10, 0, tzinfo=dt.UTC))
    processed = await tick(client, world)
    assert processed["deals_overdue"] == 3 and processed["receivables_expired"] == 2, processed
    assert processed["deals_cancelled"] == 1, processed
    await look(client, world)
    await repay(client, soe, d["D7"]["id"], "200000.00")
    await repay(client, soe, d["D9"]["id"], "300000.00")
    d["D3"] = await _list_award_fund(client, clock, world.sme2, r["R3"], world.bank, "0.0600")
    await look(client, world)
    await advance_to(app, world, FINAL)
    processed = await tick(client, world)
    assert processed["deals_defaulted"] == 2 and processed["deals_overdue"] == 1, processed
    return Market(world=world, big=big, gov=gov, soe=soe, receivables=r, deals=d)
