"""Token, identity and API-client bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from receivables.auth.models import API_CLIENT_NAME_CHARS_MAX
from receivables.auth.passwords import PASSWORD_LENGTH_MAX
from receivables.organizations.schemas import OrganizationRef

REFRESH_TOKEN_CHARS_MAX = 128
"""Issued tokens are 43 characters; anything far longer is refused before hashing."""
CLIENT_ID_CHARS_MAX = 64
CLIENT_SECRET_CHARS_MAX = 256
SCOPE_CHARS_MAX = 256


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    """Seconds until the access token expires."""
    refresh_token: str | None = None
    """Password grant and refresh only: single use, exchanged at POST /auth/refresh for a
    new pair. Client credentials get none (RFC 6749 §4.4.3): they can log in again."""


class TokenRequest(BaseModel):
    """POST /auth/token's form (OAuth2, RFC 6749 §4.3 and §4.4). Unknown parameters are
    refused like unknown JSON fields; `scope` is accepted, as standard OAuth2 clients
    send it, and ignored: a token always carries its organization's role."""

    model_config = ConfigDict(extra="forbid")

    grant_type: Literal["password", "client_credentials"] = "password"
    username: Annotated[str, Field(max_length=254)] | None = None
    """The user's email (password grant)."""
    password: Annotated[str, Field(max_length=PASSWORD_LENGTH_MAX)] | None = None
    client_id: Annotated[str, Field(max_length=CLIENT_ID_CHARS_MAX)] | None = None
    client_secret: Annotated[str, Field(max_length=CLIENT_SECRET_CHARS_MAX)] | None = None
    scope: Annotated[str, Field(max_length=SCOPE_CHARS_MAX)] | None = None


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=REFRESH_TOKEN_CHARS_MAX)]


class MeRead(BaseModel):
    user_id: uuid.UUID | None
    """The user; null when an API client calls."""
    client_id: uuid.UUID | None = None
    """The API client; null when a user calls."""
    email: str | None
    organization: OrganizationRef
    role: str


class ApiClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=True, min_length=1, max_length=API_CLIENT_NAME_CHARS_MAX
            ),
        ]
        | None
    ) = None
    """A label for the organization's own use, e.g. "treasury back office"."""


class ApiClientRead(BaseModel):
    """An API client as listed: never its secret, which only creation shows."""

    model_config = ConfigDict(from_attributes=True)

    client_id: Annotated[uuid.UUID, Field(validation_alias=AliasChoices("id", "client_id"))]
    organization_id: uuid.UUID
    name: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiClientCreated(ApiClientRead):
    client_secret: str
    """Shown this once; only a hash is stored. Lost secrets mean a new client."""


def api_client_created(client: object, secret: str) -> ApiClientCreated:
    """The creation answer: the client as listed, plus its secret this once."""
    listed = ApiClientRead.model_validate(client).model_dump()
    return ApiClientCreated(**listed, client_secret=secret)
