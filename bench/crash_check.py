#!/usr/bin/env python3
"""Crash check (issue 4 item 4; RELIABILITY.md I3, I10, test 36): SIGKILL a real server
under mixed load, restart it, let the clients retry with their same Idempotency-Keys,
then prove that every acknowledged operation is in the database exactly once and that
the ledger and the audit chain verify.

    .venv/bin/python bench/crash_check.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres --operations 300 --kills 3

What it does:
1. creates a fresh database on that server (dropped at the end; `--use-url-database`
   uses the URL's own database instead, `--keep-database` keeps the fresh one), runs
   `receivables migrate` and `receivables create-operator`;
2. starts `receivables serve` (uvicorn, tests/fixtures/live.py) and builds a world over
   HTTP: the operator creates the organizations and their users, everyone logs in at
   /auth/token;
3. `--clients` async httpx clients drive receivables through their lives (submit,
   confirm, list, bid, award with late bids racing it, fund, repay in parts, an
   over-payment now and then), with reads (lists, balances) in between. Every POST
   carries its own Idempotency-Key; a nemesis SIGKILLs the server `--kills` times at
   random moments of the load and restarts it;
4. a client retries every request that was not answered (connection refused or cut,
   timeout), answered 5xx, or answered 409 `idempotency_key_in_flight`, with the SAME
   key and body, until it gets an answer. A 2xx is an acknowledgement: after a crash,
   an operation that had committed replays its stored 2xx, one that had not runs again.
   A 4xx is final: nothing was stored with it, and it must be the operation's business
   answer (a late bid: 409 `auction_closed`; an over-payment: 422 `overpayment`); any
   other 4xx is counted as unexpected. A refused operation must have left no effect;
5. checks, straight from the database: each acknowledged submission is one receivable
   (by id and by seller + invoice number), each confirmation one `receivable.confirmed`
   audit row, each listing one listing of its receivable, each bid one bid of its bank
   on its listing, each award one deal of its listing, each funding one funding entry
   (and no entry for a deal never funded), each repayment one entry with its payment
   reference (and the deal's repaid amount is the sum of the acknowledged repayments);
   no row exists that no acknowledged operation explains; `receivables ledger verify`
   exits 0, `/ledger/verify` is balanced and `/audit/verify` is valid.

It prints a table and exits 1 on any duplicate, loss, refused-but-applied operation,
unexpected answer, abandoned operation, missing kill or failed verification.
`run(Config(...))` does the same in-process (tests/concurrency/test_crash.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import random
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fixtures.live, when run as a script

from receivables.organizations.credit_code import make_credit_code
from tests.fixtures.live import RECEIVABLES, LiveServer, server_env

PASSWORD = "crash-check correct horse battery"
JWT_SECRET = "crash-check-" + "k" * 48
SMES, CORES, BANKS = 3, 2, 4
REQUEST_TIMEOUT_SECONDS = 15.0
EXPECTED_REFUSALS = {
    "late_bid": {(409, "auction_closed"), (404, "not_found")},
    "over_repay": {(422, "overpayment")},
    "repay_settled": {(409, "illegal_transition")},
    "fund_next_day": {(422, "funding_amount_mismatch")},
}
"""The only 4xx answers that are business answers in this load; any other is unexpected.
A bid racing the award: 409 if it saw the listing open and then waited for the award's
lock, 404 if the award had committed (a closed listing is hidden from banks that never
bid on it). Paying more than is owed: 422; paying a settled deal: 409. A funding retried
after midnight UTC: 422, its amount was the previous value date's (checked by date)."""

STAGES = ("submit", "confirm", "list", "award", "fund", "repay")
STAGE_WEIGHTS = (5, 5, 10, 15, 15, 50)
"""How far each receivable's story goes (percent): mixed final states to check."""


@dataclass
class Config:
    database_url: str
    operations: int = 300
    kills: int = 3
    clients: int = 8
    seed: int | None = None
    use_url_database: bool = False
    keep_database: bool = False
    op_timeout: float = 120.0
    """Seconds one operation may take, retries included, before it is abandoned."""
    log_dir: Path | None = None
    verbose: bool = False


# ------------------------------------------------------------------ operations


@dataclass
class Op:
    """One POST with its own key; retried with the same key and body until answered."""

    kind: str
    """submit, confirm, list, bid, late_bid, award, fund, repay, over_repay."""
    party: str
    path: str
    body: dict[str, Any]
    key: str = field(default_factory=lambda: "cc-" + secrets.token_hex(12))
    meta: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    code: str | None = None
    answer: dict[str, Any] | None = None
    attempts: int = 0
    ambiguous: bool = False
    """At least one attempt got no answer (cut, refused, timed out) or a 5xx."""
    replayed: bool = False
    abandoned: bool = False

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status is not None and 400 <= self.status < 500


@dataclass
class Party:
    name: str
    kind: str
    organization_id: str
    email: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stats:
    transport_errors: int = 0
    server_errors: Counter[int] = field(default_factory=Counter)
    in_flight_409: int = 0
    relogins: int = 0
    reads: int = 0
    reads_failed: int = 0
    done: int = 0
    kills: int = 0
    idle_kills: int = 0
    restarts: int = 0


class Load:
    """Shared state of one run: parties, every operation, the counters."""

    def __init__(self, config: Config, server: LiveServer, rng: random.Random) -> None:
        self.config = config
        self.server = server
        self.rng = rng
        self.parties: dict[str, Party] = {}
        self.ops: list[Op] = []
        self.stats = Stats()
        self.finished = asyncio.Event()
        self.run_id = secrets.token_hex(3).upper()

    def log(self, message: str) -> None:
        if self.config.verbose:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    async def login(self, client: httpx.AsyncClient, party: Party) -> None:
        form = {"grant_type": "password", "username": party.email, "password": PASSWORD}
        while True:
            try:
                response = await client.post("/auth/token", data=form)
            except httpx.TransportError:
                await self._pause()
                continue
            if response.status_code >= 500:
                await self._pause()
                continue
            if response.status_code != 200:
                raise RuntimeError(f"login of {party.email}: {response.status_code} {response.text}")
            party.token = response.json()["access_token"]
            return

    async def _pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.05, 0.25))

    async def call(self, client: httpx.AsyncClient, op: Op, *, count: bool = True) -> Op:
        party = self.parties[op.party]
        deadline = time.monotonic() + self.config.op_timeout
        while True:
            if time.monotonic() > deadline:
                op.abandoned = True
                break
            op.attempts += 1
            headers = {**party.headers, "Idempotency-Key": op.key}
            try:
                response = await client.post(op.path, json=op.body, headers=headers)
            except httpx.TransportError:
                self.stats.transport_errors += 1
                op.ambiguous = True
                await self._pause()
                continue
            status = response.status_code
            op.meta["last_answer"] = f"{status} {response.text[:200]}"
            if status >= 500:
                self.stats.server_errors[status] += 1
                op.ambiguous = True
                await self._pause()
                continue
            code = _problem_code(response)
            if status == 409 and code == "idempotency_key_in_flight":
                self.stats.in_flight_409 += 1
                await self._pause()
                continue
            if status == 401:
                # The token is refused (expired): nothing ran; log in again, same key.
                self.stats.relogins += 1
                await self.login(client, party)
                continue
            op.status, op.code = status, code
            op.meta["answered_on"] = dt.datetime.now(dt.UTC).date().isoformat()
            if 200 <= status < 300:
                op.answer = response.json()
                op.replayed = response.headers.get("Idempotent-Replayed") == "true"
            break
        if count:
            self.ops.append(op)
            self.stats.done += 1
        self.log(f"{op.kind:10} {op.status} {op.code or ''} attempts={op.attempts}")
        return op

    async def read(self, client: httpx.AsyncClient, party_name: str, path: str) -> None:
        """A read between writes; retried a few times, never counted as an operation."""
        party = self.parties[party_name]
        for _ in range(20):
            try:
                response = await client.get(path, headers=party.headers)
            except httpx.TransportError:
                await self._pause()
                continue
            if response.status_code < 500:
                self.stats.reads += 1
                return
            await self._pause()
        self.stats.reads_failed += 1


def _problem_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


# ------------------------------------------------------------------ plans


@dataclass
class Plan:
    """One receivable's story; how far it goes and who takes part are drawn up front."""

    index: int
    sme: str
    core: str
    face_minor: int
    due_in_days: int
    stage: str
    banks: list[str]
    late_banks: list[str]
    repayments: list[int]
    over_at: int | None
    """Before which repayment (index) an over-payment is attempted; None: never."""
    seed: int = 0

    @property
    def operations(self) -> int:
        n = 1
        for stage, ops in (
            ("confirm", 1), ("list", 1 + len(self.banks)), ("award", 1 + len(self.late_banks)),
            ("fund", 1), ("repay", len(self.repayments) + (self.over_at is not None)),
        ):
            if STAGES.index(self.stage) >= STAGES.index(stage):
                n += ops
        return n


def make_plans(rng: random.Random, operations: int) -> list[Plan]:
    banks = [f"bank{i}" for i in range(BANKS)]
    plans: list[Plan] = []
    total = 0
    while total < operations:
        stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
        face_minor = rng.randrange(1_000_000, 90_000_000)
        shuffled = rng.sample(banks, len(banks))
        on_time = rng.randint(1, 3)
        late = rng.randint(0, len(banks) - on_time)
        parts = rng.randint(1, 3)
        in_full = rng.random() < 0.7
        cuts = sorted(rng.sample(range(1, face_minor), parts - 1 + (not in_full)))
        bounds = [0, *cuts] + ([face_minor] if in_full else [])
        repayments = [b - a for a, b in itertools.pairwise(bounds) if b > a]
        over_at = rng.randrange(len(repayments) + 1) if rng.random() < 0.25 else None
        plan = Plan(
            index=len(plans), sme=f"sme{rng.randrange(SMES)}", core=f"core{rng.randrange(CORES)}",
            face_minor=face_minor, due_in_days=rng.randint(60, 150), stage=stage,
            banks=shuffled[:on_time], late_banks=shuffled[on_time:on_time + late],
            repayments=repayments, over_at=over_at, seed=rng.randrange(2**32),
        )
        plans.append(plan)
        total += plan.operations
    return plans


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def minor(text: str) -> int:
    units, _, cents = text.partition(".")
    return int(units) * 100 + int((cents + "00")[:2])


async def drive(load: Load, client: httpx.AsyncClient, plan: Plan) -> None:
    """Walk one receivable as far as its plan says; stop early if a step is refused."""
    rng = random.Random(plan.seed)
    reached = STAGES.index(plan.stage)
    today = dt.datetime.now(dt.UTC).date()
    submit = await load.call(client, Op("submit", plan.sme, "/receivables", {
        "debtor_id": load.parties[plan.core].organization_id,
        "invoice_number": f"CC-{load.run_id}-{plan.index:05d}",
        "face_value": money(plan.face_minor),
        "issue_date": (today - dt.timedelta(days=10)).isoformat(),
        "due_date": (today + dt.timedelta(days=plan.due_in_days)).isoformat(),
    }, meta={"plan": plan.index}))
    if not submit.acknowledged or reached < 1:
        return
    receivable_id = submit.answer["id"]
    await load.read(client, plan.sme, "/receivables?limit=20")
    confirm = await load.call(client, Op(
        "confirm", plan.core, f"/receivables/{receivable_id}/confirm", {},
        meta={"receivable_id": receivable_id},
    ))
    if not confirm.acknowledged or reached < 2:
        return
    closes_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)
    listing_op = await load.call(client, Op("list", plan.sme, "/listings", {
        "receivable_id": receivable_id, "max_discount_rate": "0.0800",
        "closes_at": closes_at.isoformat(), "auto_award": False,
    }, meta={"receivable_id": receivable_id}))
    if not listing_op.acknowledged:
        return
    listing_id = listing_op.answer["id"]
    await load.read(client, plan.banks[0], "/listings?status=open&limit=20")
    bids = await asyncio.gather(*(
        load.call(client, Op(
            "bid", bank, f"/listings/{listing_id}/bids",
            {"discount_rate": f"0.{rng.randrange(300, 790):04d}"},
            meta={"listing_id": listing_id, "bank": bank},
        ))
        for bank in plan.banks
    ))
    placed = [b for b in bids if b.acknowledged]
    if reached < 3 or not placed:
        return
    best = min(placed, key=lambda b: b.answer["discount_rate"])
    award, *_ = await asyncio.gather(
        load.call(client, Op(
            "award", plan.sme, f"/listings/{listing_id}/award", {"bid_id": best.answer["id"]},
            meta={"listing_id": listing_id, "bid_id": best.answer["id"]},
        )),
        *(
            load.call(client, Op(
                "late_bid", bank, f"/listings/{listing_id}/bids",
                {"discount_rate": f"0.{rng.randrange(300, 790):04d}"},
                meta={"listing_id": listing_id, "bank": bank},
            ))
            for bank in plan.late_banks
        ),
    )
    if not award.acknowledged or reached < 4:
        return
    deal = award.answer
    fund_op = Op("fund", best.party, f"/deals/{deal['id']}/fund", {},
                 meta={"deal_id": deal["id"], "value_date": deal["value_date"]})
    fund_op.body = {"amount": deal["funding_amount"], "payment_reference": fund_op.key}
    fund = await load.call(client, fund_op)
    await load.read(client, best.party, "/accounts/me")
    if not fund.acknowledged or reached < 5:
        return
    owed = minor(deal["face_value"])
    for i, amount in enumerate([*plan.repayments, None]):
        if plan.over_at == i:
            over = Op("over_repay", plan.core, f"/deals/{deal['id']}/repay", {}, meta={
                "deal_id": deal["id"], "expect": "over_repay" if owed else "repay_settled",
            })
            over.body = {"amount": money(owed + 100), "payment_reference": over.key}
            await load.call(client, over)
        if amount is None:
            break
        repay = Op("repay", plan.core, f"/deals/{deal['id']}/repay", {},
                   meta={"deal_id": deal["id"], "amount_minor": amount})
        repay.body = {"amount": money(amount), "payment_reference": repay.key}
        if not (await load.call(client, repay)).acknowledged:
            return
        owed -= amount
        await load.read(client, plan.core, f"/deals/{deal['id']}")


# ------------------------------------------------------------------ world


async def build_world(load: Load, client: httpx.AsyncClient, operator_email: str) -> None:
    operator = Party("operator", "operator", "", operator_email)
    load.parties["operator"] = operator
    await load.login(client, operator)
    specs = [(f"sme{i}", "sme") for i in range(SMES)]
    specs += [(f"core{i}", "core") for i in range(CORES)]
    specs += [(f"bank{i}", "bank") for i in range(BANKS)]
    base = int(load.run_id, 16) % 10_000

    async def onboard(serial: int, name: str, kind: str) -> None:
        code = make_credit_code(f"91310000MA{base:04d}{serial:03d}")
        org = await load.call(client, Op("setup", "operator", "/organizations", {
            "name": f"{name} {load.run_id}", "kind": kind, "credit_code": code,
        }), count=False)
        if not org.acknowledged:
            raise RuntimeError(f"creating {name}: {org.status} {org.code} {org.meta.get('last_answer')}")
        email = f"{name}-{load.run_id.lower()}@crash-check.example.com"
        user = await load.call(client, Op(
            "setup", "operator", f"/organizations/{org.answer['id']}/users",
            {"email": email, "password": PASSWORD},
        ), count=False)
        if not user.acknowledged:
            raise RuntimeError(
                f"creating the user of {name}: {user.status} {user.code} {user.meta.get('last_answer')}"
            )
        load.parties[name] = Party(name, kind, org.answer["id"], email)

    await asyncio.gather(*(onboard(i, name, kind) for i, (name, kind) in enumerate(specs)))
    await asyncio.gather(*(
        load.login(client, party) for name, party in load.parties.items() if name != "operator"
    ))


# ------------------------------------------------------------------ nemesis


async def nemesis(load: Load, planned: int) -> None:
    """SIGKILL the server when the load reaches random points between 10 % and 90 % of
    the planned operations (a few ms later, so requests are in flight), restart it."""
    rng = load.rng
    points = sorted(rng.uniform(0.1, 0.9) * planned for _ in range(load.config.kills))
    for point in points:
        while load.stats.done < point and not load.finished.is_set():
            await asyncio.sleep(0.005)
        if load.finished.is_set():
            load.stats.idle_kills += 1
        await asyncio.sleep(rng.uniform(0, 0.03))
        load.server.kill()
        load.stats.kills += 1
        load.log(f"SIGKILL #{load.stats.kills} at {load.stats.done} operations")
        await asyncio.sleep(rng.uniform(0.05, 0.5))
        await load.server.astart()
        load.stats.restarts += 1
        load.log(f"restarted #{load.stats.restarts}")


async def run_load(load: Load, plans: list[Plan]) -> None:
    queue: asyncio.Queue[Plan] = asyncio.Queue()
    for plan in plans:
        queue.put_nowait(plan)

    async def worker() -> None:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        async with httpx.AsyncClient(
            base_url=load.server.base_url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
        ) as client:
            while not queue.empty():
                await drive(load, client, queue.get_nowait())

    chaos = asyncio.create_task(nemesis(load, sum(p.operations for p in plans)))
    try:
        await asyncio.gather(*(worker() for _ in range(load.config.clients)))
    finally:
        load.finished.set()
    await chaos


# ------------------------------------------------------------------ checking


@dataclass
class Report:
    database_url: str
    seed: int
    operations: int = 0
    acknowledged: int = 0
    found: int = 0
    duplicated: int = 0
    lost: int = 0
    refused: int = 0
    refused_applied: int = 0
    unexpected: int = 0
    abandoned: int = 0
    ambiguous: int = 0
    replayed: int = 0
    kills: int = 0
    kills_requested: int = 0
    idle_kills: int = 0
    restarts: int = 0
    transport_errors: int = 0
    server_errors: dict[int, int] = field(default_factory=dict)
    in_flight_409: int = 0
    reads: int = 0
    ledger_cli_exit: int | None = None
    ledger_balanced: bool = False
    audit_valid: bool = False
    audit_checked: int = 0
    entries_checked: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.duplicated == 0 and self.lost == 0 and self.refused_applied == 0
            and self.unexpected == 0 and self.abandoned == 0
            and self.kills == self.kills_requested and self.restarts == self.kills
            and self.ledger_cli_exit == 0 and self.ledger_balanced and self.audit_valid
        )

    def table(self) -> str:
        rows = [
            ("operations acknowledged (2xx)", self.acknowledged),
            ("  found exactly once", self.found),
            ("  duplicated (must be 0)", self.duplicated),
            ("  lost (must be 0)", self.lost),
            ("refused as expected (4xx)", self.refused),
            ("  refused but applied (must be 0)", self.refused_applied),
            ("unexpected answers (must be 0)", self.unexpected),
            ("abandoned (must be 0)", self.abandoned),
            ("kills (SIGKILL) / requested", f"{self.kills} / {self.kills_requested}"),
            ("restarts", self.restarts),
            ("attempts unanswered (cut, server down)", self.transport_errors),
            ("operations retried after no answer", self.ambiguous),
            ("  of which acknowledged by replay", self.replayed),
            ("409 in flight, retried", self.in_flight_409),
            ("5xx answers, retried", dict(self.server_errors) or 0),
            ("reads", self.reads),
            ("receivables ledger verify", f"exit {self.ledger_cli_exit}"),
            ("/ledger/verify", f"balanced={self.ledger_balanced} ({self.entries_checked} entries)"),
            ("/audit/verify", f"valid={self.audit_valid} ({self.audit_checked} records)"),
            ("wall time (of which load)", f"{self.seconds:.1f} s ({self.load_seconds:.1f} s)"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"crash check  seed={self.seed}  {self.operations} operations  {self.database_url}"]
        lines += [f"  {name:<{width}}  {value}" for name, value in rows]
        kinds = "  ".join(
            f"{kind}: {c['acknowledged']}" + (f"/{c['refused']} refused" if c["refused"] else "")
            for kind, c in sorted(self.by_kind.items())
        )
        lines.append(f"  acknowledged by kind: {kinds}")
        lines += [f"  PROBLEM: {p}" for p in self.problems[:30]]
        lines.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(lines)


async def _fetch(dsn: str, sellers: list[str]) -> dict[str, list[asyncpg.Record]]:
    """This run's rows: everything sold by its SMEs (so `--use-url-database` on a database
    with older rows checks only what this run did)."""
    mine = "SELECT id FROM listing WHERE seller_id = ANY($1::uuid[])"
    deals = "SELECT id FROM deal WHERE sme_id = ANY($1::uuid[])"
    queries = {
        "receivables": "SELECT id::text, seller_id::text, invoice_number FROM receivable "
                       "WHERE seller_id = ANY($1::uuid[])",
        "listings": "SELECT id::text, receivable_id::text FROM listing WHERE seller_id = ANY($1::uuid[])",
        "bids": f"SELECT id::text, listing_id::text, bank_id::text FROM bid WHERE listing_id IN ({mine})",
        "deals": "SELECT id::text, listing_id::text, repaid_minor FROM deal WHERE sme_id = ANY($1::uuid[])",
        "entries": f"SELECT id::text, kind, deal_id::text, reference FROM journal_entry WHERE deal_id IN ({deals})",
        "confirmations": (
            "SELECT object_id::text AS id, count(*) AS n FROM audit_record "
            "WHERE action = 'receivable.confirmed' AND object_id IN "
            "(SELECT id FROM receivable WHERE seller_id = ANY($1::uuid[])) GROUP BY object_id"
        ),
    }
    connection = await asyncpg.connect(dsn)
    try:
        return {name: await connection.fetch(sql, sellers) for name, sql in queries.items()}
    finally:
        await connection.close()


def check_database(load: Load, rows: dict[str, list[asyncpg.Record]], report: Report) -> None:
    """Every acknowledged operation's effect exactly once; every refused one's never;
    no row that no acknowledged operation explains."""
    org = {name: p.organization_id for name, p in load.parties.items()}
    effects: dict[int, int] = {}
    explained: dict[str, set[str]] = defaultdict(set)

    by_invoice = Counter((r["seller_id"], r["invoice_number"]) for r in rows["receivables"])
    receivable_ids = {r["id"] for r in rows["receivables"]}
    listings_of = defaultdict(list)
    for r in rows["listings"]:
        listings_of[r["receivable_id"]].append(r["id"])
    bids_of = defaultdict(list)
    for r in rows["bids"]:
        bids_of[(r["listing_id"], r["bank_id"])].append(r["id"])
    deals_of = defaultdict(list)
    repaid_of = {}
    for r in rows["deals"]:
        deals_of[r["listing_id"]].append(r["id"])
        repaid_of[r["id"]] = r["repaid_minor"]
    confirmations = {r["id"]: r["n"] for r in rows["confirmations"]}
    entries_by_reference = defaultdict(list)
    fundings_of = Counter()
    for r in rows["entries"]:
        entries_by_reference[r["reference"]].append(r)
        if r["kind"] == "funding":
            fundings_of[r["deal_id"]] += 1

    repaid_acked: Counter[str] = Counter()
    for i, op in enumerate(load.ops):
        answer = op.answer or {}
        if op.kind == "submit":
            key = (org[op.party], op.body["invoice_number"])
            n = by_invoice[key]
            if op.acknowledged and answer["id"] not in receivable_ids:
                n = 0
            explained["receivable"].add(answer.get("id", ""))
        elif op.kind == "confirm":
            n = confirmations.get(op.meta["receivable_id"], 0)
        elif op.kind == "list":
            found = listings_of[op.meta["receivable_id"]]
            n = len(found) if not op.acknowledged or answer["id"] in found else 0
            explained["listing"].add(answer.get("id", ""))
        elif op.kind in ("bid", "late_bid"):
            found = bids_of[(op.meta["listing_id"], org[op.party])]
            n = len(found) if not op.acknowledged or answer["id"] in found else 0
            explained["bid"].add(answer.get("id", ""))
        elif op.kind == "award":
            found = deals_of[op.meta["listing_id"]]
            n = len(found) if not op.acknowledged or answer["id"] in found else 0
            explained["deal"].add(answer.get("id", ""))
        elif op.kind in ("fund", "repay", "over_repay"):
            found = entries_by_reference[op.key]
            n = len(found)
            if op.kind == "fund":
                n = max(n, fundings_of[op.meta["deal_id"]])
            explained["entry"].update(e["id"] for e in found)
            if op.kind == "repay" and op.acknowledged:
                repaid_acked[op.meta["deal_id"]] += op.meta["amount_minor"]
        else:
            raise AssertionError(op.kind)
        effects[i] = n

    for i, op in enumerate(load.ops):
        n = effects[i]
        kind = report.by_kind.setdefault(op.kind, Counter())
        if op.abandoned:
            report.abandoned += 1
            report.problems.append(
                f"abandoned {op.kind} {op.path} after {op.attempts} attempts: {op.meta.get('last_answer')}"
            )
            continue
        if op.acknowledged:
            kind["acknowledged"] += 1
            report.acknowledged += 1
            report.replayed += op.replayed
            if n == 0:
                report.lost += 1
                report.problems.append(f"lost: acknowledged {op.kind} {op.path} key={op.key}")
            else:
                report.found += 1
            if n > 1:
                report.duplicated += n - 1
                report.problems.append(f"{n}x: {op.kind} {op.path} key={op.key}")
        else:
            kind["refused"] += 1
            expect = op.meta.get("expect", op.kind)
            if op.kind == "fund" and op.meta["answered_on"] != op.meta["value_date"]:
                expect = "fund_next_day"
            if (op.status, op.code) in EXPECTED_REFUSALS.get(expect, ()):
                report.refused += 1
            else:
                report.unexpected += 1
                report.problems.append(f"unexpected {op.status} {op.code} for {op.kind} {op.path}")
            if n:
                report.refused_applied += 1
                report.problems.append(f"refused but applied: {op.kind} {op.path} key={op.key}")
        report.ambiguous += op.ambiguous

    # Rows no acknowledged operation explains are duplicates too (an effect twice, once
    # under an id nobody was told about).
    for name, table_rows in (
        ("receivable", rows["receivables"]), ("listing", rows["listings"]),
        ("bid", rows["bids"]), ("deal", rows["deals"]), ("entry", rows["entries"]),
    ):
        for r in table_rows:
            if r["id"] not in explained[name]:
                report.duplicated += 1
                report.problems.append(f"unexplained {name} {r['id']}")
    for deal_id, repaid in repaid_of.items():
        if repaid != repaid_acked[deal_id]:
            report.problems.append(
                f"deal {deal_id} repaid {repaid}, acknowledged repayments {repaid_acked[deal_id]}"
            )
            report.lost += repaid < repaid_acked[deal_id]
            report.duplicated += repaid > repaid_acked[deal_id]


async def verify_everything(load: Load, env: dict[str, str], report: Report) -> None:
    returncode, out = await _cli(["ledger", "verify"], env, check=False)
    report.ledger_cli_exit = returncode
    if returncode != 0:
        report.problems.append(f"receivables ledger verify: {out[-2000:]}")
    operator = load.parties["operator"]
    async with httpx.AsyncClient(base_url=load.server.base_url, timeout=60) as client:
        await load.login(client, operator)
        ledger = (await client.get("/ledger/verify", headers=operator.headers)).json()
        audit = (await client.get("/audit/verify", headers=operator.headers)).json()
    report.ledger_balanced = ledger.get("balanced") is True
    report.entries_checked = ledger.get("entries_checked", 0)
    if not report.ledger_balanced:
        report.problems.append(f"/ledger/verify: {json.dumps(ledger)[:2000]}")
    report.audit_valid = audit.get("valid") is True
    report.audit_checked = audit.get("checked", 0)
    if not report.audit_valid:
        report.problems.append(f"/audit/verify: {json.dumps(audit)[:2000]}")


# ------------------------------------------------------------------ databases


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _asyncpg_dsn(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if not scheme.startswith("postgres"):
        raise SystemExit("the crash check needs a postgresql:// URL")
    return "postgresql://" + rest


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _cli(args: list[str], env: dict[str, str], *, check: bool = True) -> tuple[int, str]:
    """`receivables <args>`: exit code and output (stdout, then stderr)."""
    process = await asyncio.create_subprocess_exec(
        RECEIVABLES, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    text = out.decode(errors="replace") + err.decode(errors="replace")
    assert process.returncode is not None
    if check and process.returncode != 0:
        raise RuntimeError(f"receivables {args[0]} failed:\n{text}")
    return process.returncode, text


# ------------------------------------------------------------------ the run


async def run(config: Config) -> Report:
    seed = config.seed if config.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    started = time.monotonic()
    if config.use_url_database:
        url, created = config.database_url, None
    else:
        created = f"crash_check_{secrets.token_hex(5)}"
        await _admin(config.database_url, f'CREATE DATABASE "{created}"')
        url = _with_database(config.database_url, created)
    report = Report(database_url=url, seed=seed, kills_requested=config.kills)
    log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix="crash-check-"))
    env = server_env(url, JWT_SECRET, RECEIVABLES_ACCESS_TOKEN_SECONDS="3600")
    server = LiveServer(url, jwt_secret=JWT_SECRET, env={"RECEIVABLES_ACCESS_TOKEN_SECONDS": "3600"},
                        log_path=log_dir / "server.log")
    try:
        await _cli(["migrate"], env)
        operator_email = f"operator-{secrets.token_hex(3)}@crash-check.example.com"
        await _cli(["create-operator", "--email", operator_email, "--password", PASSWORD], env)
        await server.astart()
        load = Load(config, server, rng)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
            await build_world(load, client, operator_email)
        plans = make_plans(rng, config.operations)
        load_started = time.monotonic()
        await run_load(load, plans)
        report.load_seconds = time.monotonic() - load_started
        stats = load.stats
        report.operations = len(load.ops)
        report.kills, report.idle_kills, report.restarts = stats.kills, stats.idle_kills, stats.restarts
        report.transport_errors, report.in_flight_409 = stats.transport_errors, stats.in_flight_409
        report.server_errors, report.reads = dict(stats.server_errors), stats.reads
        sellers = [p.organization_id for p in load.parties.values() if p.kind == "sme"]
        check_database(load, await _fetch(_asyncpg_dsn(url), sellers), report)
        await verify_everything(load, env, report)
        if stats.idle_kills:
            report.problems.append(f"{stats.idle_kills} kill(s) came after the load had finished")
    except BaseException:
        tail = "\n".join(line[:400] for line in server.log_tail(30).splitlines())
        print(f"server log ({server.log_path}), last lines:\n{tail}", file=sys.stderr)
        raise
    finally:
        server.stop()
        if created and not config.keep_database:
            await _admin(config.database_url, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
        report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--operations", type=int, default=300, help="POSTs to make (about)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs during the load")
    parser.add_argument("--clients", type=int, default=8, help="concurrent async clients")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed)")
    parser.add_argument("--use-url-database", action="store_true",
                        help="use the URL's database as is, instead of a fresh one")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the fresh database")
    parser.add_argument("--log-dir", type=Path, default=None, help="where server.log goes")
    parser.add_argument("--verbose", action="store_true", help="print every operation")
    args = parser.parse_args(argv)
    config = Config(
        database_url=args.database_url, operations=args.operations, kills=args.kills,
        clients=args.clients, seed=args.seed, use_url_database=args.use_url_database,
        keep_database=args.keep_database, log_dir=args.log_dir, verbose=args.verbose,
    )
    report = asyncio.run(run(config))
    print(report.table())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
