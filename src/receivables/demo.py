"""`receivables demo`: one receivable's whole life over the HTTP API, printed step by step.

It reproduces the money model's worked example from DESIGN.md (a Chinese discounting
exam answer): F = 3,000,000.00 at 3.90 % a year for 118 days → D = 38,350.00.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import httpx
from sqlalchemy import func, select

from receivables.app import create_app
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

PARTIES = [
    ("sme", "Shenzhen Precision Parts Co.", "91440300MA5DEM001", "sme@demo.example"),
    ("core", "Huaxia Motors Group", "91110000MA5DEM002", "core@demo.example"),
    ("bank", "First Commercial Bank", "91310000MA5DEM003", "bank1@demo.example"),
    ("bank", "Pearl River Bank", "91440100MA5DEM004", "bank2@demo.example"),
]


def _step(title: str, body: dict[str, Any] | None = None, *fields: str) -> None:
    print(f"\n== {title}")
    for name in fields:
        print(f"   {name:<18} {body.get(name) if body else ''}")


async def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise SystemExit(f"demo failed: {response.request.method} {response.request.url} → "
                         f"{response.status_code} {response.text}")
    return response.json()


async def _login(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    token = await _ok(await http.post("/auth/token", data={"username": email, "password": DEMO_PASSWORD}))
    return {"Authorization": f"Bearer {token['access_token']}"}


async def _onboard(http: httpx.AsyncClient, operator: dict[str, str]) -> dict[str, tuple[str, dict]]:
    parties: dict[str, tuple[str, dict]] = {}
    for kind, name, prefix, email in PARTIES:
        body = {"name": name, "kind": kind, "credit_code": make_credit_code(prefix)}
        organization = await _ok(await http.post("/organizations", json=body, headers=operator))
        user = {"email": email, "password": DEMO_PASSWORD}
        await _ok(await http.post(f"/organizations/{organization['id']}/users", json=user, headers=operator))
        parties[email] = (organization["id"], await _login(http, email))
        _step(f"onboarded {kind}: {name}", organization, "id", "credit_code")
    return parties


async def _walk(http: httpx.AsyncClient, parties: dict[str, tuple[str, dict]], today: dt.date) -> dict:
    sme, core = parties["sme@demo.example"], parties["core@demo.example"]
    bank1, bank2 = parties["bank1@demo.example"], parties["bank2@demo.example"]
    receivable = await _ok(await http.post("/receivables", headers=sme[1], json={
        "debtor_id": core[0], "invoice_number": f"INV-{secrets.token_hex(3).upper()}",
        "face_value": FACE_VALUE, "issue_date": today.isoformat(),
        "due_date": (today + dt.timedelta(days=DAYS)).isoformat(),
    }))
    _step("SME submits a receivable", receivable, "id", "status", "face_value", "due_date")
    receivable = await _ok(await http.post(f"/receivables/{receivable['id']}/confirm", headers=core[1], json={}))
    _step("core enterprise confirms it", receivable, "status", "face_value")
    closes_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    listing = await _ok(await http.post("/listings", headers=sme[1], json={
        "receivable_id": receivable["id"], "max_discount_rate": "0.0500", "closes_at": closes_at,
    }))
    _step("SME lists it for a sealed auction", listing, "id", "status", "max_discount_rate", "closes_at")
    bid1 = await _ok(await http.post(f"/listings/{listing['id']}/bids", headers=bank1[1], json={"discount_rate": "0.0420"}))
    bid2 = await _ok(await http.post(f"/listings/{listing['id']}/bids", headers=bank2[1], json={"discount_rate": WINNING_RATE}))
    _step("two banks bid (each sees only its own bid)", {"First Commercial": bid1["discount_rate"],
          "Pearl River": bid2["discount_rate"]}, "First Commercial", "Pearl River")
    deal = await _ok(await http.post(f"/listings/{listing['id']}/award", headers=sme[1], json={"bid_id": bid2["id"]}))
    _step("SME awards the best rate: a deal awaits funding", deal, "id", "status", "principal",
          "discount_rate", "discount_amount", "funding_amount", "advance_amount", "value_date", "due_date")
    deal = await _ok(await http.post(f"/deals/{deal['id']}/fund", headers=bank2[1], json={
        "amount": deal["funding_amount"], "payment_reference": "PRB-WIRE-0001"}))
    _step("bank funds escrow; escrow pays the SME at once", deal, "status", "funding_amount",
          "advance_amount", "escrow_balance")
    for amount, reference in (("1000000.00", "HX-PAY-1"), ("2000000.00", "HX-PAY-2")):
        deal = await _ok(await http.post(f"/deals/{deal['id']}/repay", headers=core[1], json={
            "amount": amount, "payment_reference": reference}))
        _step(f"debtor repays {amount}", deal, "status", "repaid_amount", "amount_due")
    return {"sme": sme, "core": core, "bank1": bank1, "bank2": bank2}


async def _auction_closes_itself(http: httpx.AsyncClient, parties: dict, app) -> None:
    """A second receivable, listed with auto_award: nobody awards it; when the clock
    passes closes_at the worker's job awards the lowest rate by itself."""
    sme, core = parties["sme@demo.example"], parties["core@demo.example"]
    bank1, bank2 = parties["bank1@demo.example"], parties["bank2@demo.example"]
    today = app.state.clock.today()
    receivable = await _ok(await http.post("/receivables", headers=sme[1], json={
        "debtor_id": core[0], "invoice_number": f"INV-{secrets.token_hex(3).upper()}",
        "face_value": "500000.00", "issue_date": today.isoformat(),
        "due_date": (today + dt.timedelta(days=60)).isoformat(),
    }))
    await _ok(await http.post(f"/receivables/{receivable['id']}/confirm", headers=core[1], json={}))
    closes_at = app.state.clock.now() + dt.timedelta(hours=1)
    listing = await _ok(await http.post("/listings", headers=sme[1], json={
        "receivable_id": receivable["id"], "max_discount_rate": "0.0600",
        "closes_at": closes_at.isoformat(), "auto_award": True,
    }))
    for bank, rate in ((bank1, "0.0480"), (bank2, "0.0510")):
        await _ok(await http.post(f"/listings/{listing['id']}/bids", headers=bank[1], json={"discount_rate": rate}))
    _step("a second listing with auto_award, two bids, closing in one hour", listing, "id", "closes_at")
    app.state.clock.advance(3600)
    report = await runner.run_due(app.state.sessionmaker, clock=app.state.clock, settings=app.state.settings)
    seller = await _login(http, "sme@demo.example")  # an hour later: a fresh token
    closed = await _ok(await http.get(f"/listings/{listing['id']}", headers=seller))
    deals = await _ok(await http.get("/deals", params={"status": "awaiting_funding"}, headers=seller))
    _step("one hour later the worker closed it by itself", {
        "status": closed["status"], "auctions_closed": report.processed.get("auctions_closed"),
        "winning_rate": deals["items"][0]["discount_rate"] if deals["items"] else None,
    }, "status", "auctions_closed", "winning_rate")


async def _report(http: httpx.AsyncClient, parties: dict, operator: dict[str, str]) -> None:
    for label, (_, headers) in parties.items():
        account = await _ok(await http.get("/accounts/me", headers=headers))
        balances = ", ".join(f"{b['currency']} {b['balance']}" for b in account["balances"]) or "none"
        print(f"   balance {label:<10} {balances}")
    verify = await _ok(await http.get("/ledger/verify", headers=operator))
    _step("ledger verified", verify, "balanced", "accounts_checked", "entries_checked")


async def run_demo(settings: Settings) -> int:
    """Walk the life on the configured database, which must be migrated and empty. The
    demo's own clock starts now and moves only when the demo moves it."""
    app = create_app(settings, clock=SimulatedClock())
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker.begin() as session:
            if (await session.execute(select(func.count()).select_from(Organization))).scalar_one():
                print("the demo needs an empty database: set DATABASE_URL=sqlite:///./demo.db (a new file)")
                return 1
            await bootstrap_operator(session, email=OPERATOR_EMAIL, password=DEMO_PASSWORD, clock=app.state.clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
            operator = await _login(http, OPERATOR_EMAIL)
            parties = await _onboard(http, operator)
            walked = await _walk(http, parties, app.state.clock.today())
            _step("settled: where the money went")
            await _report(http, walked, operator)
            await _auction_closes_itself(http, parties, app)
    print(f"\nusers log in with password {DEMO_PASSWORD!r}; operator {OPERATOR_EMAIL}")
    return 0
