"""/healthz, /readyz and the simulated clock (only when enabled; never in the OpenAPI)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from receivables import migrate
from receivables.auth.dependencies import OperatorActor
from receivables.kit.clock import SimulatedClock
from receivables.kit.deps import ClockDep, SettingsDep
from receivables.kit.errors import NotFound, Unprocessable
from receivables.ops.schemas import ClockChange, ClockRead, Health, Readiness

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


def _require_simulated_clock(clock: ClockDep, settings: SettingsDep) -> None:
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
