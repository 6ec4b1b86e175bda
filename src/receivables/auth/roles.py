"""The roles a caller can hold. An organization's kind is its users' role."""

from enum import StrEnum


class Role(StrEnum):
    sme = "sme"
    """A supplier: the creditor who submits and lists receivables."""
    core = "core"
    """A core enterprise: the debtor who confirms and repays."""
    bank = "bank"
    """A financier that bids on listings and funds deals it wins."""
    regulator = "regulator"
    """Read-only supervisor of the whole platform."""
    operator = "operator"
    """Runs the platform: onboards organizations, sees everything."""
    system = "system"
    """The platform itself (worker, deadlines); never held by a token."""


ORGANIZATION_KINDS = (Role.sme, Role.core, Role.bank, Role.regulator, Role.operator)
