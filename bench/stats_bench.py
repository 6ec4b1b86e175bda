"""Time every statistics endpoint on the database bench/stats_generator.py filled.

    .venv/bin/python bench/stats_bench.py \
        --url postgresql://postgres@127.0.0.1:5432/stats_bench --runs 7 [--drop]

The real application runs in this process (httpx over ASGI: routing, authentication,
the request transaction, serialization, CSV — everything but the socket), with its
clock fixed at the generator's "now". A regulator and a bank user are added so real
tokens authenticate each call. Each endpoint is called once to warm caches (the first
GET /stats/arrears also lists every serious debtor, writing its audit events), then
`--runs` times; the table shows p50, p95 and max in milliseconds. First, the summary
tables are built (what the worker's first `refresh_summaries` does on a loaded
database), and timed. Last, two endpoints are timed right after a change (the busiest
debtor repays 1.00 over HTTP before each call), so each call pays for catching the
summaries up. `--drop` drops the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats_generator import NOW

from receivables.app import create_app
from receivables.auth import tokens
from receivables.config import Settings
from receivables.kit.clock import SimulatedClock
from receivables.stats import service as stats_service
from receivables.stats import summaries

SECRET = "stats-bench-" + "x" * 40


async def add_user(
    url: str, kind: str, organization_id: uuid.UUID | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    """A user of `organization_id`, or of the first organization of `kind` (inserted
    directly: no password needed)."""
    connection = await asyncpg.connect(url)
    try:
        if organization_id is None:
            organization_id = await connection.fetchval(
                "SELECT id FROM organization WHERE kind = $1 ORDER BY name LIMIT 1", kind
            )
        user_id = uuid.uuid4()
        await connection.execute(
            "INSERT INTO \"user\" (id, organization_id, email, password_hash, is_active, created_at)"
            " VALUES ($1, $2, $3, 'x', true, $4)",
            user_id, organization_id, f"bench-{kind}-{user_id.hex[:8]}@example.test", NOW,
        )
        return user_id, organization_id
    finally:
        await connection.close()


async def busiest_debtor(url: str) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """The debtor with the most receivables, and some of its deals it can still repay."""
    connection = await asyncpg.connect(url)
    try:
        debtor = await connection.fetchval(
            "SELECT debtor_id FROM receivable GROUP BY debtor_id ORDER BY count(*) DESC LIMIT 1"
        )
        deals = await connection.fetch(
            "SELECT id FROM deal WHERE debtor_id = $1 AND status = 'disbursed' AND currency = 'CNY'"
            " AND face_value_minor - repaid_minor > 1000 ORDER BY id LIMIT 50",
            debtor,
        )
        return debtor, [row["id"] for row in deals]
    finally:
        await connection.close()


async def build_summaries(app) -> tuple[float, int]:
    """Build every summary row from the base tables, as the first refresh on a loaded
    database does (the worker's `refresh_summaries`), then catch up with nothing."""
    started = time.perf_counter()
    async with app.state.sessionmaker.begin() as session:
        await summaries.rebuild(session, clock=app.state.clock)
    async with app.state.sessionmaker.begin() as session:
        assert await stats_service.refresh_summaries(
            session, clock=app.state.clock, settings=app.state.settings
        ) == 0
    seconds = time.perf_counter() - started
    async with app.state.sessionmaker() as session:
        return seconds, await summaries.summary_rows(session)


def bearer(settings: Settings, user_id: uuid.UUID, organization_id: uuid.UUID, role: str) -> dict:
    token = tokens.issue_access_token(
        secret=settings.jwt_secret_bytes, subject=str(user_id), organization_id=organization_id,
        role=role, now=NOW, lifetime_seconds=24 * 3600,
    )
    return {"Authorization": f"Bearer {token}"}


async def bench(url: str, runs: int) -> list[tuple[str, list[float], int]]:
    settings = Settings(database_url=url, jwt_secret=SECRET, simulated_clock=True)
    regulator = bearer(settings, *await add_user(url, "regulator"), "regulator")
    bank = bearer(settings, *await add_user(url, "bank"), "bank")
    debtor, repayable = await busiest_debtor(url)
    core = bearer(settings, *await add_user(url, "core", debtor), "core")
    cases = [
        ("GET /stats/overview", "/stats/overview", regulator),
        ("GET /stats/overview?from=2026-01-01&to=2026-03-31", "/stats/overview?from=2026-01-01&to=2026-03-31", regulator),
        ("GET /stats/overview?currency=USD", "/stats/overview?currency=USD", regulator),
        ("GET /stats/overview (text/csv)", "/stats/overview", {**regulator, "Accept": "text/csv"}),
        ("GET /stats/core-enterprises", "/stats/core-enterprises", regulator),
        ("GET /stats/core-enterprises?sort=on_time_rate&limit=200", "/stats/core-enterprises?sort=on_time_rate&limit=200", regulator),
        ("GET /stats/core-enterprises?from=2026-01-01 (text/csv)", "/stats/core-enterprises?from=2026-01-01", {**regulator, "Accept": "text/csv"}),
        ("GET /stats/arrears (bank)", "/stats/arrears", bank),
        ("GET /stats/arrears?serious=true&limit=200", "/stats/arrears?serious=true&limit=200", regulator),
        ("GET /stats/arrears?group_by=sector", "/stats/arrears?group_by=sector", regulator),
        ("GET /stats/arrears?group_by=sector&from=2026-01-01", "/stats/arrears?group_by=sector&from=2026-01-01", regulator),
        ("GET /organizations/{busiest debtor}/profile (bank)", f"/organizations/{debtor}/profile", bank),
    ]
    changed = [
        ("GET /stats/core-enterprises after a repayment by the busiest debtor", "/stats/core-enterprises", regulator),
        ("GET /stats/overview after a repayment by the busiest debtor", "/stats/overview", regulator),
    ]
    app = create_app(settings, clock=SimulatedClock(NOW))
    results = []
    async with app.router.lifespan_context(app):
        seconds, rows = await build_summaries(app)
        print(f"summary tables built in {seconds:.1f} s: {rows:,} rows", flush=True)
        results.append((f"first build of the summary tables ({rows:,} rows)", [seconds * 1000], 0))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
            for name, path, headers in cases:
                results.append(await timed(client, name, path, headers, runs))
            deals = iter(repayable)
            for name, path, headers in changed:
                results.append(await timed(
                    client, name, path, headers, runs,
                    before=lambda: repay(client, core, next(deals)),
                ))
    return results


async def repay(client: httpx.AsyncClient, headers: dict, deal_id: uuid.UUID) -> None:
    body = {"amount": "1.00", "payment_reference": f"BENCH-{uuid.uuid4().hex[:8]}"}
    response = await client.post(f"/deals/{deal_id}/repay", json=body, headers=headers)
    assert response.status_code == 200, response.text[:300]


async def timed(client, name, path, headers, runs, before=None) -> tuple[str, list[float], int]:
    """One warm-up call, then `runs` timed ones (each after `before()`, untimed)."""
    first = await client.get(path, headers=headers)
    assert first.status_code == 200, (name, first.status_code, first.text[:300])
    timings = []
    for _ in range(runs):
        if before is not None:
            await before()
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    print(f"{name:70s} p50 {percentile(timings, 50):7.1f} ms", flush=True)
    return name, timings, len(response.content)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def drop(url: str) -> None:
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    server = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/stats_bench")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards")
    args = parser.parse_args(argv)
    results = asyncio.run(bench(args.url, args.runs))
    print("\n| endpoint | p50 ms | p95 ms | max ms | bytes |\n|---|---:|---:|---:|---:|")
    for name, timings, size in results:
        print(f"| `{name}` | {percentile(timings, 50):.0f} | {percentile(timings, 95):.0f} "
              f"| {max(timings):.0f} | {size:,} |")
    if args.drop:
        asyncio.run(drop(args.url))
        print(f"dropped {args.url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
