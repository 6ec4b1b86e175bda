"""Who is calling: the organization, its role, and the user or API client (or the platform
itself), plus how a token's `sub` names a user or a client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from receivables.auth.roles import Role

CLIENT_SUBJECT_PREFIX = "client:"
"""An API client's access token has `sub` = "client:<client_id>"; a user's is the bare
user id. The prefix keeps the two id spaces apart, so a client id can never be taken
for a user id or the other way round."""


@dataclass(frozen=True)
class Principal:
    role: Role
    organization_id: uuid.UUID | None
    """None only for the platform itself (Role.system)."""
    user_id: uuid.UUID | None = None
    """The user behind a password login; None for an API client and the platform."""
    client_id: uuid.UUID | None = None
    """The API client behind a client-credentials token; None for users."""

    @property
    def sees_everything(self) -> bool:
        """Operators and regulators read every object (DESIGN.md roles table)."""
        return self.role in (Role.operator, Role.regulator)

    @property
    def is_api_client(self) -> bool:
        return self.client_id is not None


SYSTEM = Principal(role=Role.system, organization_id=None)
"""The actor of automatic transitions (deadlines, auto-award)."""


def user_subject(user_id: uuid.UUID) -> str:
    return str(user_id)


def client_subject(client_id: uuid.UUID) -> str:
    return CLIENT_SUBJECT_PREFIX + str(client_id)


def parse_subject(subject: str) -> tuple[str, uuid.UUID]:
    """("user" | "client", id) from a verified token's `sub`; ValueError if malformed.
    Only canonical UUID text is accepted, so one id has exactly one subject."""
    kind, text = ("client", subject[len(CLIENT_SUBJECT_PREFIX):]) if subject.startswith(
        CLIENT_SUBJECT_PREFIX
    ) else ("user", subject)
    parsed = uuid.UUID(text)
    if str(parsed) != text:
        raise ValueError("subject id is not a canonical UUID")
    return kind, parsed
