"""Goal: failed logins are throttled per account and per client address with 429 and
`Retry-After`, counted in the database (so every worker sees them), and the throttle
answers alike for known and unknown accounts. Method: the real /auth/token over HTTP on
both databases, with small limits and the simulated clock."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from tests.conftest import make_settings
from tests.fixtures.world import PASSWORD, World

ACCOUNT_MAX, ADDRESS_MAX, WINDOW = 3, 6, 600


@pytest.fixture
def settings(database_url: str):
    return make_settings(
        database_url,
        login_failures_per_account_max=ACCOUNT_MAX,
        login_failures_per_address_max=ADDRESS_MAX,
        login_failure_window_seconds=WINDOW,
    )


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/auth/token", data={"username": email, "password": password})


async def fail(client: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        assert (await attempt(client, email, "wrong-password")).status_code == 401


class TestPerAccount:
    async def test_locks_the_account_with_429_and_retry_after(self, client, world: World):
        await fail(client, world.bank.email, ACCOUNT_MAX)
        response = await attempt(client, world.bank.email, PASSWORD)
        assert response.status_code == 429
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "too_many_login_attempts"
        assert int(response.headers["Retry-After"]) == WINDOW

    async def test_other_accounts_are_not_affected(self, client, world: World):
        await fail(client, world.bank.email, ACCOUNT_MAX)
        assert (await attempt(client, world.bank2.email, PASSWORD)).status_code == 200

    async def test_email_case_does_not_escape_the_counter(self, client, world: World):
        await fail(client, world.bank.email.upper(), ACCOUNT_MAX)
        assert (await attempt(client, world.bank.email, PASSWORD)).status_code == 429

    async def test_retry_after_counts_down_and_the_window_ends(self, app, client, world: World):
        await fail(client, world.bank.email, ACCOUNT_MAX)
        app.state.clock.advance(WINDOW - 100)
        waiting = await attempt(client, world.bank.email, PASSWORD)
        assert (waiting.status_code, waiting.headers["Retry-After"]) == (429, "100")
        app.state.clock.advance(100)
        assert (await attempt(client, world.bank.email, PASSWORD)).status_code == 200

    async def test_success_forgives_the_account(self, client, world: World):
        await fail(client, world.bank.email, ACCOUNT_MAX - 1)
        assert (await attempt(client, world.bank.email, PASSWORD)).status_code == 200
        await fail(client, world.bank.email, ACCOUNT_MAX - 1)
        assert (await attempt(client, world.bank.email, PASSWORD)).status_code == 200

    async def test_unknown_and_known_accounts_are_throttled_alike(self, client, world: World):
        ghost = "nobody@example.test"
        await fail(client, ghost, ACCOUNT_MAX)
        await fail(client, world.bank.email, ACCOUNT_MAX)
        unknown = await attempt(client, ghost, "wrong-password")
        known = await attempt(client, world.bank.email, "wrong-password")
        assert unknown.status_code == known.status_code == 429
        assert unknown.json() == known.json()
        assert unknown.headers["Retry-After"] == known.headers["Retry-After"]


class TestPerAddress:
    async def test_spraying_many_accounts_locks_the_address(self, client, world: World):
        emails = [f"user{i}@example.test" for i in range(ADDRESS_MAX)]
        for email in emails:
            await fail(client, email, 1)
        response = await attempt(client, world.bank.email, PASSWORD)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0

    async def test_success_does_not_forgive_the_address(self, client, world: World):
        for i in range(ADDRESS_MAX - 1):
            await fail(client, f"user{i}@example.test", 1)
        assert (await attempt(client, world.bank.email, PASSWORD)).status_code == 200
        await fail(client, "one-more@example.test", 1)
        assert (await attempt(client, world.bank2.email, PASSWORD)).status_code == 429


class TestClientCredentials:
    async def test_wrong_client_secrets_are_throttled_too(self, client, world: World):
        created = await client.post(
            f"/organizations/{world.bank.organization_id}/api-clients", headers=world.bank.headers
        )
        credentials = created.json()
        form = {"grant_type": "client_credentials", "client_id": credentials["client_id"]}
        for _ in range(ACCOUNT_MAX):
            wrong = await client.post("/auth/token", data={**form, "client_secret": "rcs_nope"})
            assert wrong.status_code == 401
        right = await client.post(
            "/auth/token", data={**form, "client_secret": credentials["client_secret"]}
        )
        assert right.status_code == 429


class TestTiming:
    async def test_unknown_user_and_wrong_password_take_about_as_long(self, client, world: World):
        """Both run one argon2 verification; the medians agree within a factor of 2 (a
        loose bound: the machine is shared, but a skipped hash would be ~100x faster)."""

        async def timed(email: str) -> float:
            started = time.perf_counter()
            await attempt(client, email, "wrong-password")
            return time.perf_counter() - started

        known, unknown = [], []
        for i in range(ACCOUNT_MAX - 1):
            known.append(await timed(world.bank.email))
            unknown.append(await timed(f"ghost{i}@example.test"))
        ratio = statistics.median(known) / statistics.median(unknown)
        assert 0.5 < ratio < 2.0, (known, unknown)
