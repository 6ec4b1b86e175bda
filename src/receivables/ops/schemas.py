"""Operations bodies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

ADVANCE_SECONDS_MAX = 10 * 366 * 24 * 3600


class ClockChange(BaseModel):
    """Exactly one of: move forward by `advance_seconds`, or jump to `now`."""

    model_config = ConfigDict(extra="forbid")

    advance_seconds: Annotated[float | None, Field(ge=0, le=ADVANCE_SECONDS_MAX)] = None
    now: AwareDatetime | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ClockChange:
        if (self.advance_seconds is None) == (self.now is None):
            raise ValueError("give exactly one of advance_seconds or now")
        return self


class ClockRead(BaseModel):
    now: dt.datetime


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migration: str | None
