"""A live marketplace for client and documentation tests: `receivables serve` (uvicorn)
on a loopback port over a fresh, migrated SQLite file, with the simulated clock and
insecure webhooks enabled, an operator created by the CLI, and parties onboarded
through `receivables.client` itself. Reuses tests/fixtures/live.py's LiveServer.

The fixtures, for a conftest.py (each folder chooses how long its server lives):

    from tests.client.live import market_fixture

    market = market_fixture("session", "client-live")
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from receivables.auth import tokens
from receivables.client import Client
from receivables.config import Settings
from receivables.kit.clock import SystemClock
from receivables.kit.db import create_engine, create_sessionmaker
from receivables.organizations.service import bootstrap_operator
from tests.fixtures.databases import _in_thread
from tests.fixtures.live import DEFAULT_JWT_SECRET, LiveServer
from tests.fixtures.world import new_credit_code

PASSWORD = "correct horse battery staple 42"
OPERATOR_EMAIL = "operator@live.example"
SERVER_SETTINGS = {
    "RECEIVABLES_SIMULATED_CLOCK": "true",
    "RECEIVABLES_WEBHOOK_ALLOW_INSECURE": "true",
}


@dataclass
class Party:
    organization_id: str
    email: str
    client: Client


@dataclass
class Market:
    server: LiveServer
    operator: Client
    sme: Party
    core: Party
    bank: Party
    bank2: Party

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def today(self) -> dt.date:
        return self.now().date()

    def now(self) -> dt.datetime:
        """The platform's simulated clock, read without moving it."""
        return dt.datetime.fromisoformat(self.operator.advance_clock(0))

    def close(self) -> None:
        for client in (
            self.operator,
            self.sme.client,
            self.core.client,
            self.bank.client,
            self.bank2.client,
        ):
            client.close()


def token_for(user_id: str, organization_id: str, role: str) -> str:
    """A token as the server would issue at login, signed with its JWT secret: skips
    a password check per party (argon2, ~0.5 s each) where the login is not the test."""
    return tokens.issue_access_token(
        secret=tokens.check_secret(DEFAULT_JWT_SECRET),
        subject=str(user_id),
        organization_id=uuid.UUID(str(organization_id)),
        role=role,
        now=dt.datetime.now(dt.UTC),
        lifetime_seconds=24 * 3600,
    )


def _onboard(base_url: str, operator: Client, name: str, kind: str) -> Party:
    """As the operator: the organization and a user; the party's client holds a token
    and the user's credentials (to log in again when the token is refused)."""
    organization = operator.create_organization(name=name, kind=kind, credit_code=new_credit_code())
    email = f"{kind}-{uuid.uuid4().hex[:8]}@live.example"
    user = operator.create_user(organization["id"], email=email, password=PASSWORD)
    token = token_for(user["id"], organization["id"], kind)
    return Party(
        organization["id"], email, Client(base_url, token=token, username=email, password=PASSWORD)
    )


async def _create_operator(database_url: str) -> tuple[str, str]:
    """What `receivables create-operator` does, in this process (a second CLI start
    would cost seconds): the operator's user id and organization id."""
    engine = create_engine(Settings(database_url=database_url, jwt_secret=DEFAULT_JWT_SECRET))
    try:
        async with create_sessionmaker(engine).begin() as session:
            user, _ = await bootstrap_operator(
                session, email=OPERATOR_EMAIL, password=PASSWORD, clock=SystemClock()
            )
            return str(user.id), str(user.organization_id)
    finally:
        await engine.dispose()


@contextmanager
def live_market(root: Path, migrated_template: Path) -> Iterator[Market]:
    """`migrated_template`: the suite's migrated SQLite file (tests/conftest.py), copied."""
    database = root / "live.db"
    shutil.copyfile(migrated_template, database)
    database_url = f"sqlite:///{database}"
    operator_user, operator_organization = _in_thread(asyncio.run, _create_operator(database_url))
    server = LiveServer(database_url, env=SERVER_SETTINGS, log_path=root / "server.log")
    server.start()
    try:
        operator = Client(
            server.base_url,
            token=token_for(operator_user, operator_organization, "operator"),
            username=OPERATOR_EMAIL,
            password=PASSWORD,
        )
        market = Market(
            server=server,
            operator=operator,
            sme=_onboard(server.base_url, operator, "Shenzhen Precision Parts", "sme"),
            core=_onboard(server.base_url, operator, "Huaxia Motors", "core"),
            bank=_onboard(server.base_url, operator, "First Commercial Bank", "bank"),
            bank2=_onboard(server.base_url, operator, "Pearl River Bank", "bank"),
        )
        try:
            yield market
        finally:
            market.close()
    finally:
        server.stop()


def open_listing(
    market: Market, *, face_value: str = "1000000.00", days: int = 90, **listing: object
) -> dict:
    """As the SME and its debtor: submit, confirm and list a receivable."""
    today = market.today()
    receivable = market.sme.client.submit_receivable(
        debtor_id=market.core.organization_id,
        invoice_number=f"INV-{uuid.uuid4().hex[:10].upper()}",
        face_value=face_value,
        issue_date=today - dt.timedelta(days=30),
        due_date=today + dt.timedelta(days=days),
    )
    market.core.client.confirm_receivable(receivable["id"])
    closes_at = market.now() + dt.timedelta(hours=2)
    return market.sme.client.create_listing(
        receivable_id=receivable["id"], max_discount_rate="0.0800", closes_at=closes_at, **listing
    )


def market_fixture(
    scope: Literal["session", "package", "module"], label: str
) -> Callable[..., Any]:
    """A `market` fixture with a live server of its own, alive for `scope`, its files in
    a temporary folder named after `label`."""

    @pytest.fixture(scope=scope, name="market")
    def market(
        tmp_path_factory: pytest.TempPathFactory, sqlite_template_path: Path
    ) -> Iterator[Market]:
        with live_market(tmp_path_factory.mktemp(label), sqlite_template_path) as running:
            yield running

    return market
