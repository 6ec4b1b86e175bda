"""The application factory: routers, problem+json handlers, engine lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from receivables.auth.router import router as auth_router
from receivables.config import Settings
from receivables.kit.clock import Clock, SimulatedClock, SystemClock
from receivables.kit.db import create_engine, create_sessionmaker
from receivables.kit.errors import install_error_handlers
from receivables.ops.router import admin as admin_router
from receivables.ops.router import router as ops_router
from receivables.organizations.router import router as organizations_router

API_TITLE = "Receivables marketplace"
API_DESCRIPTION = (
    "Core enterprises confirm what they owe their suppliers; SMEs list confirmed "
    "receivables; banks compete with sealed bids to finance them; an escrow state machine "
    "over a double-entry ledger moves the money. Money is a decimal string with two places, "
    "rates annual decimal strings; errors are RFC 9457 problem+json with a stable `code`."
)


def _default_clock(settings: Settings) -> Clock:
    return SimulatedClock() if settings.simulated_clock else SystemClock()


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title=API_TITLE, description=API_DESCRIPTION, version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock or _default_clock(settings)
    install_error_handlers(app)
    for router in (
        ops_router,
        admin_router,
        auth_router,
        organizations_router,
    ):
        app.include_router(router)
    return app
