"""The application factory: routers, problem+json handlers, engine lifecycle."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from receivables.auctions.router import router as auctions_router
from receivables.auth.idempotency import idempotency_gate
from receivables.auth.router import router as auth_router
from receivables.config import Settings
from receivables.deals.router import router as deals_router
from receivables.events.router import router as events_router
from receivables.kit import idempotency
from receivables.kit.clock import Clock, SimulatedClock, SystemClock
from receivables.kit.db import create_engine, create_sessionmaker
from receivables.kit.errors import install_error_handlers
from receivables.kit.limits import BodySizeLimit
from receivables.kit.transaction import RequestTransaction
from receivables.ledger.router import router as ledger_router
from receivables.ops.observability import RequestContext
from receivables.ops.router import admin as admin_router
from receivables.ops.router import router as ops_router
from receivables.ops.runtime import tune_garbage_collector
from receivables.organizations.router import router as organizations_router
from receivables.receivables.router import router as receivables_router
from receivables.stats.router import router as stats_router
from receivables.webhooks.router import router as webhooks_router

API_TITLE = "Receivables marketplace"
API_DESCRIPTION = (
    "Core enterprises confirm what they owe their suppliers; SMEs list confirmed "
    "receivables; banks compete with sealed bids to finance them; an escrow state machine "
    "over a double-entry ledger moves the money. Money is a decimal string with two places, "
    "rates annual decimal strings; errors are RFC 9457 problem+json with a stable `code`."
)


def _default_clock(settings: Settings) -> Clock:
    return SimulatedClock() if settings.simulated_clock else SystemClock()


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, serving: bool = False
) -> FastAPI:
    """`serving`: this process only serves the app (`receivables serve`), so its garbage
    collector is tuned for that once the app is up (ops/runtime.py)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        if serving:
            tune_garbage_collector()
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title=API_TITLE,
        description=API_DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
        dependencies=[Depends(idempotency_gate)],
    )
    app.state.settings = settings
    app.state.clock = clock or _default_clock(settings)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, bytes_max=settings.request_body_bytes_max)
    for router in (
        ops_router,
        admin_router,
        auth_router,
        organizations_router,
        receivables_router,
        auctions_router,
        deals_router,
        ledger_router,
        events_router,
        webhooks_router,
        stats_router,
    ):
        app.include_router(router)
    idempotency.install(app)
    app.add_middleware(RequestTransaction)
    app.add_middleware(RequestContext)
    _document_idempotency(app)
    return app


def create_served_app() -> FastAPI:
    """The factory `receivables serve` gives uvicorn, once per worker process."""
    return create_app(serving=True)


def _document_idempotency(app: FastAPI) -> None:
    """The served document names the Idempotency-Key header on every POST."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            idempotency.document_header(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_document() -> str:
    """The committed `openapi/openapi.json`: stable key order, so diffs are reviewable."""
    settings = Settings(jwt_secret="openapi-generation-" + "x" * 32)
    return json.dumps(create_app(settings).openapi(), indent=2, sort_keys=True) + "\n"
