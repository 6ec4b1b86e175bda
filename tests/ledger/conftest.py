"""Rows the ledger's foreign keys need, inserted directly (the ledger tests must not
depend on the receivables, auctions and deals services): organizations, and a minimal
receivable → listing → bid → deal chain per deal."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auctions.models import Bid, Listing
from receivables.deals.models import Deal
from receivables.kit.clock import SimulatedClock
from receivables.kit.money import PPM
from receivables.organizations.models import Organization
from receivables.receivables.models import Receivable
from tests.fixtures.world import new_credit_code

CNY = "CNY"


@dataclass(frozen=True)
class Parties:
    sme_id: uuid.UUID
    bank_id: uuid.UUID
    debtor_id: uuid.UUID


def _organization(name: str, kind: str, size: str, now: dt.datetime) -> Organization:
    return Organization(name=name, kind=kind, credit_code=new_credit_code(), size=size,
                        sector="private", created_at=now)


async def add_parties(session: AsyncSession, clock: SimulatedClock) -> Parties:
    now = clock.now()
    sme = _organization("Ledger SME", "sme", "small", now)
    bank = _organization("Ledger Bank", "bank", "large", now)
    debtor = _organization("Ledger Debtor", "core", "large", now)
    session.add_all([sme, bank, debtor])
    await session.flush()
    return Parties(sme_id=sme.id, bank_id=bank.id, debtor_id=debtor.id)


def _receivable(parties: Parties, face_value_minor: int, now: dt.datetime) -> Receivable:
    return Receivable(
        seller_id=parties.sme_id, debtor_id=parties.debtor_id,
        invoice_number=f"INV-{uuid.uuid4().hex[:8]}", fingerprint=uuid.uuid4().hex,
        submitted_amount_minor=face_value_minor, face_value_minor=face_value_minor,
        currency=CNY, issue_date=now.date(), due_date=now.date() + dt.timedelta(days=90),
        status="awarded", submitted_at=now, confirmation_deadline_at=now + dt.timedelta(days=30),
        created_at=now, updated_at=now,
    )


async def add_deal(
    session: AsyncSession, clock: SimulatedClock, parties: Parties, *,
    face_value_minor: int = 1_000_000, principal_minor: int = 900_000, currency: str = CNY,
) -> Deal:
    """A deal awaiting funding; the tests move its status and repaid amount along with
    the entries they post, as the deals service does."""
    now = clock.now()
    receivable = _receivable(parties, face_value_minor, now)
    receivable.currency = currency
    session.add(receivable)
    await session.flush()
    listing = Listing(
        receivable_id=receivable.id, seller_id=parties.sme_id, status="awarded",
        max_discount_rate_ppm=100_000, advance_ratio_ppm=principal_minor * PPM // face_value_minor,
        closes_at=now + dt.timedelta(days=1), created_at=now, updated_at=now,
    )
    session.add(listing)
    await session.flush()
    bid = Bid(listing_id=listing.id, bank_id=parties.bank_id, discount_rate_ppm=40_000,
              status="won", rate_sequence=1, rate_set_at=now, created_at=now, updated_at=now)
    session.add(bid)
    await session.flush()
    deal = Deal(
        listing_id=listing.id, bid_id=bid.id, receivable_id=receivable.id,
        sme_id=parties.sme_id, bank_id=parties.bank_id, debtor_id=parties.debtor_id,
        status="awaiting_funding", currency=currency, face_value_minor=face_value_minor,
        principal_minor=principal_minor, advance_ratio_ppm=listing.advance_ratio_ppm,
        discount_rate_ppm=bid.discount_rate_ppm, fee_rate_ppm=0,
        due_date=receivable.due_date, funding_deadline_at=now + dt.timedelta(days=1),
        created_at=now, updated_at=now,
    )
    session.add(deal)
    await session.flush()
    return deal


@pytest.fixture
def sessionmaker(app):
    return app.state.sessionmaker


@pytest.fixture
async def parties(sessionmaker, clock: SimulatedClock) -> Parties:
    async with sessionmaker.begin() as session:
        return await add_parties(session, clock)


@pytest.fixture
def postgres_only(backend: str) -> None:
    """Row locks and concurrent transactions only exist on PostgreSQL (SQLite serializes
    every writer with BEGIN IMMEDIATE)."""
    if backend != "postgres":
        pytest.skip("PostgreSQL only: concurrent writers")
