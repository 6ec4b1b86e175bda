"""Goal: API clients (OAuth2 client credentials) are created by their organization or
the operator, show their secret once, store only a hash, get tokens that identify the
client, and stop working the moment they are revoked or their organization suspended.
Method: the real routes over HTTP on both databases."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from receivables.auth.models import ApiClient
from receivables.events.models import AuditRecord
from tests.fixtures.world import Party, World


async def create_client(client: httpx.AsyncClient, owner: Party, caller: Party, **body) -> dict:
    response = await client.post(
        f"/organizations/{owner.organization_id}/api-clients", json=body or None,
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def client_token(client: httpx.AsyncClient, credentials: dict) -> httpx.Response:
    return await client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestCreate:
    async def test_the_organization_creates_its_own_client(self, client, world: World):
        created = await create_client(client, world.bank, world.bank, name="treasury")
        assert uuid.UUID(created["client_id"])
        assert created["client_secret"].startswith("rcs_") and len(created["client_secret"]) > 40
        assert created["organization_id"] == str(world.bank.organization_id)
        assert created["name"] == "treasury"
        assert created["revoked_at"] is None

    async def test_the_operator_creates_one_for_any_organization(self, client, world: World):
        created = await create_client(client, world.bank2, world.operator)
        assert created["organization_id"] == str(world.bank2.organization_id)

    async def test_another_organization_gets_404_and_the_regulator_403(self, client, world: World):
        path = f"/organizations/{world.bank.organization_id}/api-clients"
        other = await client.post(path, headers=world.bank2.headers)
        regulator = await client.post(path, headers=world.regulator.headers)
        assert (other.status_code, regulator.status_code) == (404, 403)

    async def test_the_secret_is_stored_as_an_argon2_hash(self, app, client, world: World):
        created = await create_client(client, world.bank, world.bank)
        async with app.state.sessionmaker() as session:
            row = await session.get(ApiClient, uuid.UUID(created["client_id"]))
        assert row is not None
        assert row.secret_hash.startswith("$argon2id$")
        assert created["client_secret"] not in row.secret_hash

    async def test_extra_fields_are_refused(self, client, world: World):
        response = await client.post(
            f"/organizations/{world.bank.organization_id}/api-clients",
            json={"name": "x", "organization_id": str(world.bank2.organization_id)},
            headers=world.bank.headers,
        )
        assert response.status_code == 422


class TestList:
    async def test_lists_without_secrets(self, client, world: World):
        await create_client(client, world.bank, world.bank, name="a")
        await create_client(client, world.bank, world.bank, name="b")
        response = await client.get(
            f"/organizations/{world.bank.organization_id}/api-clients", headers=world.bank.headers
        )
        assert response.status_code == 200
        items = response.json()["items"]
        assert sorted(i["name"] for i in items) == ["a", "b"]
        assert all("client_secret" not in i and "secret_hash" not in i for i in items)

    async def test_supervisors_may_list_others_may_not(self, client, world: World):
        await create_client(client, world.bank, world.bank)
        path = f"/organizations/{world.bank.organization_id}/api-clients"
        assert (await client.get(path, headers=world.regulator.headers)).status_code == 200
        assert (await client.get(path, headers=world.operator.headers)).status_code == 200
        assert (await client.get(path, headers=world.bank2.headers)).status_code == 404


class TestClientCredentials:
    async def test_token_identifies_the_client(self, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        response = await client_token(client, credentials)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "refresh_token" not in body
        me = await client.get("/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200
        assert me.json()["client_id"] == credentials["client_id"]
        assert me.json()["user_id"] is None
        assert me.json()["role"] == "bank"

    async def test_client_can_act_for_its_bank(self, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        token = (await client_token(client, credentials)).json()["access_token"]
        response = await client.get("/listings?status=open", headers=bearer(token))
        assert response.status_code == 200

    async def test_wrong_secret_and_unknown_client_answer_alike(self, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        wrong = await client_token(client, {**credentials, "client_secret": "rcs_wrong"})
        unknown = await client_token(client, {**credentials, "client_id": str(uuid.uuid4())})
        garbage = await client_token(client, {**credentials, "client_id": "not-a-uuid"})
        assert wrong.status_code == unknown.status_code == garbage.status_code == 401
        assert wrong.json() == unknown.json() == garbage.json()
        assert wrong.json()["code"] == "invalid_client"

    async def test_missing_fields_are_422_naming_them(self, client, world: World):
        response = await client.post("/auth/token", data={"grant_type": "client_credentials"})
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {"client_id", "client_secret"}

    async def test_revocation_kills_new_and_existing_tokens(self, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        token = (await client_token(client, credentials)).json()["access_token"]
        revoked = await client.delete(
            f"/organizations/{world.bank.organization_id}/api-clients/{credentials['client_id']}",
            headers=world.bank.headers,
        )
        assert revoked.status_code == 204
        assert (await client.get("/me", headers=bearer(token))).status_code == 401
        assert (await client_token(client, credentials)).status_code == 401
        listed = await client.get(
            f"/organizations/{world.bank.organization_id}/api-clients", headers=world.bank.headers
        )
        assert listed.json()["items"][0]["revoked_at"] is not None

    async def test_revoking_twice_is_a_no_op(self, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        path = f"/organizations/{world.bank.organization_id}/api-clients/{credentials['client_id']}"
        first = await client.delete(path, headers=world.bank.headers)
        second = await client.delete(path, headers=world.bank.headers)
        assert (first.status_code, second.status_code) == (204, 204)

    async def test_revoking_another_organizations_client_is_404(self, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        own_path = f"/organizations/{world.bank2.organization_id}/api-clients/{credentials['client_id']}"
        response = await client.delete(own_path, headers=world.bank2.headers)
        assert response.status_code == 404
        assert (await client_token(client, credentials)).status_code == 200

    async def test_suspension_kills_client_tokens(self, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        token = (await client_token(client, credentials)).json()["access_token"]
        await client.post(
            f"/organizations/{world.bank.organization_id}/suspend", headers=world.operator.headers
        )
        assert (await client.get("/me", headers=bearer(token))).status_code == 401
        again = await client_token(client, credentials)
        assert again.status_code == 403
        assert again.json()["code"] == "organization_suspended"

    async def test_a_client_cannot_mint_more_clients(self, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        token = (await client_token(client, credentials)).json()["access_token"]
        response = await client.post(
            f"/organizations/{world.bank.organization_id}/api-clients", headers=bearer(token)
        )
        assert response.status_code == 403

    async def test_creation_and_revocation_are_audited(self, app, client, world: World):
        credentials = await create_client(client, world.bank, world.bank)
        await client.delete(
            f"/organizations/{world.bank.organization_id}/api-clients/{credentials['client_id']}",
            headers=world.bank.headers,
        )
        async with app.state.sessionmaker() as session:
            stmt = select(AuditRecord.action, AuditRecord.actor_user_id).where(
                AuditRecord.object_id == uuid.UUID(credentials["client_id"])
            )
            rows = (await session.execute(stmt)).all()
        assert sorted(r[0] for r in rows) == ["api_client.created", "api_client.revoked"]
        assert {r[1] for r in rows} == {world.bank.user_id}
