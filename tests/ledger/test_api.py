"""/accounts/me and /ledger/verify over HTTP, on both databases: who may call them, and
that they show what the ledger holds (negative balances included)."""

from __future__ import annotations

import httpx
import pytest

from receivables.deals.models import Deal
from receivables.ledger import service as ledger
from receivables.ledger.entries import funding_entry
from receivables.ledger.schemas import accounts_read
from tests.fixtures.world import World
from tests.ledger.conftest import CNY, Parties, add_deal


class TestAccountsMe:
    async def test_a_fresh_organization_has_no_balances(self, client, world: World):
        response = await client.get("/accounts/me", headers=world.sme.headers)
        assert response.status_code == 200
        body = response.json()
        assert body == {"organization_id": str(world.sme.organization_id), "balances": []}

    async def test_a_bank_after_funding_is_negative(self, client, world: World, app, clock):
        parties = Parties(sme_id=world.sme.organization_id, bank_id=world.bank.organization_id,
                          debtor_id=world.core.organization_id)
        async with app.state.sessionmaker.begin() as session:
            deal: Deal = await add_deal(session, clock, parties)
            deal.status = "disbursed"
            await ledger.post(session, funding_entry(
                deal_id=deal.id, currency=CNY, bank_id=parties.bank_id, sme_id=parties.sme_id,
                funding_minor=150, advance_minor=150, fee_minor=0, reference="F-1",
            ), clock=clock)
        bank = await client.get("/accounts/me", headers=world.bank.headers)
        sme = await client.get("/accounts/me", headers=world.sme.headers)
        assert bank.json()["balances"] == [{"currency": "CNY", "balance": "-1.50"}]
        assert sme.json()["balances"] == [{"currency": "CNY", "balance": "1.50"}]

    async def test_anonymous_is_401(self, client: httpx.AsyncClient, world: World):
        response = await client.get("/accounts/me")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


class TestLedgerVerify:
    @pytest.mark.parametrize("role", ["operator", "regulator"])
    async def test_supervisors_get_a_balanced_report(self, client, world: World, role: str):
        response = await client.get("/ledger/verify", headers=getattr(world, role).headers)
        assert response.status_code == 200
        assert response.json() == {
            "balanced": True, "accounts_checked": 0, "entries_checked": 0, "mismatches": []
        }

    @pytest.mark.parametrize("role", ["sme", "bank", "core"])
    async def test_marketplace_parties_are_403(self, client, world: World, role: str):
        response = await client.get("/ledger/verify", headers=getattr(world, role).headers)
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"

    async def test_anonymous_is_401(self, client: httpx.AsyncClient, world: World):
        response = await client.get("/ledger/verify")
        assert response.status_code == 401


def test_balances_are_formatted_as_decimal_strings():
    import uuid

    shaped = accounts_read(uuid.UUID(int=1), [("CNY", -150), ("USD", 123_456_789)])
    assert [b.model_dump() for b in shaped.balances] == [
        {"currency": "CNY", "balance": "-1.50"}, {"currency": "USD", "balance": "1234567.89"}
    ]
