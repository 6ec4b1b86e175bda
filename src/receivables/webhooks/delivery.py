"""The worker's two webhook jobs: fill the outbox, then deliver what is due.

`queue_deliveries` (one endpoint per transaction): lock an active endpoint whose cursor
is behind the feed (`FOR UPDATE SKIP LOCKED` on PostgreSQL), read the events after its
cursor that its organization may see (the `/events` query itself, so a bank is never
sent a rival's bid), insert one `WebhookDelivery` per subscribed event and advance the
cursor, all in that one transaction. A crash before the commit loses nothing (the
cursor did not move); the unique (endpoint, event) pair means nothing is queued twice.

`deliver_due` (a batch per transaction): lock the due deliveries, POST each signed body
with httpx (explicit timeouts, no redirects, no proxies from the environment, to the
address the URL check approved), then record every attempt in the same transaction. A
delivery is marked `delivered` only after a 2xx; a crash between the POST and the
commit rolls the bookkeeping back and the delivery is sent again (at least once:
receivers de-duplicate on `X-Event-Id`). Failures are retried with exponential backoff
and jitter for more than a day (`ATTEMPTS_MAX` attempts), then the delivery is
`failed`; `CONSECUTIVE_FAILED_DELIVERIES_MAX` failed deliveries in a row disable the
endpoint (`webhook.disabled` in the organization's feed).

On SQLite the batch's transaction holds the database's write lock while it sends, so an
attempt is bounded by `ATTEMPT_SECONDS_MAX`; on PostgreSQL only the claimed rows are
locked, and several workers deliver in parallel without sending any row twice at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from receivables.auth.principal import SYSTEM, Principal
from receivables.auth.roles import Role
from receivables.config import Settings
from receivables.events import repository as events
from receivables.events import service as audit
from receivables.events.models import AuditRecord
from receivables.events.schemas import event_read
from receivables.kit.clock import Clock
from receivables.webhooks import repository, signing, urls
from receivables.webhooks.models import (
    ERROR_CHARS_MAX,
    RESPONSE_BODY_CHARS_MAX,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
)
from receivables.webhooks.schemas import WILDCARD

log = logging.getLogger(__name__)

FILL_EVENTS_MAX = 500
"""Feed events read for one endpoint in one transaction; the rest wait for the next."""
DELIVERY_BATCH_SIZE_MAX = 20
"""Deliveries claimed, and sent concurrently, in one transaction."""
CONCURRENT_SENDS_PER_ENDPOINT_MAX = 4
"""Requests in flight to one endpoint at once: a batch never floods a receiver."""
ATTEMPTS_MAX = 15
"""Attempts of one delivery; with the backoff below they span more than a day."""
RETRY_BASE_SECONDS = 60
RETRY_DELAY_SECONDS_MAX = 6 * 3600
RETRY_JITTER_RATIO = 0.25
"""Each delay is lengthened by up to this share of itself, at random, so receivers
coming back from an outage are not hit by every platform retry at once."""
CONSECUTIVE_FAILED_DELIVERIES_MAX = 5
"""Deliveries failing every attempt in a row before the endpoint is disabled."""
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ATTEMPT_SECONDS_MAX = 15.0
"""A whole attempt, even against a receiver that drips its answer byte by byte."""
USER_AGENT = "receivables-webhooks/1"

Jitter = Callable[[], float]


def matches(patterns: list[str], event_type: str) -> bool:
    """Whether a subscription (`deal.funded`, `deal.*`, `*`) covers an event type."""
    for pattern in patterns:
        if pattern == WILDCARD or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def retry_delay_seconds(failed_attempts: int, *, jitter: Jitter = random.random) -> float:
    """Seconds until the next attempt after `failed_attempts` failures: 1 min × 2^(n-1),
    capped at 6 h, plus up to 25 % jitter."""
    exponent = min(max(failed_attempts - 1, 0), 30)
    delay = min(RETRY_BASE_SECONDS * 2**exponent, RETRY_DELAY_SECONDS_MAX)
    return delay * (1 + RETRY_JITTER_RATIO * jitter())


# ----------------------------------------------------------------------- the outbox


def _delivery_row(endpoint: WebhookEndpoint, record: AuditRecord, now: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "endpoint_id": endpoint.id,
        "event_id": record.id,
        "event_type": record.action,
        "chain_index": record.chain_index,
        "payload": event_read(record).model_dump_json(),
        "status": DeliveryStatus.pending,
        "attempt_count": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def queue_deliveries(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    """Job: bring one endpoint's outbox up to the feed. Returns 1 if an endpoint was
    behind (the runner calls again until none is), else 0."""
    head = await repository.chain_head_index(session)
    claimed = await repository.claim_endpoint_behind(session, head_index=head)
    if claimed is None:
        return 0
    endpoint, organization = claimed
    viewer = Principal(role=Role(organization.kind), organization_id=organization.id)
    rows = await events.feed_page(
        session, viewer, after_index=endpoint.last_chain_index, limit=FILL_EVENTS_MAX
    )
    page = rows[:FILL_EVENTS_MAX]
    now = clock.now()
    await repository.add_deliveries(
        session,
        [_delivery_row(endpoint, r, now) for r in page if matches(endpoint.event_types, r.action)],
    )
    if len(rows) > FILL_EVENTS_MAX:
        endpoint.last_chain_index = page[-1].chain_index or endpoint.last_chain_index
    else:
        # Every event up to `head` committed before the feed was read: none is skipped.
        newest = page[-1].chain_index if page else 0
        endpoint.last_chain_index = max(endpoint.last_chain_index, head, newest or 0)
    await session.flush()
    return 1


# ----------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _pinned(
    target: urls.Target, address: urls.IPAddress
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Connect to the checked address, not a second DNS answer; the name still goes in
    the Host header and, for https, in TLS SNI and certificate verification."""
    if urls.ip_literal(target.host) is not None:
        return target.url, {}, {}
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    url = str(httpx.URL(target.url).copy_with(host=str(address), port=target.port))
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url, {"Host": host_header}, extensions


async def _read_start(response: httpx.Response) -> str:
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= RESPONSE_BODY_CHARS_MAX:
            break
    return bytes(kept[:RESPONSE_BODY_CHARS_MAX]).decode("utf-8", "replace")[
        :RESPONSE_BODY_CHARS_MAX
    ]


async def _post(
    http: httpx.AsyncClient,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    *,
    timestamp: int,
    settings: Settings,
    resolver: urls.Resolver,
) -> tuple[int, str]:
    target = urls.check_url(endpoint.url, allow_insecure=settings.webhook_allow_insecure)
    address = await urls.resolve(
        target, allow_insecure=settings.webhook_allow_insecure, resolver=resolver
    )
    url, headers, extensions = _pinned(target, address)
    headers |= {
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",
        signing.SIGNATURE_HEADER: signing.header(endpoint.secret, timestamp, delivery.payload),
        signing.EVENT_ID_HEADER: str(delivery.event_id),
        "X-Event-Type": delivery.event_type,
        "X-Webhook-Id": str(endpoint.id),
    }
    body = delivery.payload.encode()
    async with http.stream(
        "POST", url, content=body, headers=headers, extensions=extensions
    ) as response:
        return response.status_code, await _read_start(response)


async def attempt(
    http: httpx.AsyncClient,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    *,
    timestamp: int,
    settings: Settings,
    resolver: urls.Resolver = urls.system_resolver,
) -> Outcome:
    """One POST of the delivery, never raising: what happened, for the log."""
    started = time.monotonic()
    status_code, body, error = None, None, None
    try:
        status_code, body = await asyncio.wait_for(
            _post(
                http, delivery, endpoint, timestamp=timestamp, settings=settings, resolver=resolver
            ),
            timeout=ATTEMPT_SECONDS_MAX,
        )
    except urls.UrlRefused as exc:
        error = f"refused: {exc}"
    except (TimeoutError, httpx.TimeoutException):
        error = "timeout: no complete answer in time"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else f"{type(exc).__name__}: {exc!r}"
    except Exception as exc:  # a receiver must never break the batch's bookkeeping
        log.exception("webhook attempt failed unexpectedly")
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    return Outcome(status_code, body, error[:ERROR_CHARS_MAX] if error else None, duration_ms)


# ----------------------------------------------------------------------- bookkeeping


async def _failed_for_good(
    session: AsyncSession, delivery: WebhookDelivery, endpoint: WebhookEndpoint, *, clock: Clock
) -> None:
    now = clock.now()
    delivery.status = DeliveryStatus.failed
    delivery.failed_at = now
    delivery.next_attempt_at = None
    failed_in_row = await repository.count_failed_delivery(session, endpoint.id)
    if failed_in_row < CONSECUTIVE_FAILED_DELIVERIES_MAX:
        return
    reason = (
        f"{failed_in_row} deliveries in a row failed every one of their {ATTEMPTS_MAX} attempts"
    )
    if await repository.disable(session, endpoint.id, now=now, reason=reason):
        await repository.park_pending(session, endpoint.id)
        endpoint.status = WebhookStatus.disabled  # later deliveries of this batch: parked too
        await audit.record(
            session,
            SYSTEM,
            clock=clock,
            action="webhook.disabled",
            object_type="webhook",
            object_id=endpoint.id,
            from_state=WebhookStatus.active,
            to_state=WebhookStatus.disabled,
            data={"url": endpoint.url, "reason": reason},
            recipients=(endpoint.organization_id,),
        )


async def record(
    session: AsyncSession,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    outcome: Outcome,
    *,
    clock: Clock,
    jitter: Jitter = random.random,
) -> None:
    """Log the attempt and move the delivery on: delivered, due again later, or failed."""
    now = clock.now()
    delivery.attempt_count += 1
    delivery.last_attempt_at = now
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            number=delivery.attempt_count,
            attempted_at=now,
            status_code=outcome.status_code,
            response_body=outcome.response_body,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    if outcome.delivered:
        delivery.status = DeliveryStatus.delivered
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        await repository.reset_failed_deliveries(session, endpoint.id)
    elif delivery.attempt_count >= ATTEMPTS_MAX:
        await _failed_for_good(session, delivery, endpoint, clock=clock)
    elif endpoint.status == WebhookStatus.active:
        delay = retry_delay_seconds(delivery.attempt_count, jitter=jitter)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    else:
        delivery.next_attempt_at = None
    await session.flush()


def http_client() -> httpx.AsyncClient:
    """Explicit timeouts; no redirects (a 3xx is a failed attempt, never a detour to
    an unchecked address); no proxy or certificate settings taken from the environment."""
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


async def deliver_due(
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    *,
    resolver: urls.Resolver = urls.system_resolver,
) -> int:
    """Job: attempt up to DELIVERY_BATCH_SIZE_MAX due deliveries (concurrently), then
    record each attempt. Returns how many were attempted."""
    claimed = await repository.claim_due(
        session, now=clock.now(), batch_size_max=DELIVERY_BATCH_SIZE_MAX
    )
    if not claimed:
        return 0
    timestamp = int(clock.now().timestamp())
    gates = {e.id: asyncio.Semaphore(CONCURRENT_SENDS_PER_ENDPOINT_MAX) for _, e in claimed}

    async def send(d: WebhookDelivery, e: WebhookEndpoint, http: httpx.AsyncClient) -> Outcome:
        async with gates[e.id]:
            return await attempt(
                http, d, e, timestamp=timestamp, settings=settings, resolver=resolver
            )

    async with http_client() as http:
        outcomes = await asyncio.gather(*(send(d, e, http) for d, e in claimed))
    # Endpoint rows are updated in one order, so two workers never deadlock on them.
    done = sorted(
        zip(claimed, outcomes), key=lambda item: (str(item[0][1].id), item[0][0].chain_index)
    )
    for (delivery, endpoint), outcome in done:
        await record(session, delivery, endpoint, outcome, clock=clock)
    return len(claimed)


async def run_webhook_jobs(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    clock: Clock,
    settings: Settings,
    resolver: urls.Resolver = urls.system_resolver,
    rounds_max: int = 10_000,
) -> dict[str, int]:
    """Both jobs until nothing is due, each batch in its own transaction, as the
    worker's runner does: `{"webhook_endpoints_fed": n, "webhook_attempts": m}`."""
    counts = {"webhook_endpoints_fed": 0, "webhook_attempts": 0}
    for _ in range(rounds_max):
        async with sessionmaker.begin() as session:
            fed = await queue_deliveries(session, clock, settings)
        counts["webhook_endpoints_fed"] += fed
        if not fed:
            break
    for _ in range(rounds_max):
        async with sessionmaker.begin() as session:
            attempted = await deliver_due(session, clock, settings, resolver=resolver)
        counts["webhook_attempts"] += attempted
        if attempted < DELIVERY_BATCH_SIZE_MAX:
            break
    return counts
