#!/usr/bin/env python3
"""The benchmark (issue 8): the real server against a minimal baseline on the same stack,
measured in the same run on the same machine, reported as ratios.

    .venv/bin/python bench/run.py --database-url postgresql://postgres@127.0.0.1:5432/postgres --seconds 15
    .venv/bin/python bench/run.py --database-url sqlite:///bench.db --seconds 10    # smaller run

What one run does:
1. creates a fresh database (PostgreSQL: `bench_<hex>` on that server, dropped at the end;
   SQLite: a new file next to the path given, deleted at the end; `--keep-database`
   keeps it), runs `receivables migrate` and `receivables create-operator`;
2. starts `receivables serve --workers N` (uvicorn with uvloop + httptools) and the
   baseline (`uvicorn baseline_app:create_app --workers N`, bench/baseline_app.py), both
   on the same database;
3. builds the world over HTTP as the operator: SMEs, core enterprises and banks with one
   user each (tokens are then minted with the known RECEIVABLES_JWT_SECRET through
   receivables.auth.tokens, as a login would issue them), `--listings` confirmed and
   listed receivables for the server and as many for the baseline, plus one hot listing
   each;
4. runs every scenario from a SEPARATE process (bench/loadgen.py: async aiohttp, a pool of
   `--connections` keep-alive connections, closed loop), baseline and server back to
   back so both see the same machine:
     calibration   GET a trivial route on each server: the generator's own ceiling
     bid           bids spread over the listings by 50 banks (each bank once per listing)
     hot           64 banks placing and then revising bids on ONE listing
     market        banks paging through GET /listings?status=open (50 per page)
     lifecycle     submit → confirm → list → bid → award → fund → repay, settled per second
   and after each, CPU used by the server, the baseline, the database, the generator and
   everything else on the machine (the machine may be shared: "other" shows it);
5. counts in the database that no bid was lost or duplicated (every acknowledged bid is
   there once; on the hot listing one active bid per bank holding the bank's last
   acknowledged rate, bid_count and bid_sequence exact, one audit row per acknowledged
   placement and revision), and verifies the audit chain and the ledger over HTTP;
6. prints the table with the ratios against the issue's targets (exit 1 if a target is
   missed, unless --no-fail) and writes every figure as JSON (`--json`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RECEIVABLES = str(Path(sys.executable).with_name("receivables"))
JWT_SECRET = "bench-secret-" + "q" * 48
PASSWORD = "bench correct horse battery staple"
SPREAD_BANKS = 50
HOT_BANKS = 64

TARGETS = {
    "bid_throughput": 0.60,   # project bid req/s ≥ 60 % of the baseline's
    "bid_p99": 1.5,           # project bid p99 ≤ 1.5 × the baseline's
    "hot_vs_spread": 0.50,    # hot listing req/s ≥ 50 % of the spread case
    "market": 0.60,           # market read req/s ≥ 60 % of the baseline's
    "settled_per_second": 25.0,
}


# ------------------------------------------------------------------ machine


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor() or "?",
    )
    return {"nproc": os.cpu_count(), "memory_gib": round(total_kb / 2**20, 1), "cpu": model,
            "python": platform.python_version(), "kernel": platform.release()}


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[int, str, float]]:
    """pid → (ppid, comm, cpu seconds) for every process we may read."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        out[int(entry.name)] = (int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return (total - idle) / TICKS, total / TICKS


def _descendants(stats, root: int) -> set[int]:
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _) in stats.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


class CpuMeter:
    """CPU seconds by group over a window: server, baseline, postgres, loadgen, other."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups

    def snapshot(self) -> dict[str, Any]:
        stats = _proc_stats()
        snap: dict[str, dict[int, float]] = {}
        for name, root in self.groups.items():
            snap[name] = {p: stats[p][2] for p in _descendants(stats, root) if p in stats}
        snap["postgres"] = {p: cpu for p, (_, comm, cpu) in stats.items() if comm.startswith("postgres")}
        busy, total = _machine_busy()
        return {"per": snap, "busy": busy, "total": total, "wall": time.perf_counter()}

    @staticmethod
    def delta(before: dict, after: dict, loadgen_cpu: float) -> dict[str, float]:
        """Per process: CPU used between the snapshots (a process that exited in between
        is lost; one that started counts in full)."""
        wall = after["wall"] - before["wall"]
        cores = {
            k: sum(cpu - before["per"].get(k, {}).get(pid, 0.0) for pid, cpu in pids.items()) / wall
            for k, pids in after["per"].items()
        }
        cores["loadgen"] = loadgen_cpu
        cores["machine"] = (after["busy"] - before["busy"]) / wall
        cores["other"] = max(0.0, cores["machine"] - sum(v for k, v in cores.items() if k != "machine"))
        return cores


# ------------------------------------------------------------------ databases


def _is_postgres(url: str) -> bool:
    return url.startswith("postgres")


def _asyncpg_dsn(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def _pg_admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class Database:
    """A fresh database for the run; `query` reads it directly (not through the app)."""

    def __init__(self, url: str, keep: bool) -> None:
        self.server_url, self.keep = url, keep
        self.name = f"bench_{secrets.token_hex(4)}"
        if _is_postgres(url):
            self.url = _with_database(url, self.name)
            self.path = None
        else:
            given = Path(url.removeprefix("sqlite:///")) if url != "sqlite://" else Path(tempfile.gettempdir()) / "bench.db"
            self.path = given.with_name(f"{given.stem}-{self.name}.db").resolve()
            self.url = f"sqlite:///{self.path}"

    async def create(self) -> None:
        if self.path is None:
            await _pg_admin(self.server_url, f'CREATE DATABASE "{self.name}"')

    async def drop(self) -> None:
        if self.keep:
            print(f"kept database {self.url}")
            return
        if self.path is None:
            await _pg_admin(self.server_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)

    async def query(self, sql: str, *args: Any) -> list[tuple]:
        if self.path is None:
            import asyncpg

            connection = await asyncpg.connect(_asyncpg_dsn(self.url))
            try:
                return [tuple(r) for r in await connection.fetch(sql, *args)]
            finally:
                await connection.close()
        sql_lite = sql
        for i in range(len(args), 0, -1):
            sql_lite = sql_lite.replace(f"${i}", "?")
        connection = sqlite3.connect(self.path)
        try:
            return connection.execute(sql_lite, [a.hex if isinstance(a, uuid.UUID) else a for a in args]).fetchall()
        finally:
            connection.close()

    def uid(self, value: str) -> Any:
        """A UUID parameter as the driver stores it (SQLite: 32 hex chars)."""
        return uuid.UUID(value) if self.path is None else uuid.UUID(value).hex

    def uids(self, values: list[str]) -> str:
        """An SQL list literal of UUIDs (ids come from our own server, never user input)."""
        if self.path is None:
            return ",".join(f"'{uuid.UUID(v)}'" for v in values)
        return ",".join(f"'{uuid.UUID(v).hex}'" for v in values)


# ------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server process in its own process group, stopped by its own pid only."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, port: int) -> None:
        self.port = port
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=BENCH, start_new_session=True,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
                try:
                    if (await client.get(path)).status_code in (200, 401):
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVABLES_") and k != "DATABASE_URL"}
    env.update({"DATABASE_URL": database_url, "RECEIVABLES_JWT_SECRET": JWT_SECRET,
                "PYTHONPATH": os.pathsep.join([str(BENCH), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
    env.update(extra)
    return env


def cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([RECEIVABLES, *args], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"receivables {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# ------------------------------------------------------------------ the world


@dataclass
class Party:
    kind: str
    organization_id: str
    user_id: str
    token: str = ""

    def spec(self) -> dict[str, str]:
        return {"organization_id": self.organization_id, "token": self.token}


@dataclass
class World:
    operator_token: str
    smes: list[Party] = field(default_factory=list)
    cores: list[Party] = field(default_factory=list)
    banks: list[Party] = field(default_factory=list)
    listings: dict[str, list[str]] = field(default_factory=dict)
    """"server" / "baseline" → listing ids (each side bids on its own set)."""
    hot: dict[str, str] = field(default_factory=dict)


def mint(party: Party) -> str:
    from receivables.auth.tokens import check_secret, issue_access_token

    return issue_access_token(
        secret=check_secret(JWT_SECRET), subject=party.user_id,
        organization_id=uuid.UUID(party.organization_id), role=party.kind,
        now=dt.datetime.now(dt.UTC), lifetime_seconds=6 * 3600,
    )


async def _post(client: httpx.AsyncClient, path: str, token: str, body: dict, expect: int) -> dict:
    for attempt in range(5):
        response = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        if response.status_code == expect:
            return response.json()
        if response.status_code < 500:
            break
        await asyncio.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")


async def gather_bounded(limit: int, coroutines) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(coroutine):
        async with gate:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


async def build_world(base_url: str, operator_email: str, args) -> World:
    run = secrets.token_hex(3).upper()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        login = await client.post("/auth/token", data={
            "grant_type": "password", "username": operator_email, "password": PASSWORD})
        login.raise_for_status()
        world = World(operator_token=login.json()["access_token"])
        from receivables.organizations.credit_code import make_credit_code

        specs = ([("sme", i) for i in range(args.smes)] + [("core", i) for i in range(args.cores)]
                 + [("bank", i) for i in range(args.banks)])
        base = int(run, 16) % 100_000

        async def party(serial: int, kind: str, index: int) -> Party:
            org = await _post(client, "/organizations", world.operator_token, {
                "name": f"{kind} {index} {run}", "kind": kind,
                "credit_code": make_credit_code(f"91310000M{base:05d}{serial:03d}"),
            }, 201)
            user = await _post(client, f"/organizations/{org['id']}/users", world.operator_token, {
                "email": f"{kind}{index}-{run.lower()}@bench.example.com", "password": PASSWORD}, 201)
            p = Party(kind, org["id"], user["id"])
            p.token = mint(p)
            return p

        parties = await gather_bounded(8, [party(s, k, i) for s, (k, i) in enumerate(specs)])
        for p in parties:
            getattr(world, p.kind + "s" if p.kind != "sme" else "smes").append(p)

        today = dt.date.today()
        closes = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)).isoformat()

        async def listing(i: int) -> str:
            sme, core = world.smes[i % len(world.smes)], world.cores[i % len(world.cores)]
            receivable = await _post(client, "/receivables", sme.token, {
                "debtor_id": core.organization_id, "invoice_number": f"W-{run}-{i:06d}",
                "face_value": f"{100_000 + (i * 7919) % 1_900_000}.00",
                "issue_date": (today - dt.timedelta(days=10)).isoformat(),
                "due_date": (today + dt.timedelta(days=90)).isoformat(),
            }, 201)
            await _post(client, f"/receivables/{receivable['id']}/confirm", core.token, {}, 200)
            listed = await _post(client, "/listings", sme.token, {
                "receivable_id": receivable["id"], "max_discount_rate": "0.0800",
                "closes_at": closes, "auto_award": False,
            }, 201)
            return listed["id"]

        count = args.listings
        ids = await gather_bounded(args.connections, [listing(i) for i in range(2 * count + 2)])
        world.listings = {"server": ids[:count], "baseline": ids[count:2 * count]}
        world.hot = {"server": ids[-2], "baseline": ids[-1]}
    return world


# ------------------------------------------------------------------ scenarios


class LockSampler:
    """PostgreSQL only: every 20 ms, how many of the database's backends are running a
    statement and how many of those wait for a lock, by the statement that waits (its
    first words): who queues behind whom while a scenario runs."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.samples = 0
        self.active = 0
        self.waiting: dict[str, int] = {}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        if self.db.path is not None:
            return
        import asyncpg

        connection = await asyncpg.connect(_asyncpg_dsn(self.db.url))
        try:
            while not self._stop.is_set():
                rows = await connection.fetch(
                    "SELECT wait_event_type, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) "
                    "FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
                    "AND pid <> pg_backend_pid()")
                self.samples += 1
                self.active += len(rows)
                for wait_type, query in rows:
                    if wait_type == "Lock":
                        self.waiting[query] = self.waiting.get(query, 0) + 1
                try:
                    await asyncio.wait_for(self._stop.wait(), 0.02)
                except asyncio.TimeoutError:
                    pass
        finally:
            await connection.close()

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> dict[str, Any]:
        n = max(self.samples, 1)
        top = sorted(self.waiting.items(), key=lambda kv: -kv[1])[:3]
        return {"active_statements": self.active / n, "lock_waiters": sum(self.waiting.values()) / n,
                "waiting_on": {query: count / n for query, count in top}}


async def run_loadgen(spec: dict[str, Any], meter: CpuMeter, log_dir: Path, db: Database,
                      profile: tuple[Path, int] | None = None) -> dict[str, Any]:
    """One scenario from `spec["generators"]` generator processes sharing its connections
    (each its own shard of the work); with `profile` (directory, pid), py-spy samples that
    server (all its workers) for the whole run, as collapsed stacks."""
    shards = spec.get("generators", 1)
    spy = None
    if profile is not None:
        directory, pid = profile
        directory.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--subprocesses",
             "--format", "raw", "--rate", "250", "--nonblocking", "--duration",
             str(int(spec["seconds"] + spec["warmup"]) + 1), "-o", str(directory / f"{spec['label']}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    paths = []
    for shard in range(shards):
        connections = spec["connections"] // shards + (shard < spec["connections"] % shards)
        path = log_dir / f"spec-{spec['label']}-{shard}.json"
        path.write_text(json.dumps({**spec, "shard": shard, "shards": shards, "connections": connections}))
        paths.append(path)
    sampler = LockSampler(db)
    before = meter.snapshot()
    load_before = loadavg()
    processes = [await asyncio.create_subprocess_exec(
        sys.executable, str(BENCH / "loadgen.py"), str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for path in paths]
    sampling = asyncio.create_task(sampler.run())
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)),
                                     spec["seconds"] + spec["warmup"] + 600)
    sampler.stop()
    await sampling
    after = meter.snapshot()
    if spy is not None:
        spy.wait(60)
    for process, (_, stderr) in zip(processes, outputs):
        if process.returncode != 0:
            raise RuntimeError(f"loadgen {spec['label']} failed:\n{stderr.decode()[-3000:]}")
    result = merge([json.loads(stdout) for stdout, _ in outputs])
    result["generators"] = shards
    result["locks"] = sampler.summary()
    wall = after["wall"] - before["wall"]
    result["cpu_cores"] = CpuMeter.delta(before, after, result["loadgen_cpu_seconds"] / result["seconds"])
    result["loadavg"] = f"{load_before} → {loadavg()}"
    result["label"] = spec["label"]
    result["window_seconds"] = wall
    return result


def _stats_ms(ordered: list[float], wall: float) -> dict[str, float]:
    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")

    return {"rps": len(ordered) / wall if wall else 0.0, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "p999_ms": pct(0.999), "count": len(ordered)}


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from the generator processes' (same window, disjoint work)."""
    wall = max(p["seconds"] for p in parts)
    latencies: dict[str, list[float]] = {}
    for part in parts:
        for step, values in part["latencies_ms"].items():
            latencies.setdefault(step, []).extend(values)
    every = sorted(x for values in latencies.values() for x in values)
    out: dict[str, Any] = {
        "scenario": parts[0]["scenario"], "seconds": wall,
        "loadgen_cpu_seconds": sum(p["loadgen_cpu_seconds"] for p in parts),
        "requests": len(every), "errors": sum(p["errors"] for p in parts),
        "error_kinds": {}, "error_samples": [s for p in parts for s in p["error_samples"]][:5],
        "acked": {}, "done_early": any(p["done_early"] for p in parts),
        "crashed": [c for p in parts for c in p["crashed"]], **_stats_ms(every, wall),
        "steps": {step: _stats_ms(sorted(values), wall) for step, values in latencies.items()},
    }
    for part in parts:
        for key in ("error_kinds", "acked"):
            for name, count in part[key].items():
                out[key][name] = out[key].get(name, 0) + count
    if out["scenario"] == "hot":
        out["hot_bids"] = {k: v for p in parts for k, v in p["hot_bids"].items()}
        out["hot_rates"] = {k: v for p in parts for k, v in p["hot_rates"].items()}
    if out["scenario"] == "lifecycle":
        out["settled"] = sum(p["settled"] for p in parts)
        out["settled_total"] = sum(p["settled_total"] for p in parts)
        out["settled_per_second"] = out["settled"] / wall if wall else 0.0
    if out["crashed"]:
        raise RuntimeError(f"generator tasks crashed: {out['crashed'][:3]}")
    return out


def scenario_specs(world: World, args, urls: dict[str, str]) -> list[dict[str, Any]]:
    common = {"connections": args.connections, "warmup": args.warmup, "seconds": args.seconds,
              "generators": args.generators}
    spread_banks = [b.spec() for b in world.banks[:SPREAD_BANKS]]
    hot_banks = [b.spec() for b in world.banks[:HOT_BANKS]]
    specs = []
    for target in ("baseline", "server"):
        specs.append({**common, "label": f"calibration-{target}", "scenario": "trivial",
                      "base_url": urls[target], "path": "/ping" if target == "baseline" else "/healthz",
                      "seconds": min(args.seconds, 5.0), "warmup": 1.0})
    for scenario in ("bids", "hot", "market"):
        for target in ("baseline", "server"):
            spec = {**common, "label": f"{scenario}-{target}", "scenario": scenario,
                    "base_url": urls[target], "target": target}
            if scenario == "bids":
                spec.update(banks=spread_banks, listings=world.listings[target])
            elif scenario == "hot":
                spec.update(banks=hot_banks, listing=world.hot[target])
            else:
                spec.update(banks=spread_banks, limit=50)
            specs.append(spec)
    specs.append({**common, "label": "lifecycle-server", "scenario": "lifecycle",
                  "base_url": urls["server"], "target": "server", "run": secrets.token_hex(3).upper(),
                  "smes": [p.spec() for p in world.smes], "cores": [p.spec() for p in world.cores],
                  "banks": [b.spec() for b in world.banks]})
    return specs


# ------------------------------------------------------------------ checks


async def check_spread(db: Database, world: World, target: str, result: dict) -> list[str]:
    acked = result["acked"].get("bid", 0)
    rows = await db.query(
        f"SELECT count(*), count(DISTINCT listing_id || '/' || bank_id) FROM bid "
        f"WHERE listing_id IN ({db.uids(world.listings[target])})")
    total, distinct = rows[0]
    problems = []
    if total != acked:
        problems.append(f"{target} bids: {acked} acknowledged, {total} in the database")
    if distinct != total:
        problems.append(f"{target} bids: {total - distinct} duplicated (bank, listing) pairs")
    counted = (await db.query(
        f"SELECT coalesce(sum(bid_count), 0) FROM listing WHERE id IN ({db.uids(world.listings[target])})"))[0][0]
    if counted != acked:
        problems.append(f"{target} listings: bid_count sums to {counted}, {acked} acknowledged")
    return problems


async def check_hot(db: Database, world: World, target: str, result: dict) -> list[str]:
    listing = world.hot[target]
    placed, revised = result["acked"].get("place", 0), result["acked"].get("revise", 0)
    rates = result["hot_rates"]
    problems = []
    rows = await db.query(
        "SELECT bank_id, discount_rate_ppm, status FROM bid WHERE listing_id = $1", db.uid(listing))
    banks: dict[str, list[tuple[int, str]]] = {}
    for bank_id, rate, status in rows:
        banks.setdefault(str(uuid.UUID(str(bank_id))), []).append((rate, status))
    if len(rows) != placed or placed != HOT_BANKS:
        problems.append(f"{target} hot: {HOT_BANKS} banks, {placed} placements acknowledged, {len(rows)} bids stored")
    for bank, stored in banks.items():
        if len(stored) != 1:
            problems.append(f"{target} hot: bank {bank} has {len(stored)} bids")
            continue
        expected = rates.get(bank)
        rate_ppm = int(expected[2:]) * 100 if expected else None
        if stored[0][0] != rate_ppm:
            problems.append(f"{target} hot: bank {bank} holds {stored[0][0]} ppm, last acknowledged {expected}")
    count, sequence = (await db.query(
        "SELECT bid_count, bid_sequence FROM listing WHERE id = $1", db.uid(listing)))[0]
    if count != placed or sequence != placed + revised:
        problems.append(f"{target} hot: bid_count {count} / bid_sequence {sequence}, expected "
                        f"{placed} / {placed + revised}")
    if target == "server":
        bid_ids = list(result["hot_bids"].values())
        audit = dict(await db.query(
            f"SELECT action, count(*) FROM audit_record WHERE object_id IN ({db.uids(bid_ids)}) "
            "GROUP BY action")) if bid_ids else {}
        if audit.get("bid.placed", 0) != placed or audit.get("bid.revised", 0) != revised:
            problems.append(f"{target} hot: audit rows {audit}, expected {placed} placed / {revised} revised")
    return problems


async def check_lifecycles(db: Database, result: dict) -> list[str]:
    settled = (await db.query("SELECT count(*) FROM deal WHERE status = 'settled'"))[0][0]
    if settled != result["settled_total"]:
        return [f"lifecycles: {result['settled_total']} settlements acknowledged, {settled} settled deals stored"]
    return []


async def verify_over_http(base_url: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:
        audit = (await client.get("/audit/verify", headers=headers)).json()
        ledger = (await client.get("/ledger/verify", headers=headers)).json()
    return {"audit_valid": audit.get("valid"), "audit_checked": audit.get("checked"),
            "ledger_balanced": ledger.get("balanced"), "entries_checked": ledger.get("entries_checked")}


# ------------------------------------------------------------------ report


def _row(name: str, r: dict[str, Any] | None, unit: str = "req/s") -> str:
    if r is None:
        return f"| {name} | – | – | – | – | – | – | – |"
    cores = r.get("cpu_cores", {})
    served = cores.get("server", 0) + cores.get("baseline", 0)
    per_request = served / r["rps"] * 1000 if r["rps"] else float("nan")
    return (f"| {name} | {r['rps']:,.0f} {unit} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['p999_ms']:.1f} | {r['errors']} | {per_request:.2f} | "
            f"srv {cores.get('server', 0) + cores.get('baseline', 0):.2f} · db {cores.get('postgres', 0):.2f} · "
            f"gen {cores.get('loadgen', 0):.2f} · other {cores.get('other', 0):.2f} |")


def report(results: dict[str, dict], checks: dict[str, Any], info: dict[str, Any]) -> tuple[str, bool]:
    lines = [
        f"machine: {info['machine']['nproc']} CPUs ({info['machine']['cpu']}), "
        f"{info['machine']['memory_gib']} GiB, Python {info['machine']['python']}; "
        f"load average at start {info['load_start']}, at end {info['load_end']}",
        f"database: {info['database']}; server: receivables serve --workers {info['workers']} "
        f"(uvicorn {info['loop']}); baseline: bench/baseline_app.py, same workers; "
        f"{info['connections']} connections from {info['generators']} generator processes; "
        f"{info['seconds']:.0f} s per scenario after "
        f"{info['warmup']:.0f} s warm-up",
        "",
        "| scenario | throughput | p50 ms | p99 ms | p99.9 ms | errors | server CPU ms/req | CPU cores used (server · db · generator · other) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, title in [
        ("calibration-baseline", "trivial route, baseline (generator ceiling)"),
        ("calibration-server", "trivial route /healthz, server"),
        ("bids-baseline", "baseline bid (spread)"),
        ("bids-server", "bid, spread over listings"),
        ("hot-baseline", "baseline bid+revise, one hot listing"),
        ("hot-server", "bid+revise, one hot listing (64 banks)"),
        ("market-baseline", "baseline market read"),
        ("market-server", "market read GET /listings?status=open"),
        ("lifecycle-server", "lifecycle requests (7 per receivable)"),
    ]:
        lines.append(_row(title, results.get(label)))
    life = results.get("lifecycle-server")
    if life:
        lines.append(f"| **settled receivables** | **{life['settled_per_second']:.1f} /s** | | | | | | |")
        lines.append("")
        lines.append("lifecycle steps (p50 / p99 ms): " + ", ".join(
            f"{step} {s['p50_ms']:.0f}/{s['p99_ms']:.0f}" for step, s in life["steps"].items()))
    lines.append("")

    verdicts: list[tuple[str, str, bool]] = []

    def ratio(a: str, b: str, key: str = "rps") -> float:
        return results[a][key] / results[b][key] if results.get(a) and results.get(b) and results[b][key] else float("nan")

    if "bids-server" in results:
        r = ratio("bids-server", "bids-baseline")
        verdicts.append(("bid throughput / baseline", f"{r:.2f} (target ≥ {TARGETS['bid_throughput']:.2f})",
                         r >= TARGETS["bid_throughput"]))
        r = ratio("bids-server", "bids-baseline", "p99_ms")
        verdicts.append(("bid p99 / baseline p99", f"{r:.2f} (target ≤ {TARGETS['bid_p99']:.2f})", r <= TARGETS["bid_p99"]))
        e = results["bids-server"]["errors"]
        verdicts.append(("bid errors", f"{e} (target 0)", e == 0))
    if "hot-server" in results:
        r = ratio("hot-server", "bids-server")
        verdicts.append(("hot listing / spread", f"{r:.2f} (target ≥ {TARGETS['hot_vs_spread']:.2f})",
                         r >= TARGETS["hot_vs_spread"]))
        hot_problems = [p for p in checks["problems"] if " hot" in p]
        verdicts.append(("hot: lost or duplicated bids in the DB", "none" if not hot_problems else "; ".join(hot_problems),
                         not hot_problems))
    if "market-server" in results:
        r = ratio("market-server", "market-baseline")
        verdicts.append(("market read / baseline", f"{r:.2f} (target ≥ {TARGETS['market']:.2f})", r >= TARGETS["market"]))
    if life:
        s = life["settled_per_second"]
        verdicts.append(("settled receivables per second", f"{s:.1f} (target ≥ {TARGETS['settled_per_second']:.0f})",
                         s >= TARGETS["settled_per_second"]))
    others = [p for p in checks["problems"] if " hot" not in p]
    verdicts.append(("database counts (spread, lifecycles)", "exact" if not others else "; ".join(others), not others))
    v = checks.get("verify", {})
    verdicts.append(("audit chain / ledger after the run",
                     f"valid={v.get('audit_valid')} ({v.get('audit_checked')} rows), balanced={v.get('ledger_balanced')}",
                     bool(v.get("audit_valid")) and bool(v.get("ledger_balanced"))))
    errors = {k: r["errors"] for k, r in results.items() if r["errors"]}
    if errors:
        verdicts.append(("errors in any scenario", json.dumps(errors), False))
    lines += ["| ratio / check | measured | holds |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'yes' if ok else '**NO**'} |" for name, value, ok in verdicts]
    generator = results.get("calibration-baseline")
    if generator:
        busiest = max((r["cpu_cores"]["loadgen"] for r in results.values() if not r["label"].startswith("calibration")), default=0)
        lines += ["", f"generator ({generator.get('generators', 1)} processes): {generator['rps']:,.0f} req/s on a "
                  f"trivial route (its ceiling with a server sharing the machine); at most {busiest:.2f} cores "
                  f"during the scenarios"]
    for r in results.values():
        for sample in r.get("error_samples", [])[:2]:
            lines.append(f"error sample ({r['label']}): {sample}")
    return "\n".join(lines), all(ok for _, _, ok in verdicts)


# ------------------------------------------------------------------ main


async def main_async(args) -> int:
    info: dict[str, Any] = {"machine": machine(), "load_start": loadavg(), "connections": args.connections,
                            "generators": args.generators,
                            "seconds": args.seconds, "warmup": args.warmup}
    postgres = _is_postgres(args.database_url)
    workers = args.workers or ((os.cpu_count() or 1) if postgres else 1)
    info["workers"] = workers
    if not postgres and args.listings is None:
        args.listings = 300
    args.listings = args.listings or 1000
    db = Database(args.database_url, args.keep_database)
    info["database"] = "PostgreSQL" if postgres else "SQLite"
    if postgres:
        version = await db_version(args.database_url)
        info["database"] = version
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="receivables-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"[bench] machine {info['machine']}; load average {info['load_start']}; logs in {log_dir}", flush=True)
    await db.create()
    extra = {"RECEIVABLES_DB_POOL_SIZE": str(args.pool_size)} if args.pool_size else {}
    env = server_env(db.url, **extra)
    try:
        import uvloop  # noqa: F401
        import httptools  # noqa: F401
        info["loop"] = "uvloop + httptools"
    except ImportError:
        info["loop"] = "asyncio + h11 (uvicorn[standard] missing!)"
    servers: list[Server] = []
    try:
        cli(["migrate"], env)
        operator_email = f"operator-{secrets.token_hex(3)}@bench.example.com"
        cli(["create-operator", "--email", operator_email, "--password", PASSWORD], env)
        server = Server("server", [RECEIVABLES, "serve", "--host", "127.0.0.1", "--port", str(port := free_port()),
                                   "--workers", str(workers)], env, log_dir)
        baseline_env = {**env, "BASELINE_POOL_SIZE": str(args.pool_size or 16)}
        baseline = Server("baseline", [sys.executable, "-m", "uvicorn", "baseline_app:create_app", "--factory",
                                       "--host", "127.0.0.1", "--port", str(bport := free_port()),
                                       "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
                          baseline_env, log_dir)
        servers = [server, baseline]
        server.start(port)
        baseline.start(bport)
        await server.wait_ready("/healthz")
        await baseline.wait_ready("/ping")
        started = time.perf_counter()
        world = await build_world(server.base_url, operator_email, args)
        print(f"[bench] world: {len(world.smes)} SMEs, {len(world.cores)} cores, {len(world.banks)} banks, "
              f"{2 * args.listings + 2} listings in {time.perf_counter() - started:.0f} s", flush=True)
        urls = {"server": server.base_url, "baseline": baseline.base_url}
        meter = CpuMeter({"server": server.process.pid, "baseline": baseline.process.pid})
        results: dict[str, dict] = {}
        checks: dict[str, Any] = {"problems": []}
        only = set(args.only.split(",")) if args.only else None
        for spec in scenario_specs(world, args, urls):
            if only and spec["scenario"] not in only and not spec["label"].startswith("calibration"):
                continue
            profile = None
            if args.py_spy and not spec["label"].startswith("calibration"):
                profile = (Path(args.py_spy), (server if spec.get("target") == "server" else baseline).process.pid)
            result = await run_loadgen(spec, meter, log_dir, db, profile)
            results[spec["label"]] = result
            print(f"[bench] {spec['label']:<22} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:6.1f}  "
                  f"p99 {result['p99_ms']:6.1f}  p99.9 {result['p999_ms']:6.1f} ms  errors {result['errors']}  "
                  f"load {result['loadavg']}  cpu {json.dumps({k: round(v, 2) for k, v in result['cpu_cores'].items()})}"
                  f"  db statements running {result['locks']['active_statements']:.1f}, waiting for a lock "
                  f"{result['locks']['lock_waiters']:.1f} {json.dumps(result['locks']['waiting_on'])}"
                  + (f"  ERRORS {result['error_kinds']} {result['error_samples'][:2]}" if result["errors"] else ""),
                  flush=True)
            if spec["scenario"] == "bids":
                checks["problems"] += await check_spread(db, world, spec["target"], result)
            elif spec["scenario"] == "hot":
                checks["problems"] += await check_hot(db, world, spec["target"], result)
            elif spec["scenario"] == "lifecycle":
                checks["problems"] += await check_lifecycles(db, result)
        checks["verify"] = await verify_over_http(server.base_url, world.operator_token)
        info["load_end"] = loadavg()
        table, ok = report(results, checks, info)
        print("\n" + table)
        figures = json.dumps({"info": info, "results": results, "checks": checks}, indent=2, default=str)
        (log_dir / "results.json").write_text(figures)
        if args.json:
            Path(args.json).write_text(figures)
        return 0 if ok or args.no_fail else 1
    finally:
        for s in servers:
            s.stop()
        await db.drop()


async def db_version(url: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return "PostgreSQL " + (await connection.fetchval("SHOW server_version")).split()[0]
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--generators", type=int, default=2,
                        help="load-generator processes sharing the connections (one Python process "
                             "tops out near one core: see the calibration row)")
    parser.add_argument("--workers", type=int, default=0,
                        help="server and baseline workers (default: nproc on PostgreSQL, 1 on SQLite)")
    parser.add_argument("--pool-size", type=int, default=0, help="RECEIVABLES_DB_POOL_SIZE per worker (default 16)")
    parser.add_argument("--listings", type=int, default=None, help="open listings per side (1000; SQLite 300)")
    parser.add_argument("--smes", type=int, default=16)
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--banks", type=int, default=64)
    parser.add_argument("--only", default="", help="comma-separated scenarios: bids,hot,market,lifecycle")
    parser.add_argument("--json", default="", help="write every figure to this file")
    parser.add_argument("--log-dir", default="")
    parser.add_argument("--py-spy", default="", metavar="DIR",
                        help="sample the servers with py-spy during each scenario (collapsed stacks in DIR; "
                             "summarize with bench/profile_summary.py); costs CPU, so figures drop")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target is missed")
    args = parser.parse_args(argv)
    if args.banks < HOT_BANKS:
        parser.error(f"--banks must be at least {HOT_BANKS}")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
