"""Goal: the registry fingerprint identifies an invoice, not how it was typed.

Case, white space, punctuation and full-width forms are ignored, so the same
invoice cannot be registered twice by retyping its number; but a different
seller, debtor or invoice number always gives a different fingerprint.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from receivables.organizations.credit_code import make_credit_code
from receivables.receivables.fingerprint import (
    normalize_invoice_number,
    receivable_fingerprint,
)

SELLER = make_credit_code("91350100M000100Y4")
DEBTOR = make_credit_code("91110000600037341")
OTHER = make_credit_code("91440101MA5CJQ4N5")


@pytest.mark.parametrize(
    "variant",
    [
        "inv-001",
        "INV 001",
        "Inv_001",
        "INV001",
        " inv.001 ",
        "INV/001",
        "inv\t\n001",
        "ＩＮＶ－００１",  # full width
        "inv\u3000001",  # ideographic space
        "«INV»—001!",
    ],
)
def test_invoice_number_variants_normalize_alike(variant: str) -> None:
    assert normalize_invoice_number(variant) == "INV001"
    assert receivable_fingerprint(SELLER, DEBTOR, variant) == receivable_fingerprint(
        SELLER, DEBTOR, "INV001"
    )


def test_unicode_letters_and_digits_are_kept() -> None:
    assert normalize_invoice_number("发票-No.12") == "发票NO12"
    assert normalize_invoice_number("straße 1") == "STRASSE1"
    assert normalize_invoice_number("Ⅻ-7") == "XII7"  # compatibility forms via NFKC


def test_different_invoice_numbers_differ() -> None:
    assert normalize_invoice_number("INV-001") != normalize_invoice_number("INV-0010")
    assert receivable_fingerprint(SELLER, DEBTOR, "INV-001") != receivable_fingerprint(
        SELLER, DEBTOR, "INV-002"
    )


def test_different_seller_or_debtor_differ() -> None:
    base = receivable_fingerprint(SELLER, DEBTOR, "INV-001")
    assert receivable_fingerprint(OTHER, DEBTOR, "INV-001") != base
    assert receivable_fingerprint(SELLER, OTHER, "INV-001") != base
    # Seller and debtor are not interchangeable.
    assert receivable_fingerprint(DEBTOR, SELLER, "INV-001") != base


def test_credit_codes_are_normalized() -> None:
    assert receivable_fingerprint(f" {SELLER.lower()} ", DEBTOR, "1") == receivable_fingerprint(
        SELLER, DEBTOR, "1"
    )


def test_fingerprint_is_sha256_hex() -> None:
    fingerprint = receivable_fingerprint(SELLER, DEBTOR, "INV-001")
    assert len(fingerprint) == 64
    assert set(fingerprint) <= set("0123456789abcdef")


@pytest.mark.parametrize("invoice", ["", "   ", "---", "#/.", "\u3000"])
def test_empty_invoice_number_is_refused(invoice: str) -> None:
    assert normalize_invoice_number(invoice) == ""
    with pytest.raises(ValueError, match="invoice number"):
        receivable_fingerprint(SELLER, DEBTOR, invoice)


@pytest.mark.parametrize("code", ["", "   ", "9135\x1f0100", "ＡＢＣ"])
def test_credit_codes_that_could_blur_the_triple_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="credit code"):
        receivable_fingerprint(code, DEBTOR, "INV-001")
    with pytest.raises(ValueError, match="credit code"):
        receivable_fingerprint(SELLER, code, "INV-001")


@given(st.text())
def test_normalization_is_idempotent(text: str) -> None:
    once = normalize_invoice_number(text)
    assert normalize_invoice_number(once) == once


@given(st.text(alphabet=st.characters(codec="ascii"), min_size=1))
def test_ascii_normalization_keeps_only_upper_alnum(text: str) -> None:
    normalized = normalize_invoice_number(text)
    assert normalized == "".join(ch for ch in text.upper() if ch.isalnum())


@given(
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=1, max_size=18),
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=1, max_size=18),
    st.text(alphabet="ABC123", min_size=1, max_size=8),
)
def test_triples_do_not_collide_by_shifting_boundaries(
    seller: str, debtor: str, invoice: str
) -> None:
    # Moving characters from one field to the next must change the fingerprint.
    shifted = receivable_fingerprint(seller + debtor[0], debtor[1:] or "0", invoice)
    if (seller + debtor[0], debtor[1:] or "0") != (seller, debtor):
        assert shifted != receivable_fingerprint(seller, debtor, invoice)
