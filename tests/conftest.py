"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

`backend` is a session fixture parametrized over both databases; `app` builds the real
application on a fresh database for each test (SQLite: a copy of a migrated template;
PostgreSQL: one migrated database per run, truncated before each test), with a simulated
clock fixed at a known instant. `client` talks to it through httpx's ASGI transport.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from receivables.app import create_app
from receivables.config import Settings, async_database_url
from receivables.kit.clock import SimulatedClock
from receivables.events.service import verify_chain
from receivables.ledger.verify import verify as verify_ledger
from tests.fixtures.databases import postgres_database, sqlite_template, truncate_statement
from tests.fixtures.world import World, build_world

JWT_SECRET = "test-secret-" + "x" * 40
CLOCK_START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
"""A Monday morning; worked examples fix their value dates from here."""


@pytest.fixture(scope="session")
def sqlite_template_path() -> Iterator[Path]:
    with sqlite_template() as path:
        yield path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template_path")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = create_async_engine(async_database_url(url))
    async with engine.begin() as connection:
        await connection.execute(text(truncate_statement()))
    await engine.dispose()
    yield url


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "jwt_secret": JWT_SECRET,
        "simulated_clock": True,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(CLOCK_START)


@pytest.fixture
async def app(settings: Settings, clock: SimulatedClock, request: pytest.FixtureRequest):
    """The real application; after the test, the ledger and the audit chain must still
    verify (every test is also a conservation check, and on PostgreSQL a check that the
    sealing trigger hashed what Python verifies) unless the test corrupts them on purpose."""
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application
        async with application.state.sessionmaker() as session:
            if request.node.get_closest_marker("corrupts_ledger") is None:
                report = await verify_ledger(session)
                assert report.balanced, f"ledger unbalanced after the test: {report.mismatches}"
            if request.node.get_closest_marker("corrupts_audit") is None:
                chain = await verify_chain(session)
                assert chain.valid, f"audit chain broken after the test at {chain.broken_at}"


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def world(app, client: httpx.AsyncClient) -> World:
    """Two SMEs, two core enterprises, three banks, an operator and a regulator,
    each with a user and a ready token."""
    return await build_world(app, client)
