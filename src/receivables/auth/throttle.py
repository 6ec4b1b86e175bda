"""Failed-login throttling: per account (an email, or an API client id) and per client
address, in fixed windows counted in the database.

Why the database: see `LoginThrottle`. Why both keys: per account stops guessing one
user's password from many addresses; per address stops one address spraying a common
password over many accounts. Only failures count; a successful login forgives its
account's failures but not its address's (else an attacker holding one valid account
could reset the address counter between guesses). While a key is over its limit every
attempt answers 429 with `Retry-After` before any password is checked, the same for
known and unknown accounts, so the throttle tells nothing about which accounts exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth import repository
from receivables.config import Settings
from receivables.kit.errors import ReceivablesError


class TooManyLoginAttempts(ReceivablesError):
    status, code, title = 429, "too_many_login_attempts", "Too many failed logins; try again later"


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def account_key(email: str) -> str:
    """The same key for every spelling of one email that logs into the same account."""
    return _digest("account", email.strip().lower())


def client_key(client_id: str) -> str:
    return _digest("client", client_id.strip().lower())


def address_key(address: str) -> str:
    return _digest("address", address)


@dataclass(frozen=True)
class Limit:
    key: str
    failures_max: int


@dataclass(frozen=True)
class Throttle:
    """The limits that apply to one login attempt."""

    account: Limit
    address: Limit
    window_seconds: int

    @classmethod
    def for_attempt(cls, settings: Settings, *, account: str, address: str) -> Throttle:
        """`account` is a key from :func:`account_key` or :func:`client_key`."""
        return cls(
            account=Limit(account, settings.login_failures_per_account_max),
            address=Limit(address_key(address), settings.login_failures_per_address_max),
            window_seconds=settings.login_failure_window_seconds,
        )

    def _window(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.window_seconds)

    async def check(self, session: AsyncSession, *, now: dt.datetime) -> frozenset[str]:
        """Raise 429 with `Retry-After` if either key has used up its window; else
        return the keys that have failures on record (so a success forgives only when
        there is something to forgive, and costs no write otherwise)."""
        limits = {self.account.key: self.account, self.address.key: self.address}
        wait_seconds = 0.0
        rows = await repository.throttles(session, list(limits))
        for row in rows:
            window_ends_at = row.window_started_at + self._window()
            if row.failure_count >= limits[row.key].failures_max and now < window_ends_at:
                wait_seconds = max(wait_seconds, (window_ends_at - now).total_seconds())
        if wait_seconds > 0:
            retry_after = max(1, math.ceil(wait_seconds))
            raise TooManyLoginAttempts(
                f"try again in {retry_after} seconds", headers={"Retry-After": str(retry_after)}
            )
        return frozenset(row.key for row in rows)

    async def record_failure(self, session: AsyncSession, *, now: dt.datetime) -> None:
        window_started_after = now - self._window()
        await repository.purge_throttles(session, window_started_before=window_started_after)
        for limit in (self.account, self.address):
            await repository.count_failure(
                session, limit.key, now=now, window_started_after=window_started_after
            )

    async def forgive_account(self, session: AsyncSession) -> None:
        await repository.clear_throttle(session, self.account.key)
