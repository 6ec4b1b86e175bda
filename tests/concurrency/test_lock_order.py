"""The auction's lock order, listing before bid, where one statement takes both
(`auctions.repository.lock_own_bid`, every revision and withdrawal): PostgreSQL locks
the rows of `FOR UPDATE OF listing, bid` in the order the clause names them. That is
how its executor works, not a documented promise, so this pins it: while the statement
waits for a bid another transaction holds, it already holds the listing. Locked the
other way round, a revision holding the bid would wait for the listing while an award
holding the listing waits for the bid: a deadlock. PostgreSQL only: SQLite has one
writer and no row locks."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from receivables.auctions import repository
from tests.fixtures.market import bid, listed_receivable
from tests.fixtures.world import World

WAIT_SECONDS = 5.0


@pytest.fixture(scope="session")
def backend() -> str:
    return "postgres"


async def _holding_the_bid(app, bid_id: uuid.UUID):
    """A transaction that locked the bid row, and the connection to end it with."""
    connection = await app.state.engine.connect()
    await connection.begin()
    await connection.execute(text("SELECT id FROM bid WHERE id = :id FOR UPDATE"), {"id": bid_id})
    return connection


async def _listing_is_locked(app, listing_id: uuid.UUID) -> bool:
    async with app.state.engine.connect() as connection:
        try:
            await connection.execute(
                text("SELECT id FROM listing WHERE id = :id FOR UPDATE NOWAIT"), {"id": listing_id}
            )
        except DBAPIError as exc:
            assert "could not obtain lock" in str(exc.orig)
            return True
        finally:
            await connection.rollback()
        return False


async def test_a_revision_waiting_for_its_bid_already_holds_the_listing(
    app, client, world: World, clock
):
    _, listing = await listed_receivable(client, world, clock)
    placed = await bid(client, world.bank, listing["id"], "0.0500")
    listing_id, bid_id = uuid.UUID(listing["id"]), uuid.UUID(placed["id"])
    holder = await _holding_the_bid(app, bid_id)
    async with app.state.sessionmaker() as session:
        revision = asyncio.create_task(
            repository.lock_own_bid(session, bid_id, world.bank.organization_id)
        )
        try:
            await asyncio.sleep(0.3)
            assert not revision.done(), "the statement must wait for the held bid"
            assert await _listing_is_locked(app, listing_id)
        finally:
            await holder.rollback()
            await holder.close()
        locked_listing, locked_bid = await asyncio.wait_for(revision, WAIT_SECONDS)
        assert (locked_listing.id, locked_bid.id) == (listing_id, bid_id)
        await session.rollback()


async def test_another_banks_bid_is_neither_found_nor_locked(app, client, world: World, clock):
    _, listing = await listed_receivable(client, world, clock)
    placed = await bid(client, world.bank, listing["id"], "0.0500")
    async with app.state.sessionmaker() as session:
        found = await repository.lock_own_bid(
            session, uuid.UUID(placed["id"]), world.bank2.organization_id
        )
        assert found is None
        assert not await _listing_is_locked(app, uuid.UUID(listing["id"]))
        await session.rollback()
