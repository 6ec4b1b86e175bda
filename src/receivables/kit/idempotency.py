"""Idempotency keys on every POST (API.md; Stripe's model, stored like formance's).

The request's transaction (kit/transaction.py) stores the claimed key's answer.

A key is scoped to the caller's organization. The first request that completes with a
2xx stores its status and body in the SAME transaction as its effect, so a crash either
loses both or keeps both: a retry after an ambiguous failure either re-executes cleanly
or replays. A retry with the same key and body replays the stored answer (marked
`Idempotent-Replayed: true`); the same key with another body answers 422
`idempotency_key_reused`; while the first is still in flight, a second answers 409
`idempotency_key_in_flight` (PostgreSQL; SQLite serializes writers, so the second simply
waits and replays). Errors are not stored: their transaction rolled back, nothing
happened, and a retry runs again. Keys expire after `idempotency_ttl_hours`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from sqlalchemy import Column, LargeBinary, UniqueConstraint, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from receivables.kit.errors import Conflict, ReceivablesError, Unprocessable
from receivables.kit.models import id_field, instant_field
from receivables.kit.transaction import CLAIM_STATE_KEY

HEADER = "Idempotency-Key"
KEY_CHARS_MAX = 255
RESPONSE_BYTES_MAX = 262_144
HEADER_DOC = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": KEY_CHARS_MAX},
    "description": "Retry-safe key, scoped to your organization: the same key and body "
    "replay the first 2xx answer (`Idempotent-Replayed: true`); another body → 422 "
    "`idempotency_key_reused`; still in flight → 409. Remembered for 24 h.",
}


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("organization_id", "key"),)

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    key: str = Field(max_length=KEY_CHARS_MAX)
    request_hash: str = Field(max_length=64)
    """SHA-256 of method, path and the canonical JSON body."""
    status_code: int
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: dt.datetime = instant_field(index=True)


class IdempotencyKeyReused(Unprocessable):
    code, title = "idempotency_key_reused", "This key was used with a different request"


class IdempotencyKeyInFlight(Conflict):
    code, title = "idempotency_key_in_flight", "A request with this key is still being processed"


class InvalidIdempotencyKey(Unprocessable):
    code, title = "invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters"


class Replay(ReceivablesError):
    """Not an error: carries the stored answer out of the dependency that found it."""

    status = 200

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__("replay")
        self.record = record


@dataclass
class Claim:
    """A key this request will record on success, with the request's session."""

    session: AsyncSession
    organization_id: uuid.UUID
    key: str
    request_hash: str
    now: dt.datetime

    async def store(self, status_code: int, body: bytes) -> None:
        if not 200 <= status_code < 300 or len(body) > RESPONSE_BYTES_MAX:
            return
        self.session.add(IdempotencyRecord(
            organization_id=self.organization_id, key=self.key, request_hash=self.request_hash,
            status_code=status_code, body=body, created_at=self.now,
        ))
        await self.session.flush()


def request_hash(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def _body_bytes(request: Request) -> bytes:
    """The raw body; a form body was already streamed into FastAPI's parsed (and cached)
    form, so its fields stand in for the bytes."""
    try:
        return await request.body()
    except RuntimeError:
        form = await request.form()
        return json.dumps(sorted(form.multi_items()), default=str).encode()


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= KEY_CHARS_MAX and all(33 <= ord(c) <= 126 for c in key)


async def _hold_key_lock(session: AsyncSession, organization_id: uuid.UUID, key: str) -> bool:
    """PostgreSQL: a transaction-scoped advisory lock per (organization, key), so a
    concurrent twin learns at once that the first is in flight."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    digest = hashlib.sha256(f"{organization_id}:{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    result = await session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id})
    return bool(result.scalar_one())


async def claim_key(
    request: Request, session: AsyncSession, *, organization_id: uuid.UUID,
    now: dt.datetime, ttl: dt.timedelta,
) -> Claim | None:
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return None
    if not _valid_key(key):
        raise InvalidIdempotencyKey()
    digest = request_hash(request.method, request.url.path, await _body_bytes(request))
    if not await _hold_key_lock(session, organization_id, key):
        raise IdempotencyKeyInFlight()
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.organization_id == organization_id, IdempotencyRecord.key == key
    )
    stored = (await session.execute(stmt)).scalar_one_or_none()
    if stored is not None and stored.created_at + ttl <= now:
        await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == stored.id))
        stored = None
    if stored is not None:
        raise Replay(stored) if stored.request_hash == digest else IdempotencyKeyReused()
    claim = Claim(session, organization_id, key, digest, now)
    setattr(request.state, CLAIM_STATE_KEY, claim)
    return claim


async def reap_expired(session: AsyncSession, *, now: dt.datetime, ttl: dt.timedelta) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= now - ttl)
    )
    return result.rowcount or 0


async def count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(IdempotencyRecord))).scalar_one()


async def _replay(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replay)
    record = exc.record
    return Response(
        content=record.body, status_code=record.status_code, media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def install(app: FastAPI) -> None:
    """Replays answer from the stored record; every POST documents the header."""
    app.add_exception_handler(Replay, _replay)


def document_header(openapi: dict) -> dict:
    for operations in openapi.get("paths", {}).values():
        if "post" in operations:
            operations["post"].setdefault("parameters", []).append(HEADER_DOC)
    return openapi
