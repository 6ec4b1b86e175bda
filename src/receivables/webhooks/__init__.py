"""Webhooks: subscriptions to the events feed, fed from a transactional outbox and
delivered, signed, by the worker (see service.py and delivery.py)."""
