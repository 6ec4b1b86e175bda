"""The audit hash chain: sealing at commit, and verification (pure hashing here)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from receivables.events.models import AuditRecord, NewAuditRecord

Record = AuditRecord | NewAuditRecord
"""A stored row, or one being recorded: the same fields either way."""

GENESIS_HASH = "0" * 64


def canonical(record: Record) -> bytes:
    """Every field that matters, in a fixed order and format: what the hash covers."""
    return _canonical(record, record.chain_index)


_INDEX_SLOT = b'"chain_index":0,"data":'
"""Where the index sits in `canonical` with index 0: keys are sorted, and `data`, the only
free-form value, comes after it, so this is the first (top-level) occurrence."""


def canonical_parts(record: Record) -> tuple[bytes, bytes]:
    """`canonical(record)` around its chain index, before the index is known: for the
    index `i` it gets, canonical(record) == before + str(i).encode() + after. Lets the
    database compute a link while it holds the chain head (events/repository.py)."""
    text = _canonical(record, 0)
    at = text.index(_INDEX_SLOT)
    split = at + len(b'"chain_index":')
    return text[:split], text[split + 1:]


def _canonical(record: Record, chain_index: int | None) -> bytes:
    body = {
        "id": str(record.id),
        "chain_index": chain_index,
        "occurred_at": record.occurred_at.isoformat(),
        "actor_role": record.actor_role,
        "actor_organization_id": _text(record.actor_organization_id),
        "actor_user_id": _text(record.actor_user_id),
        "actor_client_id": _text(record.actor_client_id),
        "action": record.action,
        "object_type": record.object_type,
        "object_id": str(record.object_id),
        "from_state": record.from_state,
        "to_state": record.to_state,
        "audience_kind": record.audience_kind,
        "data": record.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def link_hash(prev_hash: str, record: Record) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(record)).hexdigest()


def seal(records: Iterable[NewAuditRecord], *, last_index: int, last_hash: str) -> tuple[int, str]:
    """Give each record the next index and its link; returns the new head."""
    for record in records:
        last_index += 1
        record.chain_index, record.prev_hash = last_index, last_hash
        last_hash = link_hash(last_hash, record)
        record.hash = last_hash
    return last_index, last_hash


class ChainWalk:
    """Checks records fed one by one in chain order (bounded memory for long chains)."""

    def __init__(self) -> None:
        self.prev_hash = GENESIS_HASH
        self.checked = 0

    def accept(self, record: AuditRecord) -> bool:
        """False at the first record whose index, link or content does not verify."""
        if (
            record.chain_index != self.checked + 1
            or record.prev_hash != self.prev_hash
            or record.hash != link_hash(self.prev_hash, record)
        ):
            return False
        self.checked += 1
        self.prev_hash = record.hash
        return True
