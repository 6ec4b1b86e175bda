"""The baseline: the smallest FastAPI + SQLAlchemy (async ORM) + asyncpg app doing a bid's
database work and the market read, on the project's own tables, with nothing else.

    POST  /listings/{id}/bids   verify the JWT (python-jose), SELECT listing ... FOR UPDATE,
                                insert the bid, update the listing's bid state; 201
    PATCH /bids/{id}            the same for a revision (the hot-listing baseline)
    GET   /listings             one page of open listings (joined with the receivable and
                                the debtor's name), serialized as the project serializes it
    GET   /ping                 a trivial route (load-generator calibration)

No authorization lookup, no audit row, no idempotency, no metrics middleware: what is
left is the cost of the stack itself (uvicorn + FastAPI + pydantic + SQLAlchemy ORM +
the driver + the database). bench/run.py serves it with `uvicorn --factory
baseline_app:create_app --workers N` next to the real server, on the same database.

Configuration: DATABASE_URL, RECEIVABLES_JWT_SECRET, BASELINE_POOL_SIZE (default 16).
(No `from __future__ import annotations`: FastAPI must resolve the dependency aliases
defined inside `create_app`.)
"""

import base64
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from jose import jwt
from pydantic import BaseModel
from sqlalchemy import and_, event, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from receivables.auctions.models import Bid, Listing
from receivables.organizations.models import Organization
from receivables.receivables.models import Receivable

AUDIENCE, ISSUER = "receivables-api", "receivables"


def _async_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def _engine(url: str, pool_size: int):
    url = _async_url(url)
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=30)
    # SQLite: one writer connection, every transaction BEGIN IMMEDIATE (PERFORMANCE.md).
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON", "synchronous=FULL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# ------------------------------------------------------------------ money text


def _rate_ppm(text: str) -> int:
    units, _, fraction = text.partition(".")
    if not units.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 6:
        raise HTTPException(422, "bad rate")
    return int(units) * 1_000_000 + int((fraction + "000000")[:6])


def _rate_text(ppm: int) -> str:
    return f"{ppm // 1_000_000}.{ppm % 1_000_000 // 100:04d}"


def _amount_text(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


# ------------------------------------------------------------------ schemas


class BidIn(BaseModel):
    discount_rate: str


class BidOut(BaseModel):
    id: uuid.UUID
    listing_id: uuid.UUID
    bank_id: uuid.UUID
    discount_rate: str
    status: str
    rate_set_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime


class ListingOut(BaseModel):
    id: uuid.UUID
    receivable_id: uuid.UUID
    seller_id: uuid.UUID
    debtor_id: uuid.UUID
    debtor_name: str
    status: str
    face_value: str
    currency: str
    due_date: dt.date
    max_discount_rate: str
    advance_ratio: str
    recourse: bool
    auto_award: bool
    closes_at: dt.datetime
    bid_count: int | None
    awarded_bid_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ListingPage(BaseModel):
    items: list[ListingOut]
    next_cursor: str | None


def _bid_out(bid: Bid) -> BidOut:
    return BidOut(
        id=bid.id, listing_id=bid.listing_id, bank_id=bid.bank_id,
        discount_rate=_rate_text(bid.discount_rate_ppm), status=bid.status,
        rate_set_at=bid.rate_set_at, created_at=bid.created_at, updated_at=bid.updated_at,
    )


# ------------------------------------------------------------------ the app


def create_app() -> FastAPI:
    url = os.environ["DATABASE_URL"]
    secret = os.environ["RECEIVABLES_JWT_SECRET"]
    pool_size = int(os.environ.get("BASELINE_POOL_SIZE", "16"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = _engine(url, pool_size)
        app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    def claims(authorization: Annotated[str | None, Header()] = None) -> dict:
        """Verify the bearer JWT with python-jose (signature, audience, issuer, expiry)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "no token")
        try:
            return jwt.decode(
                authorization[7:], secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except Exception:
            raise HTTPException(401, "bad token") from None

    Claims = Annotated[dict, Depends(claims)]

    async def session() -> AsyncIterator[AsyncSession]:
        async with app.state.sessionmaker() as s:
            yield s

    Session = Annotated[AsyncSession, Depends(session)]

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    @app.post("/listings/{listing_id}/bids", status_code=201, response_model=BidOut)
    async def place_bid(listing_id: uuid.UUID, body: BidIn, token: Claims, s: Session):
        rate_ppm = _rate_ppm(body.discount_rate)
        bank_id = uuid.UUID(token["org"])
        now = dt.datetime.now(dt.UTC)
        try:
            async with s.begin():
                listing = (await s.execute(
                    select(Listing).where(Listing.id == listing_id).with_for_update()
                )).scalar_one_or_none()
                if listing is None:
                    raise HTTPException(404, "no such listing")
                if listing.status != "open" or now >= listing.closes_at:
                    raise HTTPException(409, "auction closed")
                if rate_ppm > listing.max_discount_rate_ppm:
                    raise HTTPException(422, "above reserve")
                listing.bid_sequence += 1
                listing.bid_count += 1
                listing.updated_at = now
                bid = Bid(
                    listing_id=listing_id, bank_id=bank_id, discount_rate_ppm=rate_ppm,
                    rate_sequence=listing.bid_sequence, rate_set_at=now, created_at=now,
                    updated_at=now,
                )
                s.add(bid)
        except IntegrityError:
            raise HTTPException(409, "bid exists") from None
        return _bid_out(bid)

    @app.patch("/bids/{bid_id}", response_model=BidOut)
    async def revise_bid(bid_id: uuid.UUID, body: BidIn, token: Claims, s: Session):
        rate_ppm = _rate_ppm(body.discount_rate)
        bank_id = uuid.UUID(token["org"])
        now = dt.datetime.now(dt.UTC)
        async with s.begin():
            listing = (await s.execute(
                select(Listing)
                .where(Listing.id == select(Bid.listing_id).where(Bid.id == bid_id).scalar_subquery())
                .with_for_update()
            )).scalar_one_or_none()
            bid = (await s.execute(select(Bid).where(Bid.id == bid_id).with_for_update())).scalar_one_or_none()
            if listing is None or bid is None or bid.bank_id != bank_id:
                raise HTTPException(404, "no such bid")
            if listing.status != "open" or now >= listing.closes_at or bid.status != "active":
                raise HTTPException(409, "auction closed")
            if rate_ppm > listing.max_discount_rate_ppm:
                raise HTTPException(422, "above reserve")
            listing.bid_sequence += 1
            listing.updated_at = now
            bid.discount_rate_ppm = rate_ppm
            bid.rate_sequence = listing.bid_sequence
            bid.rate_set_at = bid.updated_at = now
        return _bid_out(bid)

    @app.get("/listings", response_model=ListingPage)
    async def market(
        token: Claims, s: Session,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ):
        stmt = (
            select(Listing, Receivable, Organization.name)
            .join(Receivable, Receivable.id == Listing.receivable_id)
            .join(Organization, Organization.id == Receivable.debtor_id)
            .where(Listing.status == "open")
        )
        if cursor:
            created_at, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            after, last = dt.datetime.fromisoformat(created_at), uuid.UUID(last_id)
            stmt = stmt.where(or_(
                Listing.created_at > after, and_(Listing.created_at == after, Listing.id > last)
            ))
        stmt = stmt.order_by(Listing.created_at, Listing.id).limit(limit + 1)
        rows = (await s.execute(stmt)).all()
        items = [
            ListingOut(
                id=listing.id, receivable_id=listing.receivable_id, seller_id=listing.seller_id,
                debtor_id=receivable.debtor_id, debtor_name=name, status=listing.status,
                face_value=_amount_text(receivable.face_value_minor), currency=receivable.currency,
                due_date=receivable.due_date, max_discount_rate=_rate_text(listing.max_discount_rate_ppm),
                advance_ratio=_rate_text(listing.advance_ratio_ppm), recourse=listing.recourse,
                auto_award=listing.auto_award, closes_at=listing.closes_at, bid_count=None,
                awarded_bid_id=None, created_at=listing.created_at, updated_at=listing.updated_at,
            )
            for listing, receivable, name in rows[:limit]
        ]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1][0]
            raw = json.dumps([last.created_at.isoformat(), str(last.id)]).encode()
            next_cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return ListingPage(items=items, next_cursor=next_cursor)

    return app
