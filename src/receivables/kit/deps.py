"""Request-level dependencies: settings, clock and the one transaction per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.config import Settings
from receivables.kit.clock import Clock
from receivables.kit.db import session_scope


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
# scope="function": commit before the response leaves, so a failed commit is an error
# response rather than a 2xx for work that never happened (ARCHITECTURE.md §5).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
