"""The one clock every time-reading rule consults (value dates, deadlines, token expiry).

`SystemClock` in production. `SimulatedClock` exists only when
`RECEIVABLES_SIMULATED_CLOCK=true`: the operator's `POST /admin/clock` sets or advances it
so demos and end-to-end tests can fix a value date.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def today(self) -> dt.date: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        return self.now().date()


class SimulatedClock:
    """Starts at the real time (or `start`) and moves only when told to; never backwards."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def today(self) -> dt.date:
        return self._now.date()

    def set(self, instant: dt.datetime) -> dt.datetime:
        if instant.tzinfo is None:
            raise ValueError("the instant must carry a time zone")
        if instant < self._now:
            raise ValueError("the simulated clock never moves backwards")
        self._now = instant.astimezone(dt.UTC)
        return self._now

    def advance(self, seconds: float) -> dt.datetime:
        if seconds < 0:
            raise ValueError("advance_seconds must not be negative")
        self._now = self._now + dt.timedelta(seconds=seconds)
        return self._now
