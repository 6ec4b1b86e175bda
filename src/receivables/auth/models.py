"""Credentials the platform stores: refresh tokens, API clients, failed-login counters.

No secret is stored in a form that lets a database reader use it: refresh tokens as a
SHA-256 digest (they are 256-bit random strings, so a fast hash is enough and keeps
the lookup one index probe), API client secrets as an argon2id hash (like passwords),
and throttling keys as a digest of the email or address they count.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlmodel import Field, SQLModel

from receivables.kit.models import id_field, instant_field

DIGEST_HEX_CHARS = 64
"""A SHA-256 digest in hex."""
API_CLIENT_NAME_CHARS_MAX = 100


class RefreshToken(SQLModel, table=True):
    """One refresh token of a login session (its family). Single use: refreshing marks it
    used and issues the family's next token; presenting a used one again revokes the
    whole family, since then someone else holds a copy (RFC 9700 §4.14.2)."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = id_field()
    token_hash: str = Field(max_length=DIGEST_HEX_CHARS, unique=True)
    """SHA-256 hex digest of the token; the token itself is shown once and never stored."""
    family_id: uuid.UUID = Field(index=True)
    """Shared by every token rotated from the same password login."""
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True)
    issued_at: dt.datetime = instant_field()
    expires_at: dt.datetime = instant_field()
    used_at: dt.datetime | None = instant_field(nullable=True)
    """Set when it was exchanged for the next token of its family."""
    revoked_at: dt.datetime | None = instant_field(nullable=True)
    """Set on every live token of the family when a used one is presented again."""


class ApiClient(SQLModel, table=True):
    """OAuth2 client credentials of an organization (machine-to-machine, e.g. a bank's
    back office). Its access tokens carry the organization's role; its calls are
    attributed to the client in the audit log."""

    __tablename__ = "api_client"

    id: uuid.UUID = id_field()
    """The `client_id`."""
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    name: str | None = Field(default=None, max_length=API_CLIENT_NAME_CHARS_MAX)
    secret_hash: str = Field(max_length=256)
    """argon2id hash of the secret, which is shown once at creation."""
    created_at: dt.datetime = instant_field()
    revoked_at: dt.datetime | None = instant_field(nullable=True)
    """Once set, the client can neither get tokens nor use the ones it has."""


class LoginThrottle(SQLModel, table=True):
    """Failed logins counted per key (an account or a client address) in a fixed window.

    Kept in the database, not in process memory: the API runs as several workers on
    several machines behind a load balancer (DESIGN.md), and per-process counters would
    multiply the allowance by the number of processes and forget it on every restart.
    A failed login already costs an argon2 verification (~90 ms), so the one upsert it
    adds does not show.
    """

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=DIGEST_HEX_CHARS)
    """SHA-256 hex of "account:<email>", "client:<client_id>" or "address:<ip>": bounded
    length, and no email or address in clear."""
    failure_count: int
    window_started_at: dt.datetime = instant_field(index=True)
    """The first failure of the current window; the window ends `window_seconds` later."""
