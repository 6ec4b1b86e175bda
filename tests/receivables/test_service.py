"""Goal: the functions other domains and the worker call keep their promises.

Method: real database, receivables created over HTTP, then `service.transition`,
`service.expire_lapsed` and `repository.get_for_update` called directly in their own
transaction, as auctions, deals and the worker do. Also: two identical submissions
racing each other end as one 201 and one 409, never a 500. Runs on both databases.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select, update

from receivables.auth.principal import SYSTEM, Principal
from receivables.auth.roles import Role
from receivables.events.models import AuditRecord
from receivables.kit.errors import Forbidden, IllegalTransition
from receivables.receivables import repository, service
from receivables.receivables.lifecycle import ReceivableAction, ReceivableStatus
from receivables.receivables.models import Receivable
from tests.fixtures.flows import (
    advance_clock,
    confirmed_receivable,
    receivable_body,
    submit_receivable,
)
from tests.fixtures.world import World


def principal_of(party) -> Principal:
    return Principal(
        role=Role(party.kind), organization_id=party.organization_id, user_id=party.user_id
    )


class TestTransition:
    async def test_applies_the_table_and_writes_audit(self, client, world: World, app, clock):
        created = await confirmed_receivable(client, world)
        async with app.state.sessionmaker.begin() as session:
            receivable = await repository.get_for_update(session, uuid.UUID(created["id"]))
            assert receivable is not None
            await service.transition(
                session,
                receivable,
                ReceivableAction.list,
                principal_of(world.sme),
                clock=clock,
                data={"listing_id": "x"},
            )
            assert receivable.status == ReceivableStatus.listed
        async with app.state.sessionmaker() as session:
            stored = await session.get(Receivable, uuid.UUID(created["id"]))
            audit = (
                await session.execute(
                    select(AuditRecord).where(AuditRecord.action == "receivable.listed")
                )
            ).scalar_one()
        assert stored.status == "listed" and stored.active_fingerprint is not None
        assert (audit.from_state, audit.to_state, audit.data) == (
            "confirmed",
            "listed",
            {"listing_id": "x"},
        )

    async def test_role_no_rule_admits_is_forbidden(self, client, world: World, app, clock):
        created = await submit_receivable(client, world.sme, world.core)
        async with app.state.sessionmaker() as session:
            receivable = await repository.get_for_update(session, uuid.UUID(created["id"]))
            with pytest.raises(Forbidden):
                await service.transition(
                    session,
                    receivable,
                    ReceivableAction.confirm,
                    principal_of(world.bank),
                    clock=clock,
                )
            assert receivable.status == "submitted"
            await session.rollback()

    async def test_missing_pair_is_illegal_naming_the_state(self, client, world: World, app, clock):
        created = await confirmed_receivable(client, world)
        async with app.state.sessionmaker() as session:
            receivable = await repository.get_for_update(session, uuid.UUID(created["id"]))
            with pytest.raises(IllegalTransition, match="confirmed"):
                await service.transition(
                    session,
                    receivable,
                    ReceivableAction.confirm,
                    principal_of(world.core),
                    clock=clock,
                )
            await session.rollback()

    async def test_expiry_frees_the_registry(self, client, world: World, app, clock):
        created = await submit_receivable(client, world.sme, world.core, invoice_number="exp-1")
        async with app.state.sessionmaker.begin() as session:
            receivable = await repository.get_for_update(session, uuid.UUID(created["id"]))
            await service.transition(
                session, receivable, ReceivableAction.expire, SYSTEM, clock=clock
            )
            assert receivable.active_fingerprint is None
        again = await submit_receivable(client, world.sme, world.core, invoice_number="EXP 1")
        assert again["status"] == "submitted"


class TestGetForUpdate:
    async def test_reads_afresh_over_a_stale_copy(self, client, world: World, app):
        created = await submit_receivable(client, world.sme, world.core)
        receivable_id = uuid.UUID(created["id"])
        async with app.state.sessionmaker() as session:
            stale = await session.get(Receivable, receivable_id)
            await session.execute(
                update(Receivable).where(Receivable.id == receivable_id).values(status="disputed")
            )
            fresh = await repository.get_for_update(session, receivable_id)
            assert fresh is stale and fresh.status == "disputed"
            assert await repository.get_for_update(session, uuid.uuid4()) is None
            await session.rollback()


class TestExpireLapsed:
    async def test_expires_only_what_lapsed_once(self, client, world: World, app, clock):
        early = await submit_receivable(client, world.sme, world.core, invoice_number="lapse-1")
        confirmed = await confirmed_receivable(client, world)
        advance_clock(app, world, seconds=3600)
        late = await submit_receivable(client, world.sme, world.core)
        advance_clock(app, world, seconds=30 * 86400 - 3600)
        async with app.state.sessionmaker.begin() as session:
            assert await service.expire_lapsed(session, clock=clock) == 1
        async with app.state.sessionmaker.begin() as session:
            assert await service.expire_lapsed(session, clock=clock) == 0
        statuses = {
            r["id"]: r["status"]
            for r in (await client.get("/receivables", headers=world.sme.headers)).json()["items"]
        }
        assert statuses == {
            early["id"]: "expired",
            confirmed["id"]: "confirmed",
            late["id"]: "submitted",
        }
        again = await submit_receivable(client, world.sme, world.core, invoice_number="lapse-1")
        assert again["status"] == "submitted"
        async with app.state.sessionmaker() as session:
            audit = (
                await session.execute(
                    select(AuditRecord).where(AuditRecord.action == "receivable.expired")
                )
            ).scalar_one()
        assert (audit.actor_role, audit.object_id) == ("system", uuid.UUID(early["id"]))


class TestConcurrentDuplicates:
    async def test_racing_twins_give_one_201_and_one_409(
        self, client: httpx.AsyncClient, world: World, app
    ):
        body = receivable_body(client, world.core, invoice_number="race-1")
        responses = await asyncio.gather(
            *(client.post("/receivables", json=body, headers=world.sme.headers) for _ in range(2))
        )
        assert sorted(r.status_code for r in responses) == [201, 409]
        conflict = next(r for r in responses if r.status_code == 409)
        assert conflict.json()["code"] == "duplicate_receivable"
        async with app.state.sessionmaker() as session:
            assert len((await session.execute(select(Receivable.id))).all()) == 1

    async def test_unique_index_is_the_last_line(self, client, world: World, app, monkeypatch):
        # As if a twin had committed between our registry check and our insert.
        async def never_taken(*_args, **_kwargs) -> bool:
            return False

        monkeypatch.setattr(repository, "active_fingerprint_taken", never_taken)
        body = receivable_body(client, world.core, invoice_number="race-2")
        first = await client.post("/receivables", json=body, headers=world.sme.headers)
        second = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert (first.status_code, second.status_code) == (201, 409)
        assert second.json()["code"] == "duplicate_receivable"

    async def test_amend_into_a_held_number_hits_the_index_too(
        self, client, world: World, app, monkeypatch
    ):
        async def never_taken(*_args, **_kwargs) -> bool:
            return False

        await submit_receivable(client, world.sme, world.core, invoice_number="race-3")
        other = await submit_receivable(client, world.sme, world.core, invoice_number="race-4")
        disputed = await client.post(
            f"/receivables/{other['id']}/dispute",
            json={"reason": "number"},
            headers=world.core.headers,
        )
        assert disputed.status_code == 200
        monkeypatch.setattr(repository, "active_fingerprint_taken", never_taken)
        response = await client.patch(
            f"/receivables/{other['id']}",
            json={"invoice_number": "RACE 3"},
            headers=world.sme.headers,
        )
        assert response.status_code == 409 and response.json()["code"] == "duplicate_receivable"
        after = await client.get(f"/receivables/{other['id']}", headers=world.sme.headers)
        assert after.json() == disputed.json()
