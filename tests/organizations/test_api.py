"""Onboarding over HTTP: the operator creates organizations and users; logins issue
tokens; a suspended organization is locked out at once. Runs on both databases."""

from __future__ import annotations

import httpx

from tests.fixtures.world import PASSWORD, World, new_credit_code


class TestCreateOrganization:
    async def test_operator_creates_and_defaults_size(self, client: httpx.AsyncClient, world: World):
        body = {"name": "Gamma Steel", "kind": "sme", "credit_code": new_credit_code()}
        response = await client.post("/organizations", json=body, headers=world.operator.headers)
        assert response.status_code == 201
        created = response.json()
        assert created["status"] == "active"
        assert created["size"] == "small"
        assert created["sector"] == "private"

    async def test_bad_check_character_is_422_naming_the_field(self, client, world: World):
        code = new_credit_code()
        broken = code[:-1] + ("0" if code[-1] != "0" else "1")
        body = {"name": "Fake", "kind": "sme", "credit_code": broken}
        response = await client.post("/organizations", json=body, headers=world.operator.headers)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["field"] == "credit_code"

    async def test_duplicate_credit_code_is_409(self, client, world: World):
        code = new_credit_code()
        body = {"name": "One", "kind": "bank", "credit_code": code}
        first = await client.post("/organizations", json=body, headers=world.operator.headers)
        second = await client.post("/organizations", json=body, headers=world.operator.headers)
        assert (first.status_code, second.status_code) == (201, 409)
        assert second.json()["code"] == "duplicate_credit_code"

    async def test_non_operator_is_403(self, client, world: World):
        body = {"name": "X", "kind": "sme", "credit_code": new_credit_code()}
        response = await client.post("/organizations", json=body, headers=world.sme.headers)
        assert response.status_code == 403

    async def test_anonymous_is_401(self, client, world: World):
        response = await client.post("/organizations", json={})
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


class TestLogin:
    async def test_password_grant_then_me(self, client: httpx.AsyncClient, world: World):
        form = {"grant_type": "password", "username": world.bank.email, "password": PASSWORD}
        response = await client.post("/auth/token", data=form)
        assert response.status_code == 200
        token = response.json()["access_token"]
        me = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["role"] == "bank"
        assert me.json()["organization"]["id"] == str(world.bank.organization_id)

    async def test_wrong_password_and_unknown_user_answer_alike(self, client, world: World):
        wrong = await client.post(
            "/auth/token", data={"username": world.bank.email, "password": "nope-nope-nope"}
        )
        unknown = await client.post(
            "/auth/token", data={"username": "ghost@example.test", "password": "nope-nope-nope"}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()

    async def test_suspension_locks_out_tokens_and_logins(self, client, world: World):
        suspended = await client.post(
            f"/organizations/{world.bank.organization_id}/suspend", headers=world.operator.headers
        )
        assert suspended.status_code == 200
        assert suspended.json()["status"] == "suspended"
        assert (await client.get("/me", headers=world.bank.headers)).status_code == 401
        login = await client.post(
            "/auth/token", data={"username": world.bank.email, "password": PASSWORD}
        )
        assert login.status_code == 403
        assert login.json()["code"] == "organization_suspended"


class TestVisibility:
    async def test_sme_sees_itself_and_core_enterprises_not_banks(self, client, world: World):
        own = await client.get(f"/organizations/{world.sme.organization_id}", headers=world.sme.headers)
        core = await client.get(f"/organizations/{world.core.organization_id}", headers=world.sme.headers)
        bank = await client.get(f"/organizations/{world.bank.organization_id}", headers=world.sme.headers)
        other_sme = await client.get(
            f"/organizations/{world.sme2.organization_id}", headers=world.sme.headers
        )
        assert (own.status_code, core.status_code) == (200, 200)
        assert (bank.status_code, other_sme.status_code) == (404, 404)

    async def test_regulator_lists_everyone_with_pagination(self, client, world: World):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/organizations", params=params, headers=world.regulator.headers)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == len(world.parties)
