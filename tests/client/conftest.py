"""One live server for the client tests (a session-scoped SQLite marketplace)."""

from __future__ import annotations

from tests.client.live import market_fixture
from tests.webhooks.receiver import receiver  # noqa: F401  (registers the fixture)

market = market_fixture("session", "client-live")
