"""Goal: the summary tables the statistics read (stats/summaries.py) always agree with
the base tables: kept current incrementally from the audit trail, built from scratch,
or bypassed (a date range makes a debtor's record aggregate the base tables).

Method: the known marketplace (tests/stats/support.py) is built while statistics are
read along the way, so its summaries were kept by incremental refreshes. Every answer
is then compared with the answers after the summaries are dropped and rebuilt, and the
summary-backed answers with the base-table ones over a range covering everything. A
refresh with nothing new reads nothing; the worker-facing function is called directly.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select

from receivables.stats import service as stats_service
from receivables.stats import summaries
from receivables.stats.models import StatsReceivableDay, StatsWatermark
from tests.stats.support import build_market, get

PATHS = [
    ("/stats/overview", {}),
    ("/stats/overview", {"from": "2026-03-02", "to": "2026-04-15"}),
    ("/stats/core-enterprises", {"limit": 200}),
    ("/stats/arrears", {"group_by": "sector"}),
    ("/stats/arrears", {"group_by": "sector", "from": "2026-04-01"}),
]


async def answers(client, world) -> list[dict]:
    return [await get(client, world.regulator, path, **params) for path, params in PATHS]


async def test_incremental_rebuilt_and_live_answers_agree(app, client, world):
    market = await build_market(app, client, world)
    incremental = await answers(client, world)
    async with app.state.sessionmaker.begin() as session:
        assert await stats_service.refresh_summaries(
            session, clock=app.state.clock, settings=app.state.settings
        ) == 0  # the reads above left nothing to do
        watermark = (await session.execute(select(StatsWatermark))).scalar_one()
        assert watermark.rebuilt_at < watermark.refreshed_at  # built early, then kept
        await session.execute(delete(StatsWatermark))
        await session.execute(delete(StatsReceivableDay))  # proof that it is rebuilt
    assert await answers(client, world) == incremental
    async with app.state.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(StatsReceivableDay))).scalar_one() > 0
        assert await summaries.summary_rows(session) > 0

    everything = {"from": "2000-01-01", "to": "2099-12-31"}
    ranged = await get(client, world.regulator, "/stats/core-enterprises", limit=200, **everything)
    assert ranged["items"] == incremental[2]["items"]
    path = f"/organizations/{market.soe.organization_id}/profile"
    whole = await get(client, world.bank, path)
    live = await get(client, world.bank, path, **everything)
    drop = ("as_of", "from", "to")
    assert {k: v for k, v in live.items() if k not in drop} == {k: v for k, v in whole.items() if k not in drop}
    # Rates of a range's edge days come from the deals, of whole months from the
    # monthly summary. 2026-03-03: D1 4.00 % (P 6.4M), D7 4.50, D2 and D9 5.00 % (P 1.3M).
    day = await get(client, world.regulator, "/stats/overview", **{"from": "2026-03-03", "to": "2026-03-03"})
    assert (day["financed_count"], day["median_discount_rate"], day["average_discount_rate"]) == (
        4, "0.0475", "0.041890"
    )
    spring = await get(client, world.regulator, "/stats/overview", **{"from": "2026-03-03", "to": "2026-04-30"})
    assert (spring["financed_count"], spring["median_discount_rate"]) == (5, "0.0500")
