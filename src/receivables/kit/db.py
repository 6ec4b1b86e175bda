"""One async engine per database URL, the shared metadata, and the per-request session.

SQLite: WAL, a busy timeout, foreign keys on, and every transaction opened with
`BEGIN IMMEDIATE` (SQLAlchemy's documented recipe: the driver's own BEGIN is disabled)
so writers queue for the file lock up front instead of failing to upgrade a read lock
with "database is locked". PostgreSQL: a pool sized to the worker, asyncpg.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import DateTime, MetaData, Select, Table, bindparam, event, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from receivables.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

SQLITE_BUSY_TIMEOUT_MS = 10_000


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC instant on every backend (SQLite stores naive ISO text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _install_sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.async_database_url
    if settings.is_sqlite:
        # One connection: SQLite serializes writers anyway, and a bigger pool only adds
        # lock waits (PERFORMANCE.md: same throughput, 3-5x the p99).
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
        _install_sqlite_pragmas(engine)
        return engine
    engine = create_async_engine(
        url, pool_size=settings.db_pool_size, max_overflow=0, pool_timeout=30
    )
    _ping_idle_connections(engine)
    return engine


IDLE_PING_SECONDS = 5.0
"""A pooled connection idle longer than this is pinged before use."""


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """SQLAlchemy's custom pessimistic ping: only a connection that sat idle is checked.

    `pool_pre_ping` pings at every checkout: a round trip and ≈ 4 % of the server's CPU
    per request under load (docs/performance.md), for connections used milliseconds ago.
    A connection that went stale (a database restart, a dropped socket) is one that sat
    in the pool; a busy one that breaks fails its statement, and SQLAlchemy then
    invalidates every connection older than the failure, as pre-ping would have."""

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _mark_idle(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return  # fresh from connect, or back in the pool a moment ago
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool discards it and checks out another (up to three attempts).
            raise DisconnectionError("idle connection failed its ping") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, roll back on any error. Services never commit."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def flush_or_raise(session: AsyncSession, error: type[Exception]) -> None:
    """Flush pending rows; a unique or check constraint that refuses them (a concurrent
    twin won the race) becomes `error` — a clean 4xx, never a 500.

    No savepoint: every caller lets `error` end its transaction (the request's answers
    4xx and rolls back), and a savepoint never guarded these rows anyway —
    `begin_nested()` flushes what is pending *before* it emits SAVEPOINT, so the refused
    INSERT always ran in the outer transaction. Creating the nested transaction cost
    about 8 % of a bid's CPU (docs/performance.md)."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise error() from exc


def unnest_select(table: Table, names: tuple[str, ...], *, prefix: str = "") -> Select:
    """PostgreSQL: `SELECT unnest(:name) AS name, ...` with each parameter an array of that
    column's type, for INSERT ... SELECT. A multi-row VALUES is compiled afresh for every
    call (SQLAlchemy cannot cache it) and is a new prepared statement per row count; this
    is one cached, prepared statement whatever the number of rows, which a data-modifying
    CTE can carry so that rows and their children go out in one round trip."""
    return select(*(
        func.unnest(bindparam(prefix + name, type_=ARRAY(table.c[name].type))).label(name)
        for name in names
    ))
