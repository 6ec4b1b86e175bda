"""Invariant checks for programmer errors that must survive ``python -O``.

A bare ``assert`` is stripped under ``-O``, which would let a bug in money or
ledger arithmetic pass silently. ``invariant`` always runs. It is for conditions
that can only fail through a bug in our own code, never for validating caller
input (use ``ValueError`` and friends for that).
"""

from __future__ import annotations

__all__ = ["InvariantViolation", "invariant"]


class InvariantViolation(Exception):
    """A condition our own code guarantees did not hold: a bug, not bad input.

    It deliberately does not derive from ``ValueError`` so that request
    handlers that turn ``ValueError`` into a 4xx never mask a bug as a client
    error.
    """


def invariant(condition: bool, message: str) -> None:
    """Raise ``InvariantViolation(message)`` unless ``condition`` holds.

    Used instead of ``assert`` because assertions vanish under ``-O``.
    """
    if not condition:
        raise InvariantViolation(message)
