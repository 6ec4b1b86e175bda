"""Webhook tests run the app with RECEIVABLES_WEBHOOK_ALLOW_INSECURE=true (http and
loopback receivers) and a real receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from receivables.config import Settings
from tests.conftest import make_settings
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, webhook_allow_insecure=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
