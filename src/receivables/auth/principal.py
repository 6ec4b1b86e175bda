"""Who is calling: the organization, its role, and the user (or the platform itself)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from receivables.auth.roles import Role


@dataclass(frozen=True)
class Principal:
    role: Role
    organization_id: uuid.UUID | None
    """None only for the platform itself (Role.system)."""
    user_id: uuid.UUID | None = None

    @property
    def sees_everything(self) -> bool:
        """Operators and regulators read every object (DESIGN.md roles table)."""
        return self.role in (Role.operator, Role.regulator)


SYSTEM = Principal(role=Role.system, organization_id=None)
"""The actor of automatic transitions (deadlines, auto-award)."""
