"""All SQL about refresh tokens, API clients and failed-login counters."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import bindparam, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.models import ApiClient, LoginThrottle, RefreshToken
from receivables.kit.pagination import PageRequest, keyset_page
from receivables.organizations.models import Organization
from receivables.organizations.repository import Standing, standing_of

# ------------------------------------------------------------------ refresh tokens


async def get_refresh_token_for_update(
    session: AsyncSession, token_hash: str
) -> RefreshToken | None:
    """The token row, locked: two refreshes racing with one token are serialized, so the
    second sees it used (and revokes the family) instead of both succeeding."""
    stmt = (
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def revoke_refresh_family(
    session: AsyncSession, family_id: uuid.UUID, *, now: dt.datetime
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


# ------------------------------------------------------------------ API clients


async def get_client_with_organization(
    session: AsyncSession, client_id: uuid.UUID
) -> tuple[ApiClient, Organization] | None:
    """One indexed join: what every request by a client token re-checks."""
    stmt = (
        select(ApiClient, Organization)
        .join(Organization, Organization.id == ApiClient.organization_id)
        .where(ApiClient.id == client_id)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


_CLIENT_STANDING = standing_of(ApiClient.revoked_at.is_(None), ApiClient.organization_id).where(
    ApiClient.id == bindparam("client_id")
)
"""Built once, as organizations' user standing is: it runs on every client request."""


async def client_standing(session: AsyncSession, client_id: uuid.UUID) -> Standing | None:
    """One indexed join: what every request by a client token re-checks."""
    row = (await session.execute(_CLIENT_STANDING, {"client_id": client_id})).first()
    return Standing(*row) if row else None


async def get_client_for_update(
    session: AsyncSession, organization_id: uuid.UUID, client_id: uuid.UUID
) -> ApiClient | None:
    stmt = (
        select(ApiClient)
        .where(ApiClient.id == client_id, ApiClient.organization_id == organization_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_clients(
    session: AsyncSession, organization_id: uuid.UUID, page: PageRequest
) -> list[ApiClient]:
    stmt = select(ApiClient).where(ApiClient.organization_id == organization_id)
    return list((await session.execute(keyset_page(stmt, ApiClient, page))).scalars())


# ------------------------------------------------------------------ login throttling


async def throttles(session: AsyncSession, keys: list[str]) -> list[LoginThrottle]:
    stmt = select(LoginThrottle).where(LoginThrottle.key.in_(keys))
    return list((await session.execute(stmt)).scalars())


async def count_failure(
    session: AsyncSession, key: str, *, now: dt.datetime, window_started_after: dt.datetime
) -> None:
    """Add one failure to `key`'s window, or start a new window if its window began at
    or before `window_started_after`. One atomic upsert, so concurrent failures on
    several workers all count."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    expired = LoginThrottle.window_started_at <= window_started_after
    # Typed as the column, so the instant is stored like every other (UTC, both backends).
    now_value = literal(now, LoginThrottle.__table__.c.window_started_at.type)
    stmt = insert(LoginThrottle).values(key=key, failure_count=1, window_started_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={
            "failure_count": case((expired, 1), else_=LoginThrottle.failure_count + 1),
            "window_started_at": case((expired, now_value), else_=LoginThrottle.window_started_at),
        },
    )
    await session.execute(stmt)


async def clear_throttle(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


async def purge_throttles(session: AsyncSession, *, window_started_before: dt.datetime) -> None:
    """Forget windows that have ended, so the table stays as small as the recent abuse."""
    await session.execute(
        delete(LoginThrottle).where(LoginThrottle.window_started_at < window_started_before)
    )
