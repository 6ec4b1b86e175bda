"""The audit hash chain: sealing at commit, and verification (pure hashing here)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from receivables.events.models import AuditRecord

GENESIS_HASH = "0" * 64


def canonical(record: AuditRecord) -> bytes:
    """Every field that matters, in a fixed order and format: what the hash covers."""
    body = {
        "id": str(record.id),
        "chain_index": record.chain_index,
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


def link_hash(prev_hash: str, record: AuditRecord) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(record)).hexdigest()


def seal(records: Iterable[AuditRecord], *, last_index: int, last_hash: str) -> tuple[int, str]:
    """Give each record the next index and its link; returns the new head."""
    for record in records:
        last_index += 1
        record.chain_index = last_index
        record.prev_hash = last_hash
        record.hash = last_hash = link_hash(last_hash, record)
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
