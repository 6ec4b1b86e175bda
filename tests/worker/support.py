"""Helpers for the deadline tests: run a tick over HTTP, read audit rows, and snapshot
every object's state and every balance so a test can prove what a tick changed — and
that nothing else did."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from receivables.auctions.models import Bid, Listing
from receivables.deals.models import Deal
from receivables.events.models import AuditRecord, EventRecipient
from receivables.ledger.models import Account, JournalEntry
from receivables.receivables.models import Receivable
from receivables.worker.jobs import JOB_NAMES
from tests.fixtures.world import Party, World

STATEFUL = {"receivable": Receivable, "listing": Listing, "bid": Bid, "deal": Deal}

State = dict[tuple[str, str], Any]


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, f"want {status} {code}: {response.status_code} {response.text}"
    assert response.json()["code"] == code, response.text


DEADLINE_JOBS = (
    "receivables_expired", "auctions_closed", "deals_cancelled", "deals_overdue", "deals_defaulted",
)
"""The jobs these tests are about. The worker runs others too (webhook deliveries,
statistics refreshes; tested where they live), left out of the counts compared here."""


def counts(**nonzero: int) -> dict[str, int]:
    """The deadline part of the `processed` a tick should answer: zero unless named."""
    unknown = set(nonzero) - set(DEADLINE_JOBS)
    assert not unknown, unknown
    return {name: nonzero.get(name, 0) for name in DEADLINE_JOBS}


def deadline_part(processed: dict[str, int]) -> dict[str, int]:
    """`processed` restricted to the deadline jobs (every job of the worker is reported)."""
    assert set(processed) == set(JOB_NAMES) >= set(DEADLINE_JOBS), processed
    return {name: processed[name] for name in DEADLINE_JOBS}


async def tick(client: httpx.AsyncClient, world: World) -> dict[str, int]:
    """POST /admin/tick as the operator; no job may fail. The deadline jobs' counts."""
    body = await ok(await client.post("/admin/tick", headers=world.operator.headers))
    assert body["failed"] == [], body
    return deadline_part(body["processed"])


async def get(client: httpx.AsyncClient, party: Party, path: str) -> dict[str, Any]:
    return await ok(await client.get(path, headers=party.headers))


async def state(app: FastAPI) -> State:
    """(kind, id) → status for every receivable, listing, bid and deal; ("account", id) →
    (debits, credits) for every ledger account; plus the number of journal entries."""
    found: State = {}
    async with app.state.sessionmaker() as session:
        for kind, model in STATEFUL.items():
            for object_id, status in (await session.execute(select(model.id, model.status))).all():
                found[(kind, str(object_id))] = status
        accounts = select(Account.id, Account.debits_posted_minor, Account.credits_posted_minor)
        for account_id, debits, credits in (await session.execute(accounts)).all():
            found[("account", str(account_id))] = (debits, credits)
        entries = select(func.count()).select_from(JournalEntry)
        found[("journal", "entries")] = (await session.execute(entries)).scalar_one()
    return found


def changes(before: State, after: State) -> dict[tuple[str, str], tuple[Any, Any]]:
    """What differs: (before, after), None for an object that did not exist."""
    keys = set(before) | set(after)
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


async def audit_rows(app: FastAPI, object_id: str | uuid.UUID) -> list[AuditRecord]:
    async with app.state.sessionmaker() as session:
        stmt = (
            select(AuditRecord)
            .where(AuditRecord.object_id == uuid.UUID(str(object_id)))
            .order_by(AuditRecord.chain_index)
        )
        return list((await session.execute(stmt)).scalars())


async def last_audit(app: FastAPI, object_id: str | uuid.UUID) -> AuditRecord:
    rows = await audit_rows(app, object_id)
    assert rows, f"no audit row for {object_id}"
    return rows[-1]


def assert_system_row(row: AuditRecord, action: str, from_state: str | None, to_state: str) -> None:
    assert (row.action, row.from_state, row.to_state) == (action, from_state, to_state)
    assert row.actor_role == "system"
    assert (row.actor_organization_id, row.actor_user_id) == (None, None)
    assert row.chain_index is not None and row.hash is not None


async def recipients(app: FastAPI, row: AuditRecord) -> set[uuid.UUID]:
    async with app.state.sessionmaker() as session:
        stmt = select(EventRecipient.organization_id).where(EventRecipient.audit_id == row.id)
        return set((await session.execute(stmt)).scalars())


async def feed_actions(client: httpx.AsyncClient, party: Party, object_id: str) -> list[str]:
    """Event types about `object_id` in `party`'s feed, oldest first."""
    found: list[str] = []
    cursor = ""
    while True:
        page = await get(client, party, f"/events?limit=100{cursor}")
        found += [e["type"] for e in page["items"] if e["data"]["object_id"] == str(object_id)]
        if page["next_cursor"] is None:
            return found
        cursor = f"&cursor={page['next_cursor']}"
