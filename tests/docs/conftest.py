"""A live server of its own for the documentation's examples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.live import Market, live_market
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture(scope="module")
def market(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template_path: Path
) -> Iterator[Market]:
    with live_market(tmp_path_factory.mktemp("docs-live"), sqlite_template_path) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
