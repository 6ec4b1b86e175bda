"""Request-level dependencies: settings, clock and the one transaction per request.

All `async def`, though none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a thread hand-off per dependency on every request (measured: ≈ 6 % of the server's
CPU in the lifecycle benchmark, docs/performance.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.config import Settings
from receivables.kit.clock import Clock
from receivables.kit.transaction import SESSION_STATE_KEY


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_session(request: Request) -> AsyncSession:
    """The request's one transaction, opened and committed by kit/transaction.py."""
    return getattr(request.state, SESSION_STATE_KEY)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
