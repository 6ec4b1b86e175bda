"""Goal: every figure of GET /stats/overview, /stats/core-enterprises, /stats/arrears
(by debtor and by sector) and /organizations/{id}/profile is right, and the CSV answer
of each is the JSON answer's rows.

Method: `tests/stats/support.build_market` builds a marketplace over HTTP with the
simulated clock and the worker's tick (POST /admin/tick moves deals overdue and
defaulted, expires lapsed receivables and cancels unfunded deals); its docstring lists
each receivable's fate, and the expected figures below are worked out by hand from it.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from receivables.events.models import AuditRecord
from tests.stats.support import Market, as_cell, build_market, get, get_csv


@pytest.fixture
async def market(app, client: httpx.AsyncClient, world) -> Market:
    return await build_market(app, client, world)


def without_scope(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("as_of", "currency", "from", "to")}


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """The overview's JSON as `metric → value`, written independently of stats/csv.py."""
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, inner in value.items():
            found.update(flatten(inner, f"{path}.{key}" if path else key))
        return found
    if isinstance(value, list):  # the monthly series, keyed by month
        found = {}
        for entry in value:
            month = entry["month"]
            found.update(flatten({k: v for k, v in entry.items() if k != "month"}, f"{path}.{month}"))
        return found
    return {path: value}


async def assert_csv_rows_match(client, party, path: str, body: dict, **params: Any) -> None:
    header, rows, response = await get_csv(client, party, path, **params)
    items = body["items"]
    assert items, "compare a non-empty page"
    assert header == list(items[0])
    assert rows == [[as_cell(v) for v in item.values()] for item in items]
    assert response.headers.get("x-next-cursor") == body["next_cursor"]


async def assert_csv_metrics_match(client, party, path: str, body: dict, **params: Any) -> None:
    header, rows, _ = await get_csv(client, party, path, **params)
    assert header == ["metric", "value"]
    expected = {k: as_cell(v) for k, v in flatten(body).items()}
    assert dict(rows) == expected
    assert len(rows) == len(expected)


ALL_STATUSES = (
    "submitted", "confirmed", "disputed", "listed", "awarded", "financed", "overdue",
    "defaulted", "settled", "expired", "cancelled",
)


def statuses(**nonzero: int) -> dict[str, int]:
    return {status: nonzero.get(status, 0) for status in ALL_STATUSES}


class TestOverview:
    async def test_figures_range_currency_and_csv(self, client, market: Market):
        regulator = market.world.regulator
        body = await get(client, regulator, "/stats/overview")
        assert (body["as_of"], body["currency"], body["from"], body["to"]) == (
            "2026-06-02T10:00:00Z", "CNY", None, None
        )
        assert without_scope(body) == {
            "organizations_by_kind": {"sme": 3, "core": 4, "bank": 3, "regulator": 1, "operator": 1},
            # R1, R9 settled; R2, R7 defaulted; R3 overdue; R4 disputed; R5 expired; R6
            # confirmed again after its deal was cancelled. R8 is USD.
            "receivables_by_status": statuses(
                settled=2, defaulted=2, overdue=1, disputed=1, expired=1, confirmed=1
            ),
            # Funded: D1 (P 6.4M of F 8M), D2 1M, D7 0.5M, D9 0.3M, D3 1M; D6 never funded.
            "financed_count": 5,
            "financed_amount": "9200000.00",
            "financed_face_value": "10800000.00",
            # The large supplier's D1 is the only non-SME deal: 4 of 5 deals, but only
            # 2.8M of 9.2M of principal.
            "sme_financed_count": 4,
            "sme_financed_amount": "2800000.00",
            "sme_share_count": 0.8,
            "sme_share_amount": 0.3043,  # 2.8 / 9.2 = 0.30434...
            # (6.4×4.00 + 1×5.00 + 0.5×4.50 + 0.3×5.00 + 1×6.00) / 9.2 = 4.38587 %
            "average_discount_rate": "0.043859",
            "median_discount_rate": "0.0500",  # 4.00, 4.50, [5.00], 5.00, 6.00
            # Still owed: D2 1M (defaulted), D7 0.5M − 0.3M repaid (defaulted), D3 1M (overdue).
            "outstanding_amount": "2200000.00",
            "overdue_amount": "1000000.00",
            "defaulted_amount": "1200000.00",
            "monthly": [
                {"month": "2026-03", "submitted_count": 8, "financed_count": 4,
                 "financed_amount": "8200000.00", "sme_financed_count": 3,
                 "sme_financed_amount": "1800000.00"},
                {"month": "2026-04", "submitted_count": 0, "financed_count": 1,
                 "financed_amount": "1000000.00", "sme_financed_count": 1,
                 "sme_financed_amount": "1000000.00"},
            ],
        }
        await assert_csv_metrics_match(client, regulator, "/stats/overview", body)

        april = await get(client, market.world.operator, "/stats/overview", **{"from": "2026-04-01", "to": "2026-04-30"})
        assert (april["from"], april["to"]) == ("2026-04-01", "2026-04-30")
        assert april["receivables_by_status"] == statuses()
        assert (april["financed_count"], april["financed_amount"]) == (1, "1000000.00")
        assert (april["sme_share_count"], april["sme_share_amount"]) == (1.0, 1.0)
        assert (april["average_discount_rate"], april["median_discount_rate"]) == ("0.0600", "0.0600")
        assert april["outstanding_amount"] == april["overdue_amount"] == "1000000.00"
        assert [m["month"] for m in april["monthly"]] == ["2026-04"]

        before = await get(client, regulator, "/stats/overview", to="2026-03-01")
        assert before["financed_count"] == 0 and before["monthly"] == []
        assert (before["sme_share_count"], before["average_discount_rate"]) == (None, None)
        assert before["organizations_by_kind"] == {k: 0 for k in before["organizations_by_kind"]}

        usd = await get(client, regulator, "/stats/overview", currency="USD")
        assert usd["receivables_by_status"] == statuses(expired=1)
        assert usd["financed_count"] == 0 and usd["median_discount_rate"] is None


def row_of(body: dict, debtor) -> dict:
    [row] = [r for r in body["items"] if r["debtor_id"] == str(debtor.organization_id)]
    return row


class TestCoreEnterprises:
    async def test_track_records_sorting_pages_and_range(self, client, market: Market):
        world = market.world
        body = await get(client, world.regulator, "/stats/core-enterprises")
        assert (body["sort"], body["order"], body["next_cursor"]) == ("median_confirmation_hours", "desc", None)
        # Slowest confirmer first; Grid Power has nothing to measure and comes last.
        assert [r["name"] for r in body["items"]] == [
            "State Grid Co", "City Works Bureau", "Great Motors", "Grid Power"
        ]
        assert row_of(body, world.core) == {
            "debtor_id": str(world.core.organization_id), "name": "Great Motors", "sector": "private",
            # R1, R2, R4, R5, R6 (R8 is USD): 3 confirmed, R4 disputed, R5 expired.
            "submitted": 5, "confirmed": 3, "disputed": 1, "expired": 1,
            "confirmation_rate": 0.6,
            # Confirmed after 2 h, 4 h and 6 h: median 4; p90 at position 1.8 → 4 + 0.8 × 2.
            "median_confirmation_hours": 4.0, "p90_confirmation_hours": 5.6,
            # D1 (Titan Steel) and D2 (Acme); D6 was never funded.
            "suppliers_financed": 2, "financed_count": 2, "financed_amount": "7400000.00",
            # D1 repaid on its due date's eve, D2 never.
            "due_count": 2, "on_time_count": 1, "on_time_rate": 0.5,
            "overdue_count": 1, "overdue_amount": "1000000.00",
        }
        soe = row_of(body, market.soe)
        assert (soe["median_confirmation_hours"], soe["p90_confirmation_hours"]) == (25.0, 29.0)
        assert (soe["due_count"], soe["on_time_count"], soe["on_time_rate"]) == (2, 0, 0.0)
        assert (soe["overdue_count"], soe["overdue_amount"]) == (1, "200000.00")
        assert (soe["suppliers_financed"], soe["financed_amount"]) == (1, "800000.00")
        gov = row_of(body, market.gov)
        assert (gov["confirmation_rate"], gov["median_confirmation_hours"]) == (1.0, 10.0)
        idle = row_of(body, world.core2)
        assert (idle["submitted"], idle["confirmation_rate"], idle["on_time_rate"]) == (0, None, None)
        assert (idle["median_confirmation_hours"], idle["overdue_amount"]) == (None, "0.00")
        await assert_csv_rows_match(client, world.regulator, "/stats/core-enterprises", body)
        await self.check_sorting_and_pages(client, market)
        await self.check_range(client, market)

    async def check_sorting_and_pages(self, client, market: Market):
        operator = market.world.operator

        async def names(**params: Any) -> list[str]:
            body = await get(client, operator, "/stats/core-enterprises", **params)
            return [r["name"] for r in body["items"]]

        # Worst payers first: both 0.0 (ties by name), then 0.5, then nothing to measure.
        assert await names(sort="on_time_rate") == [
            "City Works Bureau", "State Grid Co", "Great Motors", "Grid Power"
        ]
        assert await names(sort="overdue_amount") == [
            "City Works Bureau", "Great Motors", "State Grid Co", "Grid Power"
        ]
        assert await names(sort="median_confirmation_hours", order="asc") == [
            "Great Motors", "City Works Bureau", "State Grid Co", "Grid Power"
        ]
        assert await names(sort="name") == sorted(await names(sort="name"))
        first = await get(client, operator, "/stats/core-enterprises", limit=3)
        assert len(first["items"]) == 3 and first["next_cursor"]
        await assert_csv_rows_match(client, operator, "/stats/core-enterprises", first, limit=3)
        rest = await get(client, operator, "/stats/core-enterprises", limit=3, cursor=first["next_cursor"])
        assert [r["name"] for r in rest["items"]] == ["Grid Power"] and rest["next_cursor"] is None

    async def check_range(self, client, market: Market):
        """Receivables count by submission day, deals by funding day."""
        body = await get(
            client, market.world.regulator, "/stats/core-enterprises",
            **{"from": "2026-04-01", "to": "2026-06-30"},
        )
        gov = row_of(body, market.gov)
        assert (gov["submitted"], gov["financed_amount"], gov["overdue_amount"]) == (0, "1000000.00", "1000000.00")
        core = row_of(body, market.world.core)
        assert (core["submitted"], core["financed_count"], core["overdue_amount"]) == (0, 0, "0.00")


async def audit_actions(app, object_id: uuid.UUID, prefix: str) -> list[AuditRecord]:
    async with app.state.sessionmaker() as session:
        stmt = (
            select(AuditRecord)
            .where(AuditRecord.object_id == object_id, AuditRecord.action.startswith(prefix))
            .order_by(AuditRecord.chain_index)
        )
        return list((await session.execute(stmt)).scalars())


class TestArrears:
    async def test_by_debtor_and_by_sector(self, app, client, market: Market):
        world = market.world
        body = await get(client, world.bank, "/stats/arrears")
        assert body["thresholds"] == {"amount": "1000000.00", "days": 90}
        assert body["group_by"] == "debtor" and body["next_cursor"] is None
        core, gov, soe = body["items"]
        # Listed by the worker's serious-arrears job at the tick that made it overdue.
        listed_at = "2026-04-02T10:00:00Z"
        assert core == {
            "debtor_id": str(world.core.organization_id), "name": "Great Motors",
            "sector": "private", "overdue_count": 1, "overdue_amount": "1000000.00",
            "defaulted_count": 1, "defaulted_amount": "1000000.00",
            "oldest_due_date": "2026-03-31", "max_days_overdue": 63,
            # Reaches the 1,000,000.00 threshold exactly.
            "serious": True, "listed_at": listed_at,
        }
        assert (gov["name"], gov["overdue_amount"], gov["max_days_overdue"]) == (
            "City Works Bureau", "1000000.00", 13
        )
        assert (gov["defaulted_count"], gov["serious"]) == (0, True)
        assert (soe["name"], soe["overdue_amount"], soe["defaulted_amount"]) == (
            "State Grid Co", "200000.00", "200000.00"
        )
        assert (soe["max_days_overdue"], soe["serious"], soe["listed_at"]) == (63, False, None)
        await assert_csv_rows_match(client, world.bank, "/stats/arrears", body)

        serious = await get(client, world.regulator, "/stats/arrears", serious="true")
        assert [r["name"] for r in serious["items"]] == ["Great Motors", "City Works Bureau"]
        # Fell overdue in May or June: only D3; `serious` still speaks of all its arrears.
        recent = await get(client, world.operator, "/stats/arrears", **{"from": "2026-05-01"})
        assert [(r["name"], r["serious"]) for r in recent["items"]] == [("City Works Bureau", True)]
        assert (await get(client, world.regulator, "/stats/arrears", currency="USD"))["items"] == []

        # The first look listed both serious debtors, once, as audited platform events.
        for debtor in (world.core, market.gov):
            [row] = await audit_actions(app, debtor.organization_id, "arrears.")
            assert (row.action, row.actor_role, row.to_state) == ("arrears.listed", "system", "listed")
            assert row.data["overdue_amount"] == "1000000.00" and row.data["currency"] == "CNY"
        assert await audit_actions(app, market.soe.organization_id, "arrears.") == []
        await self.check_by_sector(client, market)

    async def check_by_sector(self, client, market: Market):
        regulator = market.world.regulator
        body = await get(client, regulator, "/stats/arrears", group_by="sector")
        assert body["group_by"] == "sector"
        assert body["items"] == [
            {"sector": "government", "overdue_count": 1,
             "overdue_amount": "1000000.00", "repaid_amount": "0.00",
             "outstanding_amount": "1000000.00", "cleared_count": 0, "cleared_ratio": 0.0},
            # D7 owed 400,000 when it fell overdue (100,000 repaid before), 200,000 repaid
            # since; D9 owed 300,000 and was repaid in full, late: 500,000 of 700,000.
            {"sector": "state_owned", "overdue_count": 2,
             "overdue_amount": "700000.00", "repaid_amount": "500000.00",
             "outstanding_amount": "200000.00", "cleared_count": 1, "cleared_ratio": 0.7143},
            {"sector": "private", "overdue_count": 1,
             "overdue_amount": "1000000.00", "repaid_amount": "0.00",
             "outstanding_amount": "1000000.00", "cleared_count": 0, "cleared_ratio": 0.0},
            {"sector": "foreign", "overdue_count": 0,
             "overdue_amount": "0.00", "repaid_amount": "0.00", "outstanding_amount": "0.00",
             "cleared_count": 0, "cleared_ratio": None},
        ]
        await assert_csv_rows_match(client, regulator, "/stats/arrears", body, group_by="sector")
        # Fell overdue on 2026-04-01 (due 03-31): everything but D3.
        april = await get(client, regulator, "/stats/arrears", group_by="sector", **{"from": "2026-04-01", "to": "2026-04-01"})
        assert [r["overdue_count"] for r in april["items"]] == [0, 2, 1, 0]
        may = await get(client, regulator, "/stats/arrears", group_by="sector", **{"from": "2026-05-21", "to": "2026-05-21"})
        assert [r["overdue_count"] for r in may["items"]] == [1, 0, 0, 0]


class TestProfile:
    async def test_debtor_and_bank_records(self, client, market: Market):
        world = market.world
        path = f"/organizations/{world.core.organization_id}/profile"
        body = await get(client, world.bank3, path)
        assert without_scope(body) == {
            "organization_id": str(world.core.organization_id), "name": "Great Motors",
            "kind": "core", "size": "large", "sector": "private",
            "submitted_count": 5, "confirmed_count": 3, "disputed_count": 1, "expired_count": 1,
            "confirmation_rate": 0.6, "median_confirmation_hours": 4.0,
            "p90_confirmation_hours": 5.6, "suppliers_financed": 2, "financed_count": 2,
            "financed_amount": "7400000.00", "due_count": 2, "on_time_count": 1,
            "on_time_rate": 0.5, "overdue_count": 1, "overdue_amount": "1000000.00",
            "defaulted_amount": "1000000.00", "max_days_overdue": 63, "serious_arrears": True,
            "won_count": None, "funded_count": None, "missed_fundings": None,
            "missed_funding_rate": None,
        }
        await assert_csv_metrics_match(client, world.bank3, path, body)
        soe = await get(client, world.regulator, f"/organizations/{market.soe.organization_id}/profile")
        assert (soe["serious_arrears"], soe["overdue_amount"], soe["on_time_rate"]) == (False, "200000.00", 0.0)
        await self.check_bank_funding_record(client, market)

    async def check_bank_funding_record(self, client, market: Market):
        world = market.world
        path = f"/organizations/{world.bank3.organization_id}/profile"
        own = await get(client, world.bank3, path)
        assert (own["won_count"], own["funded_count"], own["missed_fundings"], own["missed_funding_rate"]) == (1, 0, 1, 1.0)
        assert own["confirmed_count"] is None  # not a debtor
        assert (await get(client, world.regulator, path))["missed_fundings"] == 1
        first = await get(client, world.operator, f"/organizations/{world.bank.organization_id}/profile")
        assert (first["won_count"], first["funded_count"], first["missed_fundings"]) == (3, 3, 0)
        # Another bank sees that the organization exists, not its competitor's record.
        other = await get(client, world.bank2, path)
        assert (other["kind"], other["missed_fundings"], other["won_count"]) == ("bank", None, None)
        sme = await get(client, world.bank, f"/organizations/{world.sme.organization_id}/profile")
        assert (sme["kind"], sme["confirmed_count"], sme["missed_fundings"]) == ("sme", None, None)
