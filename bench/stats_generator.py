"""Fill a PostgreSQL database with a province-sized marketplace for the statistics
benchmark: 1,000,000 receivables (by default) with their listings, winning bids, deals,
escrow accounts and repayment ledger entries, in about two minutes.

    .venv/bin/python bench/stats_generator.py \
        --server postgresql://postgres@127.0.0.1:5432/postgres --database stats_bench

The database is dropped and created, migrated with Alembic (the real schema and its
indexes), then loaded with COPY (asyncpg `copy_records_to_table`) in chunks. To load
fast, foreign-key triggers are off while loading (`session_replication_role = replica`,
which needs a superuser) and secondary indexes are dropped first and rebuilt after, from
their own definitions; then VACUUM ANALYZE, as autovacuum would do.

Distributions (seeded, so every run makes the same data):
- 300 core enterprises (Zipf-weighted: a few large buyers have most suppliers; sectors
  15 % government, 35 % state-owned, 45 % private, 5 % foreign), each with its own
  confirmation speed (median 2 h to 2 weeks) and payment discipline;
  20,000 SMEs (size micro 30 %, small 40 %, medium 20 %, large 10 %); 50 banks.
- Receivables over the last two years, 97 % CNY / 3 % USD, log-normal face values
  (median 300,000.00), terms of 45-180 days. Fates: submitted (only when younger than the
  30-day window), disputed, expired, cancelled, confirmed, listed, awarded, and ~83 %
  financed; a financed deal is disbursed, settled (on time or late), overdue or
  defaulted according to its due date and its debtor's discipline (~1 % overdue, ~3 %
  defaulted). 1 % of deals also have an earlier deal the bank never funded (cancelled).
- Ledger rows the statistics read: one escrow account per funded deal and the repayment
  entries (payer → escrow → bank, SME) with their dates; funding entries are not
  written (no statistic reads them).

Cached account balances are left at zero: this database is for reading statistics,
not for `ledger verify`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import math
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from receivables import migrate
from receivables.organizations.credit_code import make_credit_code

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
"""The benchmark's "now": the bench script runs the app with a clock fixed here."""
TODAY = NOW.date()
HISTORY_DAYS = 730
CHUNK = 50_000
GRACE_DAYS = 30
PPM = 1_000_000

TABLES = ("organization", "receivable", "listing", "bid", "deal", "account", "journal_entry", "posting")


def new_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


# ------------------------------------------------------------------ organizations


@dataclass
class Org:
    id: uuid.UUID
    kind: str
    name: str
    size: str
    sector: str
    speed_seconds: float = 0.0
    """A core enterprise's median confirmation time."""
    discipline: float = 1.0
    """A core enterprise's lateness multiplier (1 is average)."""
    premium_ppm: int = 0
    """A debtor's risk premium on bank rates."""
    credit_code: str = ""


def _zipf_weights(n: int, exponent: float) -> list[float]:
    return [1 / (rank ** exponent) for rank in range(1, n + 1)]


def make_organizations(rng: random.Random, cores: int, smes: int, banks: int) -> dict[str, list[Org]]:
    serial = iter(range(1, 10**7))
    found: dict[str, list[Org]] = {"core": [], "sme": [], "bank": [], "operator": [], "regulator": []}
    found["operator"].append(Org(new_id(rng), "operator", "Platform operator", "large", "private"))
    found["regulator"].append(Org(new_id(rng), "regulator", "Provincial regulator", "large", "government"))
    sectors = ["government"] * 15 + ["state_owned"] * 35 + ["private"] * 45 + ["foreign"] * 5
    for i in range(cores):
        found["core"].append(Org(
            new_id(rng), "core", f"Core Enterprise {i + 1:03d}", "large", rng.choice(sectors),
            speed_seconds=min(14 * 86400, 7200 * math.exp(rng.uniform(0, math.log(168)))),
            discipline=math.exp(rng.gauss(0, 0.7)), premium_ppm=rng.randrange(0, 30_001, 100),
        ))
    sizes = ["micro"] * 30 + ["small"] * 40 + ["medium"] * 20 + ["large"] * 10
    for i in range(smes):
        found["sme"].append(Org(new_id(rng), "sme", f"Supplier {i + 1:05d}", rng.choice(sizes), "private"))
    for i in range(banks):
        found["bank"].append(Org(new_id(rng), "bank", f"Bank {i + 1:02d}", "large", "state_owned"))
    for org in (o for group in found.values() for o in group):
        org.credit_code = make_credit_code(f"91310000MA{next(serial):07d}")
    return found


def organization_records(groups: dict[str, list[Org]]) -> list[tuple]:
    created = NOW - dt.timedelta(days=HISTORY_DAYS + 30)
    return [
        (o.id, o.name, o.kind, o.credit_code, o.size, o.sector, "active", created)
        for group in groups.values() for o in group
    ]


ORGANIZATION_COLUMNS = ["id", "name", "kind", "credit_code", "size", "sector", "status", "created_at"]


# ------------------------------------------------------------------ receivables and deals


RECEIVABLE_COLUMNS = [
    "id", "seller_id", "debtor_id", "invoice_number", "fingerprint", "active_fingerprint",
    "submitted_amount_minor", "face_value_minor", "currency", "issue_date", "due_date",
    "description", "status", "dispute_reason", "submitted_at", "confirmation_deadline_at",
    "confirmed_at", "confirmation_seconds", "created_at", "updated_at",
]
LISTING_COLUMNS = [
    "id", "receivable_id", "seller_id", "status", "max_discount_rate_ppm", "advance_ratio_ppm",
    "recourse", "auto_award", "closes_at", "bid_count", "bid_sequence", "awarded_bid_id",
    "created_at", "updated_at",
]
BID_COLUMNS = [
    "id", "listing_id", "bank_id", "discount_rate_ppm", "status", "rate_sequence",
    "rate_set_at", "created_at", "updated_at",
]
DEAL_COLUMNS = [
    "id", "listing_id", "bid_id", "receivable_id", "sme_id", "bank_id", "debtor_id", "status",
    "currency", "face_value_minor", "principal_minor", "advance_ratio_ppm", "discount_rate_ppm",
    "fee_rate_ppm", "recourse", "due_date", "funding_deadline_at", "value_date",
    "discount_minor", "fee_minor", "funding_minor", "advance_minor", "funding_reference",
    "repaid_minor", "bank_received_minor", "funded_at", "settled_at", "created_at", "updated_at",
]
ACCOUNT_COLUMNS = [
    "id", "kind", "organization_id", "deal_id", "currency", "debits_posted_minor",
    "credits_posted_minor", "created_at",
]
ENTRY_COLUMNS = ["id", "kind", "deal_id", "currency", "reference", "created_at"]
POSTING_COLUMNS = ["id", "entry_id", "debit_account_id", "credit_account_id", "amount_minor", "currency"]


@dataclass
class Batch:
    receivable: list[tuple] = field(default_factory=list)
    listing: list[tuple] = field(default_factory=list)
    bid: list[tuple] = field(default_factory=list)
    deal: list[tuple] = field(default_factory=list)
    account: list[tuple] = field(default_factory=list)
    journal_entry: list[tuple] = field(default_factory=list)
    posting: list[tuple] = field(default_factory=list)


@dataclass
class Picker:
    """Weighted choices, precomputed (random.choices with cum_weights is O(log n))."""

    items: list
    cumulative: list[float]

    @classmethod
    def zipf(cls, items: list, exponent: float) -> Picker:
        weights = _zipf_weights(len(items), exponent)
        total, cumulative = 0.0, []
        for w in weights:
            total += w
            cumulative.append(total)
        return cls(items, cumulative)

    def pick(self, rng: random.Random):
        return rng.choices(self.items, cum_weights=self.cumulative)[0]


class Generator:
    def __init__(self, rng: random.Random, groups: dict[str, list[Org]]) -> None:
        self.rng = rng
        self.cores = Picker.zipf(groups["core"], 0.8)
        self.smes = Picker.zipf(groups["sme"], 0.6)
        self.banks = Picker.zipf(groups["bank"], 1.0)
        self.accounts: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        self.serial = 0

    def org_account(self, batch: Batch, org_id: uuid.UUID, currency: str) -> uuid.UUID:
        key = (org_id, currency)
        if key not in self.accounts:
            self.accounts[key] = new_id(self.rng)
            batch.account.append((self.accounts[key], "organization", org_id, None, currency, 0, 0, NOW))
        return self.accounts[key]

    def instant(self, start: dt.datetime, end: dt.datetime) -> dt.datetime:
        span = max(0.0, (end - start).total_seconds())
        return start + dt.timedelta(seconds=self.rng.uniform(0, span))

    def receivable(self, batch: Batch) -> None:
        rng = self.rng
        self.serial += 1
        seller, debtor = self.smes.pick(rng), self.cores.pick(rng)
        currency = "USD" if rng.random() < 0.03 else "CNY"
        face_minor = int(min(5e10, max(1e5, 30_000_000 * math.exp(rng.gauss(0, 1.2)))))
        # Growth: more receivables recently (density rises linearly over the two years).
        age_days = HISTORY_DAYS * (1 - math.sqrt(rng.random()))
        created = NOW - dt.timedelta(days=age_days)
        issue = created.date() - dt.timedelta(days=rng.randrange(0, 15))
        due = issue + dt.timedelta(days=rng.randrange(45, 181))
        fingerprint = hashlib.sha256(f"{seller.id}{debtor.id}{self.serial}".encode()).hexdigest()
        row = {
            "id": new_id(rng), "seller": seller, "debtor": debtor, "currency": currency,
            "face": face_minor, "created": created, "issue": issue, "due": due,
            "fingerprint": fingerprint,
        }
        self._fate(batch, row, age_days)

    def _latency(self, debtor: Org) -> int:
        seconds = debtor.speed_seconds * math.exp(self.rng.gauss(0, 0.8))
        return int(min(29.5 * 86400, max(60, seconds)))

    def _fate(self, batch: Batch, row: dict, age_days: float) -> None:
        rng, due = self.rng, row["due"]
        roll = rng.random()
        if age_days < 30 and roll < 0.25:
            return self._emit_receivable(batch, row, "submitted")
        if roll < 0.04 and age_days >= 31:
            return self._emit_receivable(batch, row, "expired")
        if roll < 0.06:
            return self._emit_receivable(batch, row, "cancelled")
        if roll < 0.075:
            return self._emit_receivable(batch, row, "disputed")
        latency = self._latency(row["debtor"])
        confirmed_at = row["created"] + dt.timedelta(seconds=latency)
        if confirmed_at > NOW - dt.timedelta(hours=1):
            return self._emit_receivable(batch, row, "submitted")
        row["confirmed_at"], row["latency"] = confirmed_at, latency
        future = due > TODAY
        if confirmed_at.date() >= due - dt.timedelta(days=2):
            return self._emit_receivable(batch, row, "confirmed")  # too late to finance
        if roll < 0.155 or (not future and roll < 0.17):
            if rng.random() < 0.05:
                self._deal(batch, row, "cancelled", funded=False)
            return self._emit_receivable(batch, row, "confirmed")
        if roll < 0.165 and future:
            self._open_listing(batch, row)
            return self._emit_receivable(batch, row, "listed")
        if roll < 0.17 and future and (NOW - confirmed_at).days < 60:
            self._deal(batch, row, "awaiting_funding", funded=False)
            return self._emit_receivable(batch, row, "awarded")
        if rng.random() < 0.01:
            self._deal(batch, row, "cancelled", funded=False)
        status = self._deal_status(row)
        self._deal(batch, row, status, funded=True)
        mirror = {"disbursed": "financed", "overdue": "overdue", "defaulted": "defaulted",
                  "settled": "settled"}[status]
        return self._emit_receivable(batch, row, mirror)

    def _deal_status(self, row: dict) -> str:
        rng, due, discipline = self.rng, row["due"], row["debtor"].discipline
        late_days = (TODAY - due).days
        if late_days <= 0:
            return "settled" if rng.random() < 0.05 else "disbursed"
        if late_days <= GRACE_DAYS:
            return "overdue" if rng.random() < min(0.9, 0.2 * discipline) else "settled"
        return "defaulted" if rng.random() < min(0.5, 0.035 * discipline) else "settled"

    def _emit_receivable(self, batch: Batch, row: dict, status: str) -> None:
        rng = self.rng
        created = row["created"]
        freed = status in ("cancelled", "expired")
        confirmed_at = row.get("confirmed_at")
        dispute = "quantity differs from the delivery note" if status == "disputed" else None
        batch.receivable.append((
            row["id"], row["seller"].id, row["debtor"].id, f"INV-{self.serial:08d}",
            row["fingerprint"], None if freed else row["fingerprint"], row["face"], row["face"],
            row["currency"], row["issue"], row["due"], None, status, dispute, created,
            created + dt.timedelta(days=30), confirmed_at, row.get("latency"), created,
            max(created, confirmed_at or created) + dt.timedelta(seconds=rng.randrange(0, 3600)),
        ))

    def _rate(self, debtor: Org) -> int:
        rate = self.rng.gauss(38_000 + debtor.premium_ppm, 6_000)
        return int(min(120_000, max(15_000, round(rate / 100) * 100)))

    def _open_listing(self, batch: Batch, row: dict) -> None:
        opened = self.instant(row["confirmed_at"], NOW)
        listing_id = new_id(self.rng)
        batch.listing.append((
            listing_id, row["id"], row["seller"].id, "open", 80_000, PPM, False, True,
            NOW + dt.timedelta(hours=self.rng.randrange(1, 72)), 1, 1, None, opened, opened,
        ))
        rate = self._rate(row["debtor"])
        batch.bid.append((new_id(self.rng), listing_id, self.banks.pick(self.rng).id, rate,
                          "active", 1, opened, opened, opened))

    def _deal(self, batch: Batch, row: dict, status: str, *, funded: bool) -> None:
        rng = self.rng
        due_start = dt.datetime(row["due"].year, row["due"].month, row["due"].day, tzinfo=UTC)
        awarded = self.instant(row["confirmed_at"], min(
            NOW, row["confirmed_at"] + dt.timedelta(days=10), due_start - dt.timedelta(days=1)
        ))
        if status == "awaiting_funding":
            awarded = NOW - dt.timedelta(hours=rng.uniform(1, 20))
        bank = self.banks.pick(rng)
        rate = self._rate(row["debtor"])
        ratio = PPM if rng.random() < 0.8 else rng.choice((800_000, 900_000))
        face = row["face"]
        principal = half_up(face * ratio, PPM)
        listing_id, bid_id, deal_id = new_id(rng), new_id(rng), new_id(rng)
        batch.listing.append((
            listing_id, row["id"], row["seller"].id, "awarded", rate + 10_000, ratio, False, True,
            awarded, 1, 1, bid_id, awarded - dt.timedelta(hours=2), awarded,
        ))
        batch.bid.append((bid_id, listing_id, bank.id, rate, "won", 1, awarded, awarded, awarded))
        money = self._money(batch, row, deal_id, bank, status, awarded, principal, rate) if funded else {}
        batch.deal.append((
            deal_id, listing_id, bid_id, row["id"], row["seller"].id, bank.id, row["debtor"].id,
            status, row["currency"], face, principal, ratio, rate, 0, False, row["due"],
            awarded + dt.timedelta(hours=24), money.get("value_date"), money.get("discount"),
            money.get("fee"), money.get("funding"), money.get("advance"),
            "WIRE" if funded else None, money.get("repaid", 0), money.get("bank_received", 0),
            money.get("funded_at"), money.get("settled_at"), awarded,
            money.get("settled_at") or money.get("funded_at") or awarded,
        ))

    def _money(
        self, batch: Batch, row: dict, deal_id: uuid.UUID, bank: Org, status: str,
        awarded: dt.datetime, principal: int, rate: int,
    ) -> dict:
        rng, due, face, currency = self.rng, row["due"], row["face"], row["currency"]
        due_start = dt.datetime(due.year, due.month, due.day, tzinfo=UTC)
        funded_at = min(
            awarded + dt.timedelta(hours=rng.uniform(0.5, 20)),
            due_start - dt.timedelta(hours=1), NOW - dt.timedelta(minutes=1),
        )
        value_date = funded_at.date()
        days = max(0, (due - value_date).days)
        discount = half_up(principal * rate * days, PPM * 360)
        escrow = new_id(rng)
        batch.account.append((escrow, "escrow", None, deal_id, currency, 0, 0, funded_at))
        payments: list[tuple[dt.datetime, int]] = []
        settled_at = None
        if status == "settled":
            on_time = due >= TODAY or rng.random() < 0.88 / max(1.0, row["debtor"].discipline ** 0.5)
            if due >= TODAY:  # repaid early
                paid_at = self.instant(funded_at, NOW)
            elif on_time:
                paid_at = self.instant(
                    max(funded_at, due_start - dt.timedelta(days=5)), due_start + dt.timedelta(hours=23)
                )
            else:
                paid_at = self.instant(
                    due_start + dt.timedelta(days=1), min(NOW, due_start + dt.timedelta(days=90))
                )
            if not on_time and rng.random() < 0.3:
                part = face * rng.randrange(10, 60) // 100
                payments.append((self.instant(funded_at, due_start), part))
                payments.append((paid_at, face - part))
            else:
                payments.append((paid_at, face))
            settled_at = paid_at
        elif rng.random() < (0.1 if status == "disbursed" else 0.3):
            part = face * rng.randrange(10, 60) // 100
            payments.append((self.instant(funded_at, min(NOW, due_start + dt.timedelta(days=60))), part))
        repaid = bank_received = 0
        for paid_at, amount in payments:
            to_bank = min(amount, principal - bank_received)
            self._repayment(batch, deal_id, escrow, row, bank, paid_at, amount, to_bank)
            repaid, bank_received = repaid + amount, bank_received + to_bank
        return {
            "value_date": value_date, "discount": discount, "fee": 0, "funding": principal - discount,
            "advance": principal - discount, "repaid": repaid, "bank_received": bank_received,
            "funded_at": funded_at, "settled_at": settled_at,
        }

    def _repayment(
        self, batch: Batch, deal_id: uuid.UUID, escrow: uuid.UUID, row: dict, bank: Org,
        paid_at: dt.datetime, amount: int, to_bank: int,
    ) -> None:
        rng, currency = self.rng, row["currency"]
        entry = new_id(rng)
        batch.journal_entry.append((entry, "repayment", deal_id, currency, "PAY", paid_at))
        payer = self.org_account(batch, row["debtor"].id, currency)
        moves = [(payer, escrow, amount), (escrow, self.org_account(batch, bank.id, currency), to_bank),
                 (escrow, self.org_account(batch, row["seller"].id, currency), amount - to_bank)]
        for debit, credit, moved in moves:
            if moved:
                batch.posting.append((new_id(rng), entry, debit, credit, moved, currency))


# ------------------------------------------------------------------ loading


def with_database(server_url: str, database: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def recreate(server_url: str, database: str) -> None:
    connection = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


async def drop_secondary_indexes(connection: asyncpg.Connection) -> list[str]:
    """Drop the loaded tables' indexes that back no constraint; return their definitions."""
    rows = await connection.fetch(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        list(TABLES),
    )
    for row in rows:
        await connection.execute(f'DROP INDEX "{row["indexname"]}"')
    return [row["indexdef"] for row in rows]


async def copy(connection: asyncpg.Connection, table: str, columns: list[str], records: list[tuple]) -> None:
    if records:
        await connection.copy_records_to_table(table, records=records, columns=columns)


def make_batch(generator: Generator, count: int) -> Batch:
    batch = Batch()
    for _ in range(count):
        generator.receivable(batch)
    return batch


LOADED = (
    ("receivable", RECEIVABLE_COLUMNS), ("listing", LISTING_COLUMNS), ("bid", BID_COLUMNS),
    ("deal", DEAL_COLUMNS), ("account", ACCOUNT_COLUMNS), ("journal_entry", ENTRY_COLUMNS),
    ("posting", POSTING_COLUMNS),
)


async def load(url: str, args: argparse.Namespace) -> None:
    """Generate chunk n+1 in a thread while chunk n is copied: the database's work and
    Python's overlap."""
    rng = random.Random(args.seed)
    groups = make_organizations(rng, args.cores, args.smes, args.banks)
    generator = Generator(rng, groups)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("SET synchronous_commit = off")
        definitions = await drop_secondary_indexes(connection)
        await copy(connection, "organization", ORGANIZATION_COLUMNS, organization_records(groups))
        started, made = time.perf_counter(), 0
        sizes = [min(CHUNK, args.receivables - n) for n in range(0, args.receivables, CHUNK)]
        pending = asyncio.create_task(asyncio.to_thread(make_batch, generator, sizes[0]))
        for index, size in enumerate(sizes):
            batch = await pending
            if index + 1 < len(sizes):
                pending = asyncio.create_task(asyncio.to_thread(make_batch, generator, sizes[index + 1]))
            for table, columns in LOADED:
                await copy(connection, table, columns, getattr(batch, table))
            made += size
            print(f"  {made:>9,} receivables  {time.perf_counter() - started:6.1f} s", flush=True)
        print(f"rebuilding {len(definitions)} indexes", flush=True)
        for definition in definitions:
            await connection.execute(definition)
        await connection.execute("SET session_replication_role = DEFAULT")
        await connection.execute("VACUUM ANALYZE")
        counts = {t: await connection.fetchval(f'SELECT count(*) FROM "{t}"') for t in TABLES}
        print("rows:", ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="stats_bench")
    parser.add_argument("--receivables", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=300)
    parser.add_argument("--smes", type=int, default=20_000)
    parser.add_argument("--banks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    url = with_database(args.server, args.database)
    started = time.perf_counter()
    asyncio.run(recreate(args.server, args.database))
    migrate.upgrade_to_head(url)
    print(f"migrated {url}", flush=True)
    asyncio.run(load(url, args))
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
