"""Idempotency keys (API.md, RELIABILITY 19-23): the same key and body replay the first
answer and move no money twice; another body is 422; concurrent duplicates produce one
effect; keys are scoped to the organization and expire. Both databases."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from receivables.ledger.models import JournalEntry
from receivables.receivables.models import Receivable
from tests.fixtures.flows import receivable_body
from tests.fixtures.market import awarded_deal, ok
from tests.fixtures.world import World


async def _count(app, model) -> int:
    async with app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def _keyed(party, key: str) -> dict[str, str]:
    return {**party.headers, "Idempotency-Key": key}


class TestReplay:
    async def test_same_key_same_body_replays_one_funding(self, app, client, world: World, clock):
        deal = await awarded_deal(client, world, clock)
        body = {"amount": deal["funding_amount"], "payment_reference": "W-1"}
        answers = [
            await client.post(f"/deals/{deal['id']}/fund", json=body, headers=_keyed(world.bank, "fund-1"))
            for _ in range(5)
        ]
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == 1
        assert [a.headers.get("Idempotent-Replayed") for a in answers] == [None] + ["true"] * 4
        assert await _count(app, JournalEntry) == 1

    async def test_same_key_other_body_is_422_and_changes_nothing(self, app, client, world: World):
        body = receivable_body(client, world.core)
        first = await client.post("/receivables", json=body, headers=_keyed(world.sme, "sub-1"))
        other = await client.post(
            "/receivables", json=body | {"face_value": "5.00"}, headers=_keyed(world.sme, "sub-1")
        )
        assert first.status_code == 201
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        assert await _count(app, Receivable) == 1

    async def test_errors_are_not_stored_and_a_retry_runs_again(self, client, world: World, clock):
        deal = await awarded_deal(client, world, clock)
        wrong = {"amount": "1.00", "payment_reference": "W"}
        first = await client.post(f"/deals/{deal['id']}/fund", json=wrong, headers=_keyed(world.bank, "k"))
        assert first.status_code == 422
        right = {"amount": deal["funding_amount"], "payment_reference": "W"}
        second = await client.post(f"/deals/{deal['id']}/fund", json=right, headers=_keyed(world.bank, "k"))
        assert second.status_code == 200

    async def test_keys_are_scoped_to_the_organization(self, app, client, world: World):
        for seller in (world.sme, world.sme2):
            response = await client.post(
                "/receivables", json=receivable_body(client, world.core), headers=_keyed(seller, "shared")
            )
            assert response.status_code == 201
            assert "Idempotent-Replayed" not in response.headers
        assert await _count(app, Receivable) == 2

    async def test_expired_key_executes_anew(self, app, client, world: World, clock):
        body = receivable_body(client, world.core, due_in_days=200)
        first = await client.post("/receivables", json=body, headers=_keyed(world.sme, "old"))
        clock.advance(25 * 3600)
        from tests.fixtures.world import mint_token

        token = mint_token(app, user_id=world.sme.user_id, organization_id=world.sme.organization_id, role="sme")
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "old"}
        again = await client.post("/receivables", json=body, headers=headers)
        assert first.status_code == 201
        assert (again.status_code, again.json()["code"]) == (409, "duplicate_receivable")

    async def test_malformed_key_is_422(self, client, world: World):
        headers = _keyed(world.sme, "has space")
        response = await client.post("/receivables", json=receivable_body(client, world.core), headers=headers)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_idempotency_key")


class TestConcurrentDuplicates:
    async def test_ten_at_once_make_one_receivable(self, app, client: httpx.AsyncClient, world: World):
        body = receivable_body(client, world.core)
        answers = await asyncio.gather(*(
            client.post("/receivables", json=body, headers=_keyed(world.sme, "burst")) for _ in range(10)
        ))
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) <= {201, 409}
        created = [a for a in answers if a.status_code == 201]
        assert len({a.json()["id"] for a in created}) == 1
        for refused in (a for a in answers if a.status_code == 409):
            assert refused.json()["code"] == "idempotency_key_in_flight"
        assert await _count(app, Receivable) == 1
