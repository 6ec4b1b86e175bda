"""Helpers shared by the auction API tests and the HTTP state-machine tests: problem
assertions, and a whole-database snapshot that proves a refused call changed nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from receivables.events.models import AuditRecord
from receivables.ledger.models import JournalEntry
from receivables.models import metadata
from tests.fixtures.world import Party

Snapshot = dict[str, list[tuple[Any, ...]]]


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (
        f"want {status} {code}, got {response.status_code}: {response.text}"
    )
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    return body


def bad_fields(response: httpx.Response) -> set[str]:
    body = assert_problem(response, 422, "validation_error")
    return {error["field"] for error in body["errors"]}


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


async def get_json(client: httpx.AsyncClient, party: Party, path: str) -> dict[str, Any]:
    return await ok(await client.get(path, headers=party.headers))


async def db_snapshot(app: FastAPI) -> Snapshot:
    """Every row of every table, in a stable order: equal snapshots mean nothing was
    written, not even an audit row or a journal entry."""
    snapshot: Snapshot = {}
    async with app.state.sessionmaker() as session:
        for table in metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            snapshot[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return snapshot


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


async def audit_and_journal_counts(app: FastAPI) -> tuple[int, int]:
    async with app.state.sessionmaker() as session:
        audits = (await session.execute(select(func.count()).select_from(AuditRecord))).scalar_one()
        entries = (
            await session.execute(select(func.count()).select_from(JournalEntry))
        ).scalar_one()
    return audits, entries


async def ledger_balanced(client: httpx.AsyncClient, supervisor: Party) -> dict[str, Any]:
    report = await get_json(client, supervisor, "/ledger/verify")
    assert report["balanced"] is True, report
    assert report["mismatches"] == []
    return report
