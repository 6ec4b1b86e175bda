"""/auth/token (password and client-credentials grants), /auth/refresh and /me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.exceptions import RequestValidationError

from receivables.auth import service
from receivables.auth.dependencies import Actor, AuthSessionDep
from receivables.auth.schemas import MeRead, RefreshRequest, TokenRequest, TokenResponse
from receivables.auth.throttle import TooManyLoginAttempts
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import problem_responses

router = APIRouter(tags=["auth"])


def _client_address(request: Request) -> str:
    """The peer address as the server saw it (behind a proxy, run uvicorn with
    --proxy-headers and --forwarded-allow-ips so this is the real client)."""
    return request.client.host if request.client else "unknown"


def _required(form: TokenRequest, *names: str) -> list[str]:
    """The grant's own fields, or 422 naming each one missing."""
    values = [getattr(form, name) for name in names]
    missing = [name for name, value in zip(names, values) if value is None]
    if missing:
        message = f"required for grant_type {form.grant_type}"
        raise RequestValidationError(
            [{"loc": ("body", name), "msg": message, "type": "missing"} for name in missing]
        )
    return values


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=problem_responses(
        service.InvalidCredentials, service.InvalidClient, service.OrganizationSuspended,
        TooManyLoginAttempts,
    ),
)
async def issue_token(
    form: Annotated[TokenRequest, Form()],
    request: Request,
    session: AuthSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> TokenResponse:
    """Get a short-lived bearer access token (form-encoded, OAuth2).

    `grant_type=password` with a user's `username` (email) and `password` also returns a
    single-use `refresh_token`. `grant_type=client_credentials` with an API client's
    `client_id` and `client_secret` returns an access token for the client. Failed
    attempts are throttled per account and per address: 429 with `Retry-After`."""
    address = _client_address(request)
    if form.grant_type == "client_credentials":
        client_id, client_secret = _required(form, "client_id", "client_secret")
        return await service.login_with_client_credentials(
            session, client_id=client_id, client_secret=client_secret, address=address,
            settings=settings, clock=clock,
        )
    username, password = _required(form, "username", "password")
    return await service.login_with_password(
        session, email=username, password=password, address=address, settings=settings,
        clock=clock,
    )


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    responses=problem_responses(service.InvalidRefreshToken),
)
async def refresh_token(
    body: RefreshRequest, session: AuthSessionDep, settings: SettingsDep, clock: ClockDep
) -> TokenResponse:
    """Exchange a refresh token for a new access token and a new refresh token. Each
    refresh token works once: presenting a used one again revokes every token of its
    login (its family), and both holders must log in again."""
    return await service.refresh(
        session, refresh_token=body.refresh_token, settings=settings, clock=clock
    )


@router.get("/me", response_model=MeRead, responses=problem_responses())
async def read_me(principal: Actor, session: SessionDep) -> MeRead:
    """Who the token belongs to: the user (or API client), its organization and role."""
    return await service.me(session, principal)
