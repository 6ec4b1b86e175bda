"""The registry fingerprint of a receivable, the key against double financing.

Why: the same invoice must not be financed twice. A seller trying to do so (or
re-submitting by mistake) will rarely type the invoice number identically, so
the fingerprint ignores case, white space, punctuation and full-width/half-width
differences: ``inv-001``, ``INV 001``, ``Inv_001`` and ``ＩＮＶ００１`` are one
invoice. The fingerprint is a hash so the registry can be unique-indexed on a
fixed-size value without storing a second copy of the raw triple.
"""

from __future__ import annotations

import hashlib
import unicodedata

from receivables.organizations.credit_code import normalize_credit_code

__all__ = ["FINGERPRINT_VERSION", "normalize_invoice_number", "receivable_fingerprint"]

FINGERPRINT_VERSION = "receivable-fingerprint/v1"
"""Hashed in first, so a future change of normalization cannot collide with old values."""

_SEPARATOR = "\x1f"
"""ASCII unit separator: neither a letter nor a digit, so it survives no normalization."""


def _is_letter_or_digit(ch: str) -> bool:
    """Unicode letters (L*) and numbers (N*) are the identity of an invoice number."""
    return unicodedata.category(ch)[0] in ("L", "N")


def normalize_invoice_number(text: str) -> str:
    """Canonical invoice number: NFKC, case folded to upper, letters and digits only.

    NFKC first so full-width forms become ASCII; casefold before upper so
    special cases like "ß" compare caselessly; NFKC again after filtering so
    characters that were separated by punctuation compose the same way as if
    typed together, which keeps the function idempotent.
    """
    folded = unicodedata.normalize("NFKC", text).casefold().upper()
    kept = "".join(ch for ch in unicodedata.normalize("NFKC", folded) if _is_letter_or_digit(ch))
    return unicodedata.normalize("NFKC", kept)


def _canonical_credit_code(code: str, role: str) -> str:
    """Normalized credit code, refused if it could contain the separator.

    Only ASCII letters and digits are admitted, which every valid code is; this
    keeps the joined triple unambiguous without requiring a checked code.
    """
    normalized = normalize_credit_code(code)
    if not normalized or not (normalized.isascii() and normalized.isalnum()):
        raise ValueError(f"{role} credit code must be ASCII letters and digits")
    return normalized


def receivable_fingerprint(
    seller_credit_code: str, debtor_credit_code: str, invoice_number: str
) -> str:
    """SHA-256 hex of (seller, debtor, normalized invoice number).

    Raises ValueError if the invoice number has no letter or digit at all,
    since such a number would make every "empty" invoice of a pair collide.
    """
    invoice = normalize_invoice_number(invoice_number)
    if not invoice:
        raise ValueError("invoice number must contain at least one letter or digit")
    parts = (
        FINGERPRINT_VERSION,
        _canonical_credit_code(seller_credit_code, "seller"),
        _canonical_credit_code(debtor_credit_code, "debtor"),
        invoice,
    )
    return hashlib.sha256(_SEPARATOR.join(parts).encode("utf-8")).hexdigest()
