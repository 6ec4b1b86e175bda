"""/auth/token and /me."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form

from receivables.auth import service
from receivables.auth.dependencies import Actor
from receivables.auth.schemas import MeRead, TokenResponse
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import problem_responses

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses=problem_responses(service.InvalidCredentials, service.OrganizationSuspended),
)
async def issue_token(
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[Literal["password"], Form()] = "password",
) -> TokenResponse:
    """Exchange a user's email and password for a short-lived bearer access token
    (OAuth2 password grant, form-encoded)."""
    return await service.login_with_password(
        session, email=username, password=password, settings=settings, clock=clock
    )


@router.get("/me", response_model=MeRead, responses=problem_responses())
async def read_me(principal: Actor, session: SessionDep) -> MeRead:
    """Who the token belongs to: the user, its organization and its role."""
    return await service.me(session, principal)
