"""Goal: refresh tokens are single use, rotate within a family, and a reused one
revokes the whole family. Method: the real password grant and POST /auth/refresh over
HTTP on both databases, with the simulated clock for expiry."""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import select

from receivables.auth.models import RefreshToken
from receivables.config import Settings
from tests.fixtures.world import PASSWORD, Party, World


async def login(client: httpx.AsyncClient, party: Party) -> dict:
    response = await client.post(
        "/auth/token", data={"grant_type": "password", "username": party.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


def bearer(pair: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


class TestRefresh:
    async def test_password_grant_returns_a_refresh_token(self, client, world: World):
        pair = await login(client, world.bank)
        assert pair["token_type"] == "bearer"
        assert pair["expires_in"] == 900
        assert isinstance(pair["refresh_token"], str) and len(pair["refresh_token"]) >= 43

    async def test_refresh_rotates_and_the_new_pair_works(self, client, world: World):
        first = await login(client, world.bank)
        response = await refresh(client, first["refresh_token"])
        assert response.status_code == 200, response.text
        second = response.json()
        assert second["refresh_token"] != first["refresh_token"]
        me = await client.get("/me", headers=bearer(second))
        assert me.status_code == 200 and me.json()["user_id"] == str(world.bank.user_id)
        third = await refresh(client, second["refresh_token"])
        assert third.status_code == 200

    async def test_only_a_digest_is_stored(self, app, client, world: World):
        pair = await login(client, world.bank)
        async with app.state.sessionmaker() as session:
            rows = list((await session.execute(select(RefreshToken))).scalars())
        assert len(rows) == 1
        assert rows[0].token_hash == hashlib.sha256(pair["refresh_token"].encode()).hexdigest()

    async def test_reuse_revokes_the_whole_family(self, client, world: World):
        first = await login(client, world.bank)
        second = (await refresh(client, first["refresh_token"])).json()
        reused = await refresh(client, first["refresh_token"])
        assert reused.status_code == 401
        assert reused.headers["content-type"].startswith("application/problem+json")
        assert reused.json()["code"] == "invalid_refresh_token"
        # The family's newest token, never used, is dead too: the thief and the owner
        # cannot tell each other apart, so both must log in again.
        newest = await refresh(client, second["refresh_token"])
        assert newest.status_code == 401

    async def test_reuse_does_not_touch_other_families(self, client, world: World):
        mine = await login(client, world.bank)
        other_session = await login(client, world.bank)
        await refresh(client, mine["refresh_token"])
        assert (await refresh(client, mine["refresh_token"])).status_code == 401
        assert (await refresh(client, other_session["refresh_token"])).status_code == 200

    async def test_unknown_token_is_401(self, client, world: World):
        response = await refresh(client, "not-a-token")
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_refresh_token"

    async def test_expired_token_is_401(self, app, client, world: World):
        pair = await login(client, world.bank)
        app.state.clock.advance(app.state.settings.refresh_token_seconds)
        assert (await refresh(client, pair["refresh_token"])).status_code == 401

    async def test_token_is_valid_until_just_before_expiry(self, app, client, world: World):
        pair = await login(client, world.bank)
        app.state.clock.advance(app.state.settings.refresh_token_seconds - 1)
        assert (await refresh(client, pair["refresh_token"])).status_code == 200

    async def test_suspended_organization_cannot_refresh(self, client, world: World):
        pair = await login(client, world.bank)
        suspended = await client.post(
            f"/organizations/{world.bank.organization_id}/suspend", headers=world.operator.headers
        )
        assert suspended.status_code == 200
        assert (await refresh(client, pair["refresh_token"])).status_code == 401

    async def test_extra_fields_and_oversize_tokens_are_422(self, client, world: World):
        pair = await login(client, world.bank)
        extra = await client.post(
            "/auth/refresh", json={"refresh_token": pair["refresh_token"], "user_id": "x"}
        )
        assert extra.status_code == 422
        long = await client.post("/auth/refresh", json={"refresh_token": "a" * 129})
        assert long.status_code == 422
        # Neither consumed the token.
        assert (await refresh(client, pair["refresh_token"])).status_code == 200


class TestRefreshSetting:
    def test_lifetime_is_configurable_with_a_30_day_default(self):
        assert Settings(jwt_secret="s" * 40).refresh_token_seconds == 30 * 86_400
        assert Settings(jwt_secret="s" * 40, refresh_token_seconds=3600).refresh_token_seconds == 3600
