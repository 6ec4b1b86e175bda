"""Webhook tests run the app with RECEIVABLES_WEBHOOK_ALLOW_INSECURE=true (http and
loopback receivers) and a real receiver on 127.0.0.1."""

from __future__ import annotations

from tests.webhooks.receiver import loopback_webhook_settings, receiver  # noqa: F401  (fixtures)
