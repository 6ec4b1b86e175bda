"""The serious-arrears list: who is on it (API.md: the overdue amount reaches
RECEIVABLES_SERIOUS_ARREARS_AMOUNT or the days reach RECEIVABLES_SERIOUS_ARREARS_DAYS),
and its membership as last published, whose every change is an audited event.

Nothing in the deal lifecycle fires when a debtor crosses a threshold (a repayment
lowers the amount, a day passing raises the days), so `refresh` compares the list
computed from the deals with the published one (SeriousArrearsMember) and records the
difference; the worker runs it as a job and GET /stats/arrears before answering.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.principal import SYSTEM
from receivables.config import Settings
from receivables.events import service as audit
from receivables.kit import money
from receivables.kit.clock import Clock
from receivables.stats import queries
from receivables.stats.models import SeriousArrearsMember

REFRESH_BATCH_SIZE_MAX = 500
"""Debtors one refresh lists or delists at most; the rest wait for the next run."""


def days_overdue(row: queries.Arrears, today: dt.date) -> int:
    return max(0, (today - row.oldest_due_date).days)


def is_serious(row: queries.Arrears, *, today: dt.date, settings: Settings) -> bool:
    """API.md: the overdue amount reaches RECEIVABLES_SERIOUS_ARREARS_AMOUNT or the
    days reach RECEIVABLES_SERIOUS_ARREARS_DAYS."""
    return (
        row.overdue_minor >= settings.serious_arrears_amount_minor
        or days_overdue(row, today) >= settings.serious_arrears_days
    )


async def serious_now(
    session: AsyncSession, *, today: dt.date, settings: Settings, currency: str | None = None,
    debtor_id: uuid.UUID | None = None,
) -> dict[tuple[uuid.UUID, str], queries.Arrears]:
    rows = await queries.arrears(session, currency=currency, debtor_id=debtor_id)
    return {
        (row.debtor_id, row.currency): row
        for row in rows
        if is_serious(row, today=today, settings=settings)
    }


async def refresh(
    session: AsyncSession, *, clock: Clock, settings: Settings,
    batch_size_max: int = REFRESH_BATCH_SIZE_MAX,
) -> int:
    """Bring the serious-arrears list up to date with the deals, in every currency:
    each debtor that joined it gets an `arrears.listed` audit event, each that left it
    `arrears.delisted` (actor: the platform; in the debtor's events feed). Returns how
    many debtors joined or left (at most `batch_size_max`; the rest at the next run).
    The caller owns the transaction. For the worker, and for GET /stats/arrears."""
    if not await queries.try_lock_arrears_refresh(session):
        return 0  # another transaction is refreshing right now
    today = clock.today()
    current = await serious_now(session, today=today, settings=settings)
    members = await queries.serious_members(session)
    joining = sorted(current.keys() - members.keys())[:batch_size_max]
    leaving = sorted(members.keys() - current.keys())[: batch_size_max - len(joining)]
    for key in joining:
        await _list(session, current[key], today=today, clock=clock, settings=settings)
    if leaving:
        still_owing = {
            (row.debtor_id, row.currency): row for row in await queries.arrears(session)
        }
        for key in leaving:
            await _delist(session, members[key], still_owing.get(key), today=today, clock=clock)
    await session.flush()
    return len(joining) + len(leaving)


async def _list(
    session: AsyncSession, row: queries.Arrears, *, today: dt.date, clock: Clock,
    settings: Settings,
) -> None:
    member = SeriousArrearsMember(
        debtor_id=row.debtor_id, currency=row.currency, listed_at=clock.now(),
        overdue_amount_minor=row.overdue_minor, max_days_overdue=days_overdue(row, today),
    )
    session.add(member)
    await _audit(session, member.debtor_id, "listed", clock=clock, data={
        "currency": row.currency,
        "overdue_amount": money.format_amount(row.overdue_minor),
        "max_days_overdue": member.max_days_overdue,
        "threshold_amount": settings.serious_arrears_amount,
        "threshold_days": settings.serious_arrears_days,
    })


async def _delist(
    session: AsyncSession, member: SeriousArrearsMember, row: queries.Arrears | None, *,
    today: dt.date, clock: Clock,
) -> None:
    await session.delete(member)
    await _audit(session, member.debtor_id, "delisted", clock=clock, data={
        "currency": member.currency,
        "listed_at": member.listed_at.isoformat(),
        "overdue_amount": money.format_amount(row.overdue_minor if row else 0),
        "max_days_overdue": days_overdue(row, today) if row else 0,
    })


async def _audit(
    session: AsyncSession, debtor_id: uuid.UUID, change: str, *, clock: Clock, data: dict
) -> None:
    listed = change == "listed"
    await audit.record(
        session, SYSTEM, clock=clock, action=f"arrears.{change}", object_type="organization",
        object_id=debtor_id, from_state=None if listed else "listed",
        to_state="listed" if listed else "delisted", data=data, recipients=(debtor_id,),
    )
