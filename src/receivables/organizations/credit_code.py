"""The 18-character unified social credit code (统一社会信用代码, GB 32100-2015).

Why: every organization on the platform is identified by this code, and the
registry against double financing keys receivables on it. A mistyped code would
let the same invoice be registered twice under two "different" sellers, so the
check character is verified on onboarding.

Layout: 1 registration-authority char, 1 organization-type char, 6-digit
administrative division, 9-char organization code, 1 check char. Only the check
character is verified here (the standard's mod-31 checksum over the first 17).
"""

from __future__ import annotations

__all__ = [
    "CREDIT_CODE_CHARSET",
    "CREDIT_CODE_LENGTH",
    "is_valid_credit_code",
    "make_credit_code",
    "normalize_credit_code",
]

CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of the code, in value order (no I, O, Z, S, V: easily misread)."""

CREDIT_CODE_LENGTH = 18

_MODULUS = len(CREDIT_CODE_CHARSET)
_WEIGHTS = tuple(pow(3, i, _MODULUS) for i in range(CREDIT_CODE_LENGTH - 1))
"""3^(i-1) mod 31 for positions 1..17.

That is (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28), as in the standard.
"""

_VALUE = {ch: value for value, ch in enumerate(CREDIT_CODE_CHARSET)}


def normalize_credit_code(code: str) -> str:
    """Canonical form for storage and comparison: surrounding spaces removed, upper case."""
    return code.strip().upper()


def _check_character(prefix17: str) -> str:
    """The check character for 17 already-validated characters (GB 32100-2015 §4.2)."""
    total = sum(_VALUE[ch] * weight for ch, weight in zip(prefix17, _WEIGHTS, strict=True))
    return CREDIT_CODE_CHARSET[(_MODULUS - total % _MODULUS) % _MODULUS]


def is_valid_credit_code(code: str) -> bool:
    """True iff ``code`` is a canonical 18-char code whose check character is right.

    Strict about form (call ``normalize_credit_code`` first): accepting lower
    case here would invite storing a non-canonical code.
    """
    if not isinstance(code, str) or len(code) != CREDIT_CODE_LENGTH:
        return False
    if any(ch not in _VALUE for ch in code):
        return False
    return code[-1] == _check_character(code[:-1])


def make_credit_code(prefix17: str) -> str:
    """Append the correct check character to 17 characters (for tests and demo data)."""
    if len(prefix17) != CREDIT_CODE_LENGTH - 1:
        raise ValueError(f"a credit code prefix has {CREDIT_CODE_LENGTH - 1} characters")
    bad = sorted({ch for ch in prefix17 if ch not in _VALUE})
    if bad:
        raise ValueError(f"characters not allowed in a credit code: {''.join(bad)}")
    return prefix17 + _check_character(prefix17)
