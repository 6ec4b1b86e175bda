"""Kill-and-restart under load (issue 4 item 4; RELIABILITY.md I3, I10, test 36): a short
run of bench/crash_check.py against PostgreSQL. A real uvicorn server is SIGKILLed twice
in the middle of a mixed load and restarted; the clients retry with their same
Idempotency-Keys; every acknowledged operation must then be in the database exactly
once, nothing refused may have taken effect, and the ledger and audit chain verify.

The run gets its own database on the suite's PostgreSQL server (created and dropped by
the script), so no other test's truncation or rows can touch it. The figures are printed
even when the test passes. Reproduce a plan with
`.venv/bin/python bench/crash_check.py --seed <seed> --operations 120 --kills 2`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

from tests.fixtures.live import live_server  # noqa: F401  (the fixture)

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "crash_check.py"
SEED = 4_2026
OPERATIONS, KILLS = 120, 2


def _crash_check():
    name = "bench_crash_check"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_sigkill_under_load_loses_nothing_and_doubles_nothing(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    crash_check = _crash_check()
    config = crash_check.Config(
        database_url=postgres_url, operations=OPERATIONS, kills=KILLS, clients=6, seed=SEED,
        log_dir=tmp_path, op_timeout=45,
    )
    report = await crash_check.run(config)
    with capsys.disabled():
        print("\n" + report.table())

    assert report.kills == report.restarts == KILLS
    assert report.idle_kills == 0, "a kill came after the load had finished"
    assert report.acknowledged >= OPERATIONS * 0.8
    assert (report.lost, report.duplicated) == (0, 0), report.problems
    assert report.found == report.acknowledged
    assert (report.refused_applied, report.unexpected, report.abandoned) == (0, 0, 0), report.problems
    assert report.ledger_cli_exit == 0 and report.ledger_balanced and report.audit_valid, report.problems
    assert report.ok


@pytest.mark.slow
async def test_the_live_server_fixture_survives_sigkill(live_server, world):  # noqa: F811
    """tests/fixtures/live.py itself: a SIGKILLed server comes back on the same port with
    the same secret, so the suite's tokens still work and nothing committed is lost."""
    sme = live_server.headers(world.sme)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as http:
        created = await http.post("/receivables", json=_body(world), headers=sme)
        assert created.status_code == 201, created.text
        live_server.kill()
        with pytest.raises(httpx.TransportError):
            await http.get("/healthz")
        await live_server.astart()
        again = await http.get(f"/receivables/{created.json()['id']}", headers=sme)
        assert again.status_code == 200 and again.json()["status"] == "submitted"
        assert (await http.get("/readyz")).status_code == 200
    assert (live_server.starts, live_server.kills) == (2, 1)


def _body(world) -> dict[str, str]:
    today = dt.datetime.now(dt.UTC).date()
    return {
        "debtor_id": str(world.core.organization_id), "invoice_number": "LIVE-1",
        "face_value": "1000.00", "issue_date": (today - dt.timedelta(days=5)).isoformat(),
        "due_date": (today + dt.timedelta(days=60)).isoformat(),
    }
