"""/healthz, /readyz, and the simulated clock with the worker's tick (only when enabled;
never in the OpenAPI)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from receivables import migrate
from receivables.auth.dependencies import OperatorActor
from receivables.deals.lifecycle import DealStatus
from receivables.kit.clock import SimulatedClock
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import NotFound, Unprocessable
from receivables.ops import repository
from receivables.ops.schemas import ClockChange, ClockRead, Health, Readiness
from receivables.webhooks import repository as webhooks
from receivables.worker import runner

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """200 while the process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request, settings: SettingsDep):
    """200 when the database answers and its schema is at the newest migration."""
    engine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        current = await migrate.current_revision(engine)
    except Exception:  # any database failure means "not ready", never a 500
        body = Readiness(status="unavailable", database="unreachable", migration=None)
        return JSONResponse(body.model_dump(), status_code=503)
    head = migrate.head_revision(settings.database_url)
    ready = current == head
    body = Readiness(status="ok" if ready else "migrating", database="ok", migration=current)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _require_simulated_clock(clock: ClockDep, settings: SettingsDep) -> None:
    """Without RECEIVABLES_SIMULATED_CLOCK=true the admin routes do not exist (404),
    checked before authentication so their existence is not even hinted."""
    if not settings.simulated_clock or not isinstance(clock, SimulatedClock):
        raise NotFound("the simulated clock is not enabled")


admin = APIRouter(
    prefix="/admin",
    tags=["operations"],
    include_in_schema=False,
    dependencies=[Depends(_require_simulated_clock)],
)


@admin.post("/clock", response_model=ClockRead)
async def move_clock(body: ClockChange, actor: OperatorActor, clock: ClockDep) -> ClockRead:
    """Set or advance the simulated clock; it never moves backwards."""
    assert isinstance(clock, SimulatedClock)
    try:
        now = clock.set(body.now) if body.now else clock.advance(body.advance_seconds or 0)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
    return ClockRead(now=now)


class TickRead(BaseModel):
    processed: dict[str, int]
    """Objects each job moved: `receivables_expired`, `auctions_closed`, ..."""
    failed: list[str]
    """Jobs whose batch was rolled back (logged); their objects are still due."""


@admin.post("/tick", response_model=TickRead)
async def tick(
    request: Request, actor: OperatorActor, session: SessionDep, clock: ClockDep,
    settings: SettingsDep,
) -> TickRead:
    """Run the worker's due jobs once, at the simulated clock's time, each batch in its
    own transaction exactly as `receivables worker --once` does."""
    # The request's own transaction only authenticated the caller. End it first: on
    # SQLite it holds the single pooled connection and the write lock the jobs need.
    await session.commit()
    report = await runner.run_due(request.app.state.sessionmaker, clock=clock, settings=settings)
    return TickRead(processed=report.processed, failed=report.failed)


OPEN_LISTINGS = Gauge("receivables_open_listings", "Listings open for bids")
DEALS = Gauge("receivables_deals", "Deals by status", ["status"])
OVERDUE = Gauge("receivables_overdue_amount", "Owed on overdue or defaulted deals", ["currency"])
WEBHOOK_BACKLOG = Gauge(
    "receivables_webhook_backlog",
    "Webhook deliveries due now and not yet delivered (active endpoints)",
)
WEBHOOK_BACKLOG_AGE = Gauge(
    "receivables_webhook_backlog_oldest_age_seconds",
    "Seconds since the oldest delivery of the webhook backlog was queued (0 when empty)",
)
WEBHOOK_RETRYING = Gauge(
    "receivables_webhook_retrying",
    "Pending webhook deliveries waiting out a retry delay after a failed attempt",
)
WORKER_DUE = Gauge(
    "receivables_worker_due",
    "Objects whose deadline has come, waiting for the worker, by job",
    ["job"],
)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(session: SessionDep, clock: ClockDep, settings: SettingsDep) -> PlainTextResponse:
    """Prometheus text format: request counts and latency histograms by route and status,
    and business gauges read from the database at scrape time."""
    OPEN_LISTINGS.set(await repository.open_listings(session))
    counts = await repository.deals_by_status(session)
    for status in DealStatus:
        DEALS.labels(status.value).set(counts.get(status.value, 0))
    for currency, owed_minor in (await repository.overdue_minor_by_currency(session)).items():
        OVERDUE.labels(currency).set(owed_minor / 100)
    now = clock.now()
    backlog = await webhooks.delivery_backlog(session, now=now)
    WEBHOOK_BACKLOG.set(backlog.due)
    oldest = backlog.oldest_due_created_at
    WEBHOOK_BACKLOG_AGE.set(max((now - oldest).total_seconds(), 0.0) if oldest else 0)
    WEBHOOK_RETRYING.set(backlog.retrying)
    due = await repository.due_deadlines(
        session, now=now, today=clock.today(), grace_days=settings.grace_days
    )
    for job, count in due.items():
        WORKER_DUE.labels(job).set(count)
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
