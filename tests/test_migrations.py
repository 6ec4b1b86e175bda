"""Migrations are the schema: upgrading an empty database reaches exactly the models'
metadata (no autogenerate diff), and every migration reverts cleanly. Both databases."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from receivables import migrate
from receivables.config import async_database_url
from receivables.models import metadata


async def _diff(url: str) -> list:
    engine = create_async_engine(async_database_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()


def _off_loop(function, *args):
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


async def test_head_matches_the_models(database_url: str) -> None:
    assert await _diff(database_url) == []


async def test_downgrade_to_base_and_back(database_url: str) -> None:
    config = migrate.alembic_config(database_url)
    _off_loop(command.downgrade, config, "base")
    _off_loop(command.upgrade, config, "head")
    assert await _diff(database_url) == []
    engine = create_async_engine(async_database_url(database_url))
    try:
        assert await migrate.current_revision(engine) == migrate.head_revision(database_url)
    finally:
        await engine.dispose()
