"""A live server of its own for the documentation's examples."""

from __future__ import annotations

from tests.client.live import market_fixture
from tests.webhooks.receiver import receiver  # noqa: F401  (registers the fixture)

market = market_fixture("module", "docs-live")
