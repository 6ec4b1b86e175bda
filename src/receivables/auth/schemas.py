"""Token and identity bodies."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from receivables.organizations.schemas import OrganizationRef


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    """Seconds until the access token expires."""


class MeRead(BaseModel):
    user_id: uuid.UUID
    email: str | None
    organization: OrganizationRef
    role: str
