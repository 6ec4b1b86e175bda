"""Goal: who may read which statistics (API.md), that bad filters answer 422 naming the
field, that an empty platform answers zeros and nulls (never a division by zero), and
that CSV is chosen only when asked for and is safe to open in a spreadsheet.

Method: the world's parties call each route over HTTP, on an otherwise empty platform.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import ClassVar

from tests.fixtures.world import add_party
from tests.stats.support import get

SUPERVISOR_ROUTES = ("/stats/overview", "/stats/core-enterprises")


def profile_path(world) -> str:
    return f"/organizations/{world.core.organization_id}/profile"


class TestRoles:
    async def test_who_may_read_what_and_unknown_ids(self, client, world):
        routes = {
            "/stats/overview": {"regulator", "operator"},
            "/stats/core-enterprises": {"regulator", "operator"},
            "/stats/arrears": {"regulator", "operator", "bank"},
            "/stats/arrears?group_by=sector": {"regulator", "operator", "bank"},
            profile_path(world): {"regulator", "operator", "bank"},
        }
        for path, allowed in routes.items():
            assert (await client.get(path)).status_code == 401, path
            for party in world.parties:
                response = await client.get(path, headers=party.headers)
                expected = 200 if party.kind in allowed else 403
                assert response.status_code == expected, (path, party.kind, response.text)
                if expected == 403:
                    assert response.json()["code"] == "forbidden"
        for party in (world.bank, world.regulator):
            response = await client.get(f"/organizations/{uuid.uuid4()}/profile", headers=party.headers)
            assert response.status_code == 404 and response.json()["code"] == "not_found"


class TestValidation:
    CASES: ClassVar = [
        ("/stats/overview", "from=2026-13-01", "from"),
        ("/stats/overview", "to=yesterday", "to"),
        ("/stats/overview", "from=2026-04-02&to=2026-04-01", "to"),
        ("/stats/overview", "currency=usd", "currency"),
        ("/stats/overview", "currency=EURO", "currency"),
        ("/stats/core-enterprises", "sort=fastest", "sort"),
        ("/stats/core-enterprises", "order=up", "order"),
        ("/stats/core-enterprises", "limit=201", "limit"),
        ("/stats/arrears", "group_by=city", "group_by"),
        ("/stats/arrears", "group_by=sector&serious=true", "serious"),
        ("/stats/arrears", "serious=maybe", "serious"),
        (f"/organizations/{uuid.UUID(int=1)}/profile", "currency=cny", "currency"),
    ]

    async def test_bad_filters_name_the_field(self, client, world):
        for path, query, field in self.CASES:
            response = await client.get(f"{path}?{query}", headers=world.regulator.headers)
            assert response.status_code == 422, (query, response.text)
            body = response.json()
            assert body["code"] == "validation_error"
            assert [e["field"] for e in body["errors"]] == [f"query.{field}"], body
        response = await client.get("/stats/core-enterprises?cursor=abc", headers=world.operator.headers)
        assert response.status_code == 422 and response.json()["code"] == "invalid_cursor"


class TestEmptyPlatform:
    async def test_zeros_and_nulls(self, client, world):
        body = await get(client, world.regulator, "/stats/overview")
        assert body["organizations_by_kind"] == {"sme": 2, "core": 2, "bank": 3, "regulator": 1, "operator": 1}
        assert set(body["receivables_by_status"].values()) == {0}
        assert (body["financed_count"], body["financed_amount"], body["outstanding_amount"]) == (0, "0.00", "0.00")
        assert (body["sme_share_count"], body["sme_share_amount"]) == (None, None)
        assert (body["average_discount_rate"], body["median_discount_rate"]) == (None, None)
        assert body["monthly"] == []
        rows = (await get(client, world.regulator, "/stats/core-enterprises"))["items"]
        assert [(r["name"], r["confirmation_rate"], r["median_confirmation_hours"]) for r in rows] == [
            ("Great Motors", None, None), ("Grid Power", None, None)
        ]
        assert (await get(client, world.bank, "/stats/arrears"))["items"] == []
        sectors = (await get(client, world.bank, "/stats/arrears", group_by="sector"))["items"]
        assert [(s["sector"], s["overdue_count"], s["cleared_ratio"]) for s in sectors] == [
            ("government", 0, None), ("state_owned", 0, None), ("private", 0, None), ("foreign", 0, None)
        ]
        profile = await get(client, world.bank, profile_path(world))
        assert (profile["confirmed_count"], profile["on_time_rate"], profile["serious_arrears"]) == (0, None, False)


class TestCsvNegotiation:
    async def test_json_unless_csv_is_preferred(self, client, world):
        headers = world.regulator.headers
        for accept, csv_expected in [
            (None, False), ("*/*", False), ("application/json", False), ("text/html", False),
            ("text/csv", True), ("text/csv, */*", True), ("text/*", True),
            ("application/json, text/csv;q=0.5", False), ("application/json;q=0.4, text/csv", True),
            ("text/csv;q=0", False),
        ]:
            sent = headers if accept is None else {**headers, "Accept": accept}
            response = await client.get("/stats/overview", headers=sent)
            assert response.status_code == 200
            is_csv = response.headers["content-type"].startswith("text/csv")
            assert is_csv == csv_expected, accept

    async def test_a_name_is_never_run_as_a_formula(self, app, client, world):
        await add_party(app, client, world.operator, "=HYPERLINK(\"http://x\")", "core")
        response = await client.get(
            "/stats/core-enterprises?sort=name",
            headers={**world.regulator.headers, "Accept": "text/csv"},
        )
        header, *rows = list(csv.reader(io.StringIO(response.text)))
        names = [row[header.index("name")] for row in rows]
        assert "'=HYPERLINK(\"http://x\")" in names
        assert response.headers["content-disposition"] == 'attachment; filename="core-enterprises.csv"'
