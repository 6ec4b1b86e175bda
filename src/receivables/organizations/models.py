"""Organizations (the parties) and their users."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlmodel import Field, SQLModel

from receivables.kit.models import id_field, instant_field


class OrganizationStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    """Its tokens stop working and its users cannot log in."""


class OrganizationSize(StrEnum):
    micro = "micro"
    small = "small"
    medium = "medium"
    large = "large"


SME_SIZES = frozenset({OrganizationSize.micro, OrganizationSize.small, OrganizationSize.medium})


class Sector(StrEnum):
    """Who owns the organization; regulators' arrears-clearing campaigns group by it."""

    government = "government"
    state_owned = "state_owned"
    private = "private"
    foreign = "foreign"


class Organization(SQLModel, table=True):
    id: uuid.UUID = id_field()
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16, index=True)
    """One of auth.roles.ORGANIZATION_KINDS; the role of every user of the organization."""
    credit_code: str = Field(max_length=18, unique=True)
    """Unified social credit code (GB 32100-2015), check character verified."""
    size: str = Field(max_length=8)
    sector: str = Field(max_length=16)
    status: str = Field(max_length=16, default=OrganizationStatus.active)
    created_at: dt.datetime = instant_field()


class User(SQLModel, table=True):
    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    email: str = Field(max_length=254, unique=True)
    """Stored lower-cased: logins are case-insensitive."""
    password_hash: str = Field(max_length=256)
    is_active: bool = True
    created_at: dt.datetime = instant_field()
