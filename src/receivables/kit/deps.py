"""Request-level dependencies: settings, clock and the one transaction per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.config import Settings
from receivables.kit.clock import Clock
from receivables.kit.transaction import SESSION_STATE_KEY


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def get_session(request: Request) -> AsyncSession:
    """The request's one transaction, opened and committed by kit/transaction.py."""
    return getattr(request.state, SESSION_STATE_KEY)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
