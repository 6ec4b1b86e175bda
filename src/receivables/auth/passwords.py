"""Password hashing with argon2id, run off the event loop.

One argon2 hash or verify takes ~90 ms of CPU with the library defaults, which
would stall every other request if run on the event loop, so both run in a worker
thread. Verifying for an unknown user (no stored hash) still runs one full argon2
verify against a dummy hash, so "no such user" costs the same as "wrong password"
and login timing does not reveal which accounts exist.
"""

from __future__ import annotations

import secrets
import threading

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

PASSWORD_LENGTH_MIN = 8
"""Enforced by the request schemas that accept new passwords."""
PASSWORD_LENGTH_MAX = 256
"""Enforced by the request schemas, and by :func:`hash_password` as a last guard."""

_hasher = PasswordHasher()

_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def _get_dummy_hash() -> str:
    """A hash of a random password, made with the same parameters, computed once."""
    global _dummy_hash
    if _dummy_hash is None:
        with _dummy_lock:
            if _dummy_hash is None:
                _dummy_hash = _hasher.hash(secrets.token_urlsafe(32))
    return _dummy_hash


def _verify_sync(plain: str, hashed: str | None) -> bool:
    if hashed is None:
        try:
            _hasher.verify(_get_dummy_hash(), plain)
        except (Argon2Error, ValueError, TypeError):
            pass
        return False
    try:
        return _hasher.verify(hashed, plain)
    except (Argon2Error, InvalidHashError, ValueError, TypeError):
        # VerifyMismatchError / VerificationError are Argon2Errors; InvalidHashError
        # is a ValueError. A corrupt stored hash is a failed login, not a 500.
        return False


async def hash_password(plain: str) -> str:
    """Return an argon2id hash of ``plain`` (computed in a worker thread).

    Raises ``ValueError`` if ``plain`` is not a string or is longer than
    :data:`PASSWORD_LENGTH_MAX`; the minimum length is left to the request schemas.
    """
    if not isinstance(plain, str):
        raise ValueError("password must be a string")
    if len(plain) > PASSWORD_LENGTH_MAX:
        raise ValueError(f"password longer than {PASSWORD_LENGTH_MAX} characters")
    return await anyio.to_thread.run_sync(_hasher.hash, plain)


async def verify_password(plain: str, hashed: str | None) -> bool:
    """True only if ``plain`` matches ``hashed``. Never raises for a bad password or hash.

    ``hashed=None`` (unknown user) does a full dummy verification and returns False.
    An over-long or non-string ``plain`` can match nothing :func:`hash_password` made,
    so it is checked against the dummy hash (same cost, bounded input) and fails.
    """
    if not isinstance(plain, str) or len(plain) > PASSWORD_LENGTH_MAX:
        await anyio.to_thread.run_sync(_verify_sync, "", None)
        return False
    return await anyio.to_thread.run_sync(_verify_sync, plain, hashed)
