"""Settings from the environment (and an optional `.env`), validated once at start-up.

Tests build `Settings(...)` explicitly and hand it to `create_app`; nothing mutates a global.
"""

from __future__ import annotations

import logging
import secrets
from functools import cached_property
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from receivables.auth.tokens import check_secret
from receivables.kit import money

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///./receivables.db"


def async_database_url(url: str) -> str:
    """Map the user-facing URL (`sqlite:///x`, `postgresql://...`) to its async driver."""
    if url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://"):
        return url
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    raise ValueError("DATABASE_URL must start with sqlite:// or postgresql://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECEIVABLES_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: Annotated[
        str, Field(validation_alias=AliasChoices("DATABASE_URL", "database_url"))
    ] = DEFAULT_DATABASE_URL
    jwt_secret: str | None = None
    """HMAC key for access tokens; a random one per process when unset (tokens die on restart)."""
    access_token_seconds: Annotated[int, Field(ge=30, le=86_400)] = 900
    simulated_clock: bool = False
    platform_fee_rate: str = "0"
    confirmation_window_days: Annotated[int, Field(ge=1, le=365)] = 30
    funding_window_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 24
    grace_days: Annotated[int, Field(ge=0, le=365)] = 30
    serious_arrears_amount: str = "1000000.00"
    serious_arrears_days: Annotated[int, Field(ge=1, le=3650)] = 90
    webhook_allow_insecure: bool = False
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 16
    request_body_bytes_max: Annotated[int, Field(ge=1024, le=10_000_000)] = 65_536
    """Larger request bodies answer 413 before the app reads them (kit/limits.py)."""
    idempotency_ttl_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 24
    """How long an Idempotency-Key is remembered (Stripe: 24 h)."""
    refresh_token_seconds: Annotated[int, Field(ge=300, le=366 * 86_400)] = 30 * 86_400
    """Lifetime of each refresh token; every refresh issues a new one (rotation)."""
    login_failures_per_account_max: Annotated[int, Field(ge=1, le=1_000)] = 5
    """Failed logins for one email (or API client) within the window before 429."""
    login_failures_per_address_max: Annotated[int, Field(ge=1, le=100_000)] = 20
    """Failed logins from one client address within the window before 429."""
    login_failure_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 900
    """The throttling window, counted from the first failure in it."""
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    """`receivables serve` on SIGTERM/SIGINT: stop accepting, let requests in flight
    finish for up to this long, then cancel what is left."""

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        async_database_url(value)
        return value

    @field_validator("platform_fee_rate")
    @classmethod
    def _fee_rate(cls, value: str) -> str:
        money.parse_rate(value)
        return value

    @field_validator("serious_arrears_amount")
    @classmethod
    def _arrears_amount(cls, value: str) -> str:
        money.parse_amount(value)
        return value

    @model_validator(mode="after")
    def _secret_is_safe(self) -> Settings:
        if self.jwt_secret is None:
            log.warning(
                "RECEIVABLES_JWT_SECRET is not set: using a random key; tokens die on restart"
            )
            self.jwt_secret = secrets.token_urlsafe(48)
        check_secret(self.jwt_secret)
        return self

    @cached_property
    def jwt_secret_bytes(self) -> bytes:
        return check_secret(self.jwt_secret or "")

    @property
    def async_database_url(self) -> str:
        return async_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.async_database_url.startswith("sqlite")

    @property
    def platform_fee_rate_ppm(self) -> int:
        return money.parse_rate(self.platform_fee_rate)

    @property
    def serious_arrears_amount_minor(self) -> int:
        return money.parse_amount(self.serious_arrears_amount)
