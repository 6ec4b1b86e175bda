"""A pooled PostgreSQL connection that died while idle (a database restart, a dropped
socket) is replaced before a request uses it; a busy one is not pinged at all."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from receivables.kit import db
from tests.conftest import make_settings

PID = text("SELECT pg_backend_pid()")


@pytest.fixture
def engine_settings(database_url: str, backend: str):
    if backend != "postgres":
        pytest.skip("PostgreSQL only: SQLite has no server connection to lose")
    return make_settings(database_url, db_pool_size=1)


async def test_an_idle_connection_killed_by_the_server_is_replaced(engine_settings, monkeypatch):
    engine = db.create_engine(engine_settings)
    try:
        async with engine.connect() as connection:
            doomed_pid = (await connection.execute(PID)).scalar_one()
        async with engine.connect() as connection:  # the same pooled connection, at once
            assert (await connection.execute(PID)).scalar_one() == doomed_pid
        killer = db.create_engine(engine_settings)  # the pool's one connection is the victim
        try:
            async with killer.connect() as connection:
                await connection.execute(text(f"SELECT pg_terminate_backend({doomed_pid})"))
        finally:
            await killer.dispose()
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
            assert (await connection.execute(PID)).scalar_one() != doomed_pid
    finally:
        await engine.dispose()


async def test_a_connection_back_in_the_pool_a_moment_ago_is_not_pinged(
    engine_settings, monkeypatch
):
    engine = db.create_engine(engine_settings)
    pings: list[object] = []
    try:
        async with engine.connect() as connection:
            adapter = type((await connection.get_raw_connection()).dbapi_connection)
        original = adapter.ping
        monkeypatch.setattr(adapter, "ping", lambda self: pings.append(self) or original(self))
        for _ in range(3):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert pings == []
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # now every checkout is "idle"
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        assert len(pings) == 1
    finally:
        await engine.dispose()
