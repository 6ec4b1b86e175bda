"""Goal: prove password hashing verifies the right password, rejects everything else
without raising, costs an unknown user the same argon2 work as a wrong password, and
keeps argon2 off the event loop."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from receivables.auth import passwords
from receivables.auth.passwords import (
    PASSWORD_LENGTH_MAX,
    PASSWORD_LENGTH_MIN,
    hash_password,
    verify_password,
)


@pytest.mark.asyncio
async def test_hash_then_verify_is_true() -> None:
    hashed = await hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert await verify_password("correct horse battery staple", hashed) is True


@pytest.mark.asyncio
async def test_hashes_are_salted() -> None:
    assert await hash_password("same password") != await hash_password("same password")


@pytest.mark.asyncio
async def test_wrong_password_is_false() -> None:
    hashed = await hash_password("correct horse battery staple")
    assert await verify_password("correct horse battery stapl", hashed) is False
    assert await verify_password("", hashed) is False
    assert await verify_password("CORRECT HORSE BATTERY STAPLE", hashed) is False


@pytest.mark.asyncio
async def test_none_hash_is_false_and_uses_the_dummy_hash() -> None:
    assert await verify_password("whatever-password", None) is False
    dummy = passwords._dummy_hash
    assert dummy is not None and dummy.startswith("$argon2id$")
    assert await verify_password("another-password", None) is False
    assert passwords._dummy_hash is dummy  # computed once, then reused


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=65536,t=3,p=4$AAAA$BBBB",
        "$2b$12$abcdefghijklmnopqrstuuJ3c8M6k1u1m2n3o4p5q6r7s8t9u0v1w",
        "$argon2id$v=19$m=65536,t=3,p=4$!!!!$????",
    ],
)
@pytest.mark.asyncio
async def test_garbage_hash_is_false(garbage: str) -> None:
    assert await verify_password("some-password", garbage) is False


@pytest.mark.asyncio
async def test_over_long_password_cannot_be_hashed_and_never_verifies() -> None:
    with pytest.raises(ValueError):
        await hash_password("x" * (PASSWORD_LENGTH_MAX + 1))
    hashed = await hash_password("x" * PASSWORD_LENGTH_MAX)
    assert await verify_password("x" * PASSWORD_LENGTH_MAX, hashed) is True
    assert await verify_password("x" * (PASSWORD_LENGTH_MAX + 1), hashed) is False


@pytest.mark.asyncio
async def test_non_string_password_is_false() -> None:
    hashed = await hash_password("correct horse battery staple")
    not_text: Any
    for not_text in (None, b"correct horse battery staple"):
        assert await verify_password(not_text, hashed) is False


def test_length_bounds() -> None:
    assert (PASSWORD_LENGTH_MIN, PASSWORD_LENGTH_MAX) == (8, 256)


@pytest.mark.asyncio
async def test_unknown_user_costs_about_as_much_as_wrong_password() -> None:
    hashed = await hash_password("correct horse battery staple")
    await verify_password("warm-up", None)  # build the lazy dummy hash first

    async def best_of(n: int, hashed_value: str | None) -> float:
        best = float("inf")
        for _ in range(n):
            start = time.perf_counter()
            await verify_password("wrong password", hashed_value)
            best = min(best, time.perf_counter() - start)
        return best

    wrong = await best_of(3, hashed)
    unknown = await best_of(3, None)
    assert unknown > wrong / 4, (unknown, wrong)  # a real argon2 verify, not a shortcut
    assert unknown < wrong * 4, (unknown, wrong)


@pytest.mark.asyncio
async def test_argon2_runs_off_the_event_loop() -> None:
    """While a hash runs, the loop keeps ticking: the ticker gets many turns."""
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await hash_password("correct horse battery staple")
        await verify_password("correct horse battery staple", None)
        done = True
    assert ticks >= 10, ticks
