"""`receivables demo`: one receivable's whole life over the HTTP API, printed step by step.

It reproduces the money model's worked example from DESIGN.md (a Chinese discounting
exam answer): F = 3,000,000.00 at 3.90 % a year for 118 days → D = 38,350.00.

Every call goes through the typed client (`receivables.client`) to a real uvicorn server
on a loopback port, so the demo exercises what an integrator would and cannot drift from
the client. The server runs in this process, on this event loop, with a simulated clock:
the demo moves that clock one hour and runs the worker's due jobs itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from receivables.app import create_app
from receivables.client import ApiError, Client
from receivables.config import Settings
from receivables.kit.clock import SimulatedClock
from receivables.organizations.credit_code import make_credit_code
from receivables.organizations.models import Organization
from receivables.organizations.service import bootstrap_operator
from receivables.worker import runner

DEMO_PASSWORD = "demo-password-" + "0" * 4
OPERATOR_EMAIL = "operator@demo.example"
FACE_VALUE = "3000000.00"
DAYS = 118
WINNING_RATE = "0.0390"
SHUTDOWN_GRACE_SECONDS = 5

PARTIES = [
    ("sme", "Shenzhen Precision Parts Co.", "91440300MA5DEM001", "sme@demo.example"),
    ("core", "Huaxia Motors Group", "91110000MA5DEM002", "core@demo.example"),
    ("bank", "First Commercial Bank", "91310000MA5DEM003", "bank1@demo.example"),
    ("bank", "Pearl River Bank", "91440100MA5DEM004", "bank2@demo.example"),
]


@dataclass
class Party:
    organization_id: str
    client: Client


Parties = dict[str, Party]
"""By the local part of the user's email: sme, core, bank1, bank2."""


def _step(title: str, body: dict[str, Any] | None = None, *fields: str) -> None:
    print(f"\n== {title}")
    for name in fields:
        print(f"   {name:<18} {body.get(name) if body else ''}")


# ---------------------------------------------------------------------- the server


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C must stop the demo (which then stops
    the server on its way out), not only the server while the demo's calls carry on."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` on a loopback port the kernel picks and yield its base URL. uvicorn
    runs as a task on this event loop, so the worker step shares the app's clock and
    connection pool with the server (asyncpg connections belong to the loop that opened
    them); the blocking client calls therefore run in threads (`asyncio.to_thread`).
    The server stops on the way out, failure or not."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))  # bound before serving: the port is known, never raced
    host, port = listener.getsockname()
    # lifespan off: the caller already runs the app's lifespan (the empty-database check
    # needs the engine before anything is served); log_config None leaves logging alone.
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises whatever stopped it
                raise RuntimeError("the demo's server stopped before serving")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        # wait, not await: a server failure must not hide the error that brought us here
        await asyncio.wait({task})
        listener.close()


async def _bootstrap(app: FastAPI) -> bool:
    """Create the operator; False if the database already has organizations (the demo's
    fixed names and emails would clash with them)."""
    async with app.state.sessionmaker.begin() as session:
        if (await session.execute(select(func.count()).select_from(Organization))).scalar_one():
            return False
        await bootstrap_operator(
            session, email=OPERATOR_EMAIL, password=DEMO_PASSWORD, clock=app.state.clock
        )
    return True


# ---------------------------------------------------------------------- the walk (blocking)


def _onboard(base_url: str, clients: contextlib.ExitStack) -> tuple[Client, Parties]:
    """As the operator: each party's organization and user; then each user logs in."""
    def login(email: str) -> Client:
        return clients.enter_context(Client.with_password(base_url, email, DEMO_PASSWORD))

    operator = login(OPERATOR_EMAIL)
    parties: Parties = {}
    for kind, name, prefix, email in PARTIES:
        organization = operator.create_organization(
            name=name, kind=kind, credit_code=make_credit_code(prefix)
        )
        operator.create_user(organization["id"], email=email, password=DEMO_PASSWORD)
        parties[email.split("@")[0]] = Party(organization["id"], login(email))
        _step(f"onboarded {kind}: {name}", organization, "id", "credit_code")
    return operator, parties


def _submit_confirmed(
    parties: Parties, face_value: str, issue: dt.date, days: int
) -> tuple[dict, dict]:
    """As the SME: a receivable on the core enterprise; as the core enterprise: confirm
    it. The receivable as submitted and as confirmed."""
    sme, core = parties["sme"].client, parties["core"]
    submitted = sme.submit_receivable(
        debtor_id=core.organization_id, invoice_number=f"INV-{secrets.token_hex(3).upper()}",
        face_value=face_value, issue_date=issue, due_date=issue + dt.timedelta(days=days),
    )
    return submitted, core.client.confirm_receivable(submitted["id"])


def _walk(parties: Parties, now: dt.datetime) -> None:
    sme, core = parties["sme"].client, parties["core"].client
    bank1, bank2 = parties["bank1"].client, parties["bank2"].client
    submitted, receivable = _submit_confirmed(parties, FACE_VALUE, now.date(), DAYS)
    _step("SME submits a receivable", submitted, "id", "status", "face_value", "due_date")
    _step("core enterprise confirms it", receivable, "status", "face_value")
    listing = sme.create_listing(
        receivable_id=receivable["id"], max_discount_rate="0.0500",
        closes_at=now + dt.timedelta(days=2),
    )
    _step("SME lists it for a sealed auction", listing,
          "id", "status", "max_discount_rate", "closes_at")
    bid1 = bank1.place_bid(listing["id"], discount_rate="0.0420")
    bid2 = bank2.place_bid(listing["id"], discount_rate=WINNING_RATE)
    _step("two banks bid (each sees only its own bid)", {"First Commercial": bid1["discount_rate"],
          "Pearl River": bid2["discount_rate"]}, "First Commercial", "Pearl River")
    deal = sme.award_listing(listing["id"], bid_id=bid2["id"])
    _step("SME awards the best rate: a deal awaits funding", deal, "id", "status", "principal",
          "discount_rate", "discount_amount", "funding_amount", "advance_amount", "value_date",
          "due_date")
    deal = bank2.fund_deal(
        deal["id"], amount=deal["funding_amount"], payment_reference="PRB-WIRE-0001"
    )
    _step("bank funds escrow; escrow pays the SME at once", deal, "status", "funding_amount",
          "advance_amount", "escrow_balance")
    for amount, reference in (("1000000.00", "HX-PAY-1"), ("2000000.00", "HX-PAY-2")):
        deal = core.repay_deal(deal["id"], amount=amount, payment_reference=reference)
        _step(f"debtor repays {amount}", deal, "status", "repaid_amount", "amount_due")


def _report(parties: Parties, operator: Client) -> None:
    _step("settled: where the money went")
    for label, party in parties.items():
        account = party.client.my_accounts()
        balances = ", ".join(f"{b['currency']} {b['balance']}" for b in account["balances"])
        print(f"   balance {label:<10} {balances or 'none'}")
    _step("ledger verified", operator.verify_ledger(),
          "balanced", "accounts_checked", "entries_checked")


def _list_auto_award(parties: Parties, closes_at: dt.datetime) -> dict:
    """A second receivable, listed with auto_award and bid on by both banks; nobody awards it."""
    _, receivable = _submit_confirmed(parties, "500000.00", closes_at.date(), 60)
    listing = parties["sme"].client.create_listing(
        receivable_id=receivable["id"], max_discount_rate="0.0600", closes_at=closes_at,
        auto_award=True,
    )
    for bank, rate in (("bank1", "0.0480"), ("bank2", "0.0510")):
        parties[bank].client.place_bid(listing["id"], discount_rate=rate)
    _step("a second listing with auto_award, two bids, closing in one hour", listing,
          "id", "closes_at")
    return listing


# ---------------------------------------------------------------------- the demo


async def _auction_closes_itself(app: FastAPI, parties: Parties) -> None:
    """When the clock passes closes_at, the worker's job awards the lowest rate by itself.
    The SME's token has expired by then on the moved clock: its client renews it."""
    clock = app.state.clock
    closes_at = clock.now() + dt.timedelta(hours=1)
    listing = await asyncio.to_thread(_list_auto_award, parties, closes_at)
    clock.advance(3600)
    report = await runner.run_due(app.state.sessionmaker, clock=clock, settings=app.state.settings)
    seller = parties["sme"].client
    closed = await asyncio.to_thread(seller.get_listing, listing["id"])
    deals = await asyncio.to_thread(seller.list_deals, status="awaiting_funding")
    _step("one hour later the worker closed it by itself", {
        "status": closed["status"], "auctions_closed": report.processed.get("auctions_closed"),
        "winning_rate": deals["items"][0]["discount_rate"] if deals["items"] else None,
    }, "status", "auctions_closed", "winning_rate")


async def _drive(app: FastAPI, base_url: str) -> None:
    with contextlib.ExitStack() as clients:  # closed before the server stops
        operator, parties = await asyncio.to_thread(_onboard, base_url, clients)
        await asyncio.to_thread(_walk, parties, app.state.clock.now())
        await asyncio.to_thread(_report, parties, operator)
        await _auction_closes_itself(app, parties)


async def run_demo(settings: Settings) -> int:
    """Walk the life on the configured database, which must be migrated and empty. The
    demo's own clock starts now and moves only when the demo moves it. An error answer
    ends the demo with SystemExit naming it."""
    app = create_app(settings, clock=SimulatedClock())
    async with app.router.lifespan_context(app):
        if not await _bootstrap(app):
            print("the demo needs an empty database: "
                  "set DATABASE_URL=sqlite:///./demo.db (a new file)")
            return 1
        try:
            async with _serving(app) as base_url:
                await _drive(app, base_url)
        except ApiError as error:
            raise SystemExit(
                f"demo failed: {error.status} {error.code}: {error.detail}"
            ) from None
        except httpx.HTTPError as error:
            raise SystemExit(f"demo failed: {type(error).__name__}: {error}") from None
    print(f"\nusers log in with password {DEMO_PASSWORD!r}; operator {OPERATOR_EMAIL}")
    return 0
