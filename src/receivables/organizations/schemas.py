"""Request and response bodies for organizations and users."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from receivables.auth.passwords import PASSWORD_LENGTH_MAX, PASSWORD_LENGTH_MIN
from receivables.organizations.credit_code import is_valid_credit_code, normalize_credit_code
from receivables.organizations.models import OrganizationSize, OrganizationStatus, Sector

OrganizationKind = Literal["sme", "core", "bank", "regulator", "operator"]


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    kind: OrganizationKind
    credit_code: Annotated[str, Field(min_length=18, max_length=18)]
    size: OrganizationSize | None = None
    """Enterprise size class; defaults to small for an sme, large for everyone else."""
    sector: Sector = Sector.private

    @field_validator("credit_code")
    @classmethod
    def _checked(cls, value: str) -> str:
        code = normalize_credit_code(value)
        if not is_valid_credit_code(code):
            raise ValueError("not a valid unified social credit code (GB 32100-2015 check failed)")
        return code


class OrganizationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: str
    credit_code: str
    size: OrganizationSize
    sector: Sector
    status: OrganizationStatus
    created_at: dt.datetime


class OrganizationRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: str


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[EmailStr, Field(max_length=254)]
    password: Annotated[str, Field(min_length=PASSWORD_LENGTH_MIN, max_length=PASSWORD_LENGTH_MAX)]


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    created_at: dt.datetime
