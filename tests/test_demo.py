"""`receivables demo` walks a receivable to settlement with the money model's worked
example (D = 38,350.00) and shows an auction that closed by itself, all through the
typed client against a real server. Both databases."""

from __future__ import annotations

import asyncio

import pytest

from receivables import demo
from receivables.demo import run_demo
from tests.conftest import make_settings


async def test_demo_settles_and_closes_an_auction_by_itself(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_demo(make_settings(database_url, simulated_clock=False)) == 0
    out = capsys.readouterr().out
    assert "discount_amount    38350.00" in out
    assert "status             settled" in out
    assert "balanced           True" in out
    assert "one hour later the worker closed it by itself" in out
    assert "status             awarded" in out
    assert "winning_rate       0.0480" in out


async def test_demo_refuses_a_database_in_use(database_url: str, capsys) -> None:
    settings = make_settings(database_url, simulated_clock=False)
    assert await run_demo(settings) == 0
    assert await run_demo(settings) == 1
    assert "needs an empty database" in capsys.readouterr().out


async def test_an_error_answer_ends_the_demo_naming_it_and_stops_its_server(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "WINNING_RATE", "0.0600")  # above the listing's reserve
    with pytest.raises(SystemExit, match=r"^demo failed: 4\d\d bid_above_reserve: "):
        await run_demo(make_settings(database_url, simulated_clock=False))
    serving = [t for t in asyncio.all_tasks() if "Server.serve" in t.get_coro().__qualname__]
    assert serving == []
