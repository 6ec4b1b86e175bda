"""Goal: the GB 32100-2015 check character is verified exactly.

Real codes validate, every single-character corruption of a valid code fails,
and codes of the wrong length or with the forbidden letters I, O, Z, S, V are
refused, so a mistyped code never reaches the registry against double financing.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from receivables.organizations.credit_code import (
    CREDIT_CODE_CHARSET,
    is_valid_credit_code,
    make_credit_code,
    normalize_credit_code,
)

KNOWN_VALID = [
    "91350100M000100Y43",
    "91110000600037341L",
    "91350200776049653A",
    "9135021359498494XQ",
    "91440101MA5CJQ4N59",
    "913502000728319549",
]


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_codes_are_valid(code: str) -> None:
    assert is_valid_credit_code(code)
    assert make_credit_code(code[:17]) == code


def test_weights_are_powers_of_three_mod_31() -> None:
    from receivables.organizations.credit_code import _WEIGHTS

    assert _WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert len(CREDIT_CODE_CHARSET) == 31
    assert not set("IOZSV") & set(CREDIT_CODE_CHARSET)


def test_check_value_31_maps_to_zero() -> None:
    # All zeros sums to 0, so 31 - 0 = 31, which the standard maps to "0".
    assert make_credit_code("0" * 17) == "0" * 18
    assert is_valid_credit_code("0" * 18)


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_every_single_character_corruption_fails(code: str) -> None:
    for position in range(18):
        for replacement in CREDIT_CODE_CHARSET:
            if replacement == code[position]:
                continue
            corrupted = code[:position] + replacement + code[position + 1 :]
            assert not is_valid_credit_code(corrupted), corrupted


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_adjacent_transpositions_fail(code: str) -> None:
    for position in range(17):
        a, b = code[position], code[position + 1]
        if a == b:
            continue
        swapped = code[:position] + b + a + code[position + 2 :]
        assert not is_valid_credit_code(swapped), swapped


@pytest.mark.parametrize(
    "code",
    ["", "91350100M000100Y4", "91350100M000100Y433", "91350100M000100Y43 ", "9" * 17, "9" * 19],
)
def test_wrong_length_fails(code: str) -> None:
    assert not is_valid_credit_code(code)


@pytest.mark.parametrize("letter", "IOZSV")
def test_forbidden_letters_fail(letter: str) -> None:
    # Even with a check character that would otherwise fit, the letter is refused.
    prefix = "91350100M000100Y4"
    for position in range(17):
        candidate = prefix[:position] + letter + prefix[position + 1 :]
        for check in CREDIT_CODE_CHARSET:
            assert not is_valid_credit_code(candidate + check)
    assert not is_valid_credit_code(prefix + letter)
    with pytest.raises(ValueError, match="not allowed"):
        make_credit_code(letter + prefix[1:])


def test_lower_case_and_padding_need_normalizing() -> None:
    raw = "  91350100m000100y43\n"
    assert not is_valid_credit_code(raw)
    assert normalize_credit_code(raw) == "91350100M000100Y43"
    assert is_valid_credit_code(normalize_credit_code(raw))


@pytest.mark.parametrize("code", ["91350100M000100Y4-", "９1350100M000100Y43", None, 913501])
def test_other_garbage_fails(code: object) -> None:
    assert not is_valid_credit_code(code)  # type: ignore[arg-type]


def test_make_credit_code_rejects_wrong_prefix_length() -> None:
    with pytest.raises(ValueError, match="17"):
        make_credit_code("9135")
    with pytest.raises(ValueError, match="17"):
        make_credit_code("91350100M000100Y43")


@given(st.text(alphabet=CREDIT_CODE_CHARSET, min_size=17, max_size=17))
def test_made_codes_validate_and_have_one_check_character(prefix: str) -> None:
    code = make_credit_code(prefix)
    assert is_valid_credit_code(code)
    others = [prefix + c for c in CREDIT_CODE_CHARSET if c != code[-1]]
    assert not any(is_valid_credit_code(other) for other in others)
