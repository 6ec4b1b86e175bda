"""`receivables worker` as real processes: two copies started together over a backlog of
290 due jobs apply each exactly once (audit rows and ledger prove it); the loop stops
cleanly on SIGTERM; `--now` needs the simulated clock.

The multi-worker test is the PostgreSQL claim (`FOR UPDATE SKIP LOCKED`); it also runs
on SQLite, where the second copy waits for the write lock and must corrupt nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import signal
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from receivables import cli
from receivables.auctions.models import Bid, Listing
from receivables.deals.models import Deal
from receivables.events import service as events_service
from receivables.events.models import AuditRecord
from receivables.kit.clock import SimulatedClock
from receivables.ledger.models import JournalEntry
from receivables.ledger.verify import verify
from receivables.receivables.models import Receivable
from receivables.worker import runner
from tests.conftest import JWT_SECRET
from tests.fixtures.flows import advance_clock
from tests.fixtures.market import funded_deal, listed_receivable
from tests.fixtures.world import World
from tests.worker.support import counts, deadline_part

RECEIVABLES = str(Path(sys.executable).with_name("receivables"))
DAY = 24 * 3600
WORKERS = 2
PROCESS_TIMEOUT_SECONDS = 120
LIFECYCLE_OBJECTS = ("receivable", "listing", "bid", "deal")
"""What deadlines move; other jobs of the worker (statistics) may audit other objects."""


def worker_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVABLES_")}
    env.update({
        "DATABASE_URL": database_url,
        "RECEIVABLES_JWT_SECRET": JWT_SECRET,
        "RECEIVABLES_SIMULATED_CLOCK": "true",
    })
    env.update(extra)
    return env


async def run_worker(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        RECEIVABLES, "worker", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT_SECONDS)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# ------------------------------------------------------------------ the backlog


@dataclass
class Backlog:
    """What each due object must become, filled while inserting it."""

    awarded: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    """auto-award listing → the bid that must win (lowest rate, then earliest)."""
    bids: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    """listing → its bids."""
    expired: list[uuid.UUID] = field(default_factory=list)
    """listings that must expire (no bid, or auto_award off)."""
    receivable_of: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    lapsed: list[uuid.UUID] = field(default_factory=list)
    unfunded: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    """deal awaiting funding past its deadline → its receivable."""
    overdue: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    """funded deal past its due date → its receivable."""

    @property
    def expected_processed(self) -> dict[str, int]:
        return counts(
            receivables_expired=len(self.lapsed),
            auctions_closed=len(self.awarded) + len(self.expired),
            deals_cancelled=len(self.unfunded),
            deals_overdue=len(self.overdue),
        )


def _receivable(world: World, now: dt.datetime, status: str, **extra) -> Receivable:
    fingerprint = uuid.uuid4().hex
    values = {
        "seller_id": world.sme.organization_id, "debtor_id": world.core.organization_id,
        "invoice_number": f"BACKLOG-{fingerprint[:10]}", "fingerprint": fingerprint,
        "active_fingerprint": fingerprint, "submitted_amount_minor": 100_000_00,
        "face_value_minor": 100_000_00, "issue_date": now.date() - dt.timedelta(days=10),
        "due_date": now.date() + dt.timedelta(days=60), "status": status, "submitted_at": now,
        "confirmation_deadline_at": now + dt.timedelta(days=30),
        "created_at": now, "updated_at": now,
    }
    if status != "submitted":
        values["confirmed_at"] = now
    values.update(extra)
    return Receivable(**values)


def _listing(receivable: Receivable, closes_at: dt.datetime, now: dt.datetime, **extra) -> Listing:
    return Listing(
        receivable_id=receivable.id, seller_id=receivable.seller_id, max_discount_rate_ppm=80_000,
        advance_ratio_ppm=1_000_000, closes_at=closes_at, created_at=now, updated_at=now, **extra,
    )


async def build_backlog(app, world: World, *, due_at: dt.datetime) -> Backlog:
    """290 objects due at `due_at`, inserted directly (the API would take minutes): 150
    auto-award auctions with 1-3 bids at two rates (ties), 40 without bids, 30 without
    auto-award, 30 lapsed receivables and 30 deals past their funding deadline."""
    rng = random.Random(20260302)
    now = app.state.clock.now()
    banks = [world.bank, world.bank2, world.bank3]
    backlog = Backlog()
    rows: list = []
    for index in range(220):
        receivable = _receivable(world, now, "listed")
        auto_award = index < 190
        listing = _listing(receivable, due_at, now, auto_award=auto_award)
        bidders = [] if 150 <= index < 190 else rng.sample(banks, 2 if index >= 190 else rng.randint(1, 3))
        bids = []
        for sequence, bank in enumerate(bidders, start=1):
            bids.append(Bid(
                listing_id=listing.id, bank_id=bank.organization_id,
                discount_rate_ppm=rng.choice((40_000, 45_000)), rate_sequence=sequence,
                rate_set_at=now, created_at=now, updated_at=now,
            ))
        listing.bid_count = listing.bid_sequence = len(bids)
        rows += [receivable, listing, *bids]
        backlog.receivable_of[listing.id] = receivable.id
        backlog.bids[listing.id] = [b.id for b in bids]
        if auto_award and bids:
            backlog.awarded[listing.id] = min(bids, key=lambda b: (b.discount_rate_ppm, b.rate_sequence)).id
        else:
            backlog.expired.append(listing.id)
    for _ in range(30):
        receivable = _receivable(world, now, "submitted", confirmation_deadline_at=due_at)
        rows.append(receivable)
        backlog.lapsed.append(receivable.id)
    for _ in range(30):
        receivable = _receivable(world, now, "awarded")
        listing = _listing(receivable, now, now, status="awarded")
        won = Bid(
            listing_id=listing.id, bank_id=world.bank.organization_id, discount_rate_ppm=40_000,
            status="won", rate_sequence=1, rate_set_at=now, created_at=now, updated_at=now,
        )
        listing.awarded_bid_id = won.id
        deal = Deal(
            listing_id=listing.id, bid_id=won.id, receivable_id=receivable.id,
            sme_id=receivable.seller_id, bank_id=won.bank_id, debtor_id=receivable.debtor_id,
            currency="CNY", face_value_minor=receivable.face_value_minor,
            principal_minor=receivable.face_value_minor, advance_ratio_ppm=1_000_000,
            discount_rate_ppm=40_000, fee_rate_ppm=0, due_date=receivable.due_date,
            funding_deadline_at=due_at, created_at=now, updated_at=now,
        )
        rows += [receivable, listing, won, deal]
        backlog.unfunded[deal.id] = receivable.id
    async with app.state.sessionmaker.begin() as session:
        for model in (Receivable, Listing, Bid, Deal):  # parents first: no relationships to sort by
            session.add_all([row for row in rows if isinstance(row, model)])
            await session.flush()
    return backlog


async def audit_counts(app) -> Counter[tuple[uuid.UUID, str]]:
    async with app.state.sessionmaker() as session:
        stmt = (
            select(AuditRecord.object_id, AuditRecord.action, func.count())
            .where(AuditRecord.object_type.in_(LIFECYCLE_OBJECTS))
            .group_by(AuditRecord.object_id, AuditRecord.action)
        )
        return Counter({(o, a): n for o, a, n in (await session.execute(stmt)).all()})


async def statuses(app, model) -> dict[uuid.UUID, str]:
    async with app.state.sessionmaker() as session:
        return dict((await session.execute(select(model.id, model.status))).all())


async def run_with_both_holding_claims(app, workers: list) -> list[tuple[int, str, str]]:
    """PostgreSQL: hold the audit chain head's row lock, which every committing job
    takes, until each worker is blocked committing its first claimed batch — so both
    provably hold claims at the same time — then let them run to the end."""
    async with app.state.engine.connect() as holder, app.state.engine.connect() as watcher:
        await holder.begin()
        await holder.execute(text("SELECT last_index FROM audit_chain_head WHERE id = 1 FOR UPDATE"))
        tasks = [asyncio.ensure_future(worker) for worker in workers]
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        for _ in range(600):
            blocked = (await watcher.execute(waiting)).scalar_one()
            await watcher.commit()
            if blocked >= len(workers) or any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.05)
        assert blocked == len(workers), "both workers should be waiting to commit a claimed batch"
        await holder.rollback()
    return list(await asyncio.gather(*tasks))


@pytest.mark.slow
async def test_two_workers_apply_each_due_job_exactly_once(app, client, world: World, clock, database_url):
    # Ten funded deals due in 2 days (real ledger entries), then three days later the
    # backlog: everything falls due one hour from then.
    funded = [await funded_deal(client, world, clock, due_in_days=2, face_value="1000.00") for _ in range(10)]
    advance_clock(app, world, seconds=3 * DAY)
    due_at = clock.now() + dt.timedelta(hours=1)
    backlog = await build_backlog(app, world, due_at=due_at)
    backlog.overdue = {uuid.UUID(d["id"]): uuid.UUID(d["receivable_id"]) for d in funded}
    async with app.state.sessionmaker() as session:
        entries_before = (await session.execute(select(func.count()).select_from(JournalEntry))).scalar_one()
    assert entries_before == 10
    audit_before = await audit_counts(app)

    now_arg = (due_at + dt.timedelta(minutes=1)).isoformat()
    env = worker_env(database_url)
    workers = [run_worker("--once", "--now", now_arg, env=env) for _ in range(WORKERS)]
    if app.state.settings.is_sqlite:  # one writer at a time: the second copy queues
        results = await asyncio.gather(*workers)
    else:
        results = await run_with_both_holding_claims(app, workers)
    reports = []
    for returncode, out, err in results:
        assert returncode == 0, err
        reports.append(json.loads(out))
    total: Counter[str] = Counter()
    for report in reports:
        assert report["failed"] == []
        total.update(deadline_part(report["processed"]))
    assert dict(total) == backlog.expected_processed, reports
    if not app.state.settings.is_sqlite:
        assert all(sum(deadline_part(r["processed"]).values()) > 0 for r in reports), reports

    # Exactly once, object by object: one audit row of the right action, never two.
    audit = await audit_counts(app) - audit_before
    expected: Counter[tuple[uuid.UUID, str]] = Counter()
    listings, bids = await statuses(app, Listing), await statuses(app, Bid)
    receivables, deals = await statuses(app, Receivable), await statuses(app, Deal)
    deals_by_listing: Counter[uuid.UUID] = Counter()
    async with app.state.sessionmaker() as session:
        for deal in (await session.execute(select(Deal))).scalars():
            deals_by_listing[deal.listing_id] += 1
            if deal.listing_id in backlog.awarded:
                assert (deal.bid_id, deal.status) == (backlog.awarded[deal.listing_id], "awaiting_funding")
                expected[(deal.id, "deal.created")] += 1
    for listing_id, winner in backlog.awarded.items():
        assert listings[listing_id] == "awarded" and deals_by_listing[listing_id] == 1
        expected[(listing_id, "listing.awarded")] += 1
        expected[(backlog.receivable_of[listing_id], "receivable.awarded")] += 1
        assert receivables[backlog.receivable_of[listing_id]] == "awarded"
        for bid_id in backlog.bids[listing_id]:
            outcome = "won" if bid_id == winner else "lost"
            assert bids[bid_id] == outcome
            expected[(bid_id, f"bid.{outcome}")] += 1
    for listing_id in backlog.expired:
        assert listings[listing_id] == "expired" and deals_by_listing[listing_id] == 0
        expected[(listing_id, "listing.expired")] += 1
        expected[(backlog.receivable_of[listing_id], "receivable.delisted")] += 1
        assert receivables[backlog.receivable_of[listing_id]] == "confirmed"
        for bid_id in backlog.bids[listing_id]:
            assert bids[bid_id] == "lost"
            expected[(bid_id, "bid.lost")] += 1
    for receivable_id in backlog.lapsed:
        assert receivables[receivable_id] == "expired"
        expected[(receivable_id, "receivable.expired")] += 1
    for deal_id, receivable_id in backlog.unfunded.items():
        assert (deals[deal_id], receivables[receivable_id]) == ("cancelled", "confirmed")
        expected[(deal_id, "deal.cancelled")] += 1
        expected[(receivable_id, "receivable.unawarded")] += 1
    for deal_id, receivable_id in backlog.overdue.items():
        assert (deals[deal_id], receivables[receivable_id]) == ("overdue", "overdue")
        expected[(deal_id, "deal.overdue")] += 1
        expected[(receivable_id, "receivable.overdue")] += 1
    assert audit == expected
    async with app.state.sessionmaker() as session:
        system_rows = select(func.count()).select_from(AuditRecord).where(
            AuditRecord.actor_role == "system", AuditRecord.occurred_at >= due_at,
            AuditRecord.object_type.in_(LIFECYCLE_OBJECTS),
        )
        assert (await session.execute(system_rows)).scalar_one() == sum(expected.values())
        entries_after = (await session.execute(select(func.count()).select_from(JournalEntry))).scalar_one()
        assert entries_after == entries_before  # deadlines move no money
        report = await verify(session)
        assert report.balanced, report.mismatches
        chain = await events_service.verify_chain(session)
        total_rows = (await session.execute(select(func.count()).select_from(AuditRecord))).scalar_one()
        assert chain.valid and chain.checked == total_rows

    again = await runner.run_due(
        app.state.sessionmaker, clock=SimulatedClock(due_at + dt.timedelta(minutes=1)),
        settings=app.state.settings,
    )
    assert (deadline_part(again.processed), again.failed) == (counts(), [])


async def test_the_loop_polls_and_stops_on_sigterm(app, client, world: World, clock, database_url):
    _, listing = await listed_receivable(client, world, clock)
    now = (clock.now() + dt.timedelta(hours=2)).isoformat()
    env = worker_env(database_url, RECEIVABLES_WORKER_NOW=now, RECEIVABLES_WORKER_POLL_SECONDS="0.2")
    process = await asyncio.create_subprocess_exec(
        RECEIVABLES, "worker", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        listing_id = uuid.UUID(listing["id"])
        for _ in range(200):
            if (await statuses(app, Listing))[listing_id] == "expired":
                break
            await asyncio.sleep(0.1)
        assert (await statuses(app, Listing))[listing_id] == "expired"
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert "worker stopped" in err.decode()


def test_now_needs_the_simulated_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    for name, value in worker_env(f"sqlite:///{tmp_path / 'unused.db'}").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECEIVABLES_SIMULATED_CLOCK", "false")
    assert cli.main(["worker", "--once", "--now", "2026-03-02T10:00:00+00:00"]) == 2
    assert "RECEIVABLES_SIMULATED_CLOCK=true" in capsys.readouterr().err
    monkeypatch.setenv("RECEIVABLES_WORKER_NOW", "2026-03-02T10:00:00+00:00")
    assert cli.main(["worker", "--once"]) == 2
    assert "RECEIVABLES_SIMULATED_CLOCK=true" in capsys.readouterr().err
    assert not (tmp_path / "unused.db").exists()
    with pytest.raises(SystemExit):
        cli.main(["worker", "--once", "--now", "2026-03-02T10:00:00"])  # no time zone
