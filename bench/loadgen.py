#!/usr/bin/env python3
"""The load generator: a separate process that drives one scenario against one server
with an async HTTP client over a bounded number of keep-alive connections, then prints
one JSON result on stdout. bench/run.py starts it once per scenario and target:

    python bench/loadgen.py SPEC.json      # SPEC: see `Spec` below

The client is aiohttp, not httpx: its C parser costs about a third of httpx's CPU per
request, and every core the generator does not use is one the server and PostgreSQL,
sharing the machine, can (bench/README.md has the measurement).

Each of `connections` tasks owns one connection (the pool is limited to the same number)
and sends its next request as soon as the previous answer arrived (closed loop). The
first `warmup` seconds are driven the same way but not measured. Latency is measured
from just before the request is handed to the client to the end of reading the body.

Besides requests/s, latency percentiles and errors, the result carries this process's
own CPU time over the measured window, so the report can show the generator was not
the bottleneck (a run against a trivial route gives the generator's own ceiling).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

try:  # uvloop is installed with uvicorn[standard]: the generator uses it too
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


@dataclass
class Recorder:
    """Latencies and errors of the measured window (warm-up answers are dropped)."""

    measuring: bool = False
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    acked: Counter = field(default_factory=Counter)
    """2xx answers per step, warm-up included (the database checks count those)."""

    def add(self, step: str, seconds: float, status: int | None, body: bytes, expect: int,
            problem: str | None = None) -> bool:
        ok = status == expect
        if ok:
            self.acked[step] += 1
        if self.measuring:
            self.latencies.setdefault(step, []).append(seconds)
            if not ok:
                code = f"{step}:{status if status is not None else problem}"
                self.errors[code] += 1
                if len(self.error_samples) < 5:
                    text = body[:300].decode(errors="replace") if status is not None else problem
                    self.error_samples.append(f"{code} {text}")
        return ok


class Driver:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.rec = Recorder()
        self.stop = False
        self.rng = random.Random(spec.get("seed", 1))

    async def send(self, client: aiohttp.ClientSession, method: str, path: str,
                   headers: dict[str, str] | None = None, body: Any = None) -> tuple[int | None, bytes, str | None]:
        """(status, body, None) or (None, b"", the transport error's name)."""
        try:
            async with client.request(method, path, headers=headers, json=body) as response:
                return response.status, await response.read(), None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return None, b"", type(exc).__name__

    async def call(self, client: aiohttp.ClientSession, step: str, method: str, path: str,
                   token: str, body: Any = None, expect: int = 200) -> dict | None:
        started = time.perf_counter()
        status, content, problem = await self.send(
            client, method, path, {"Authorization": f"Bearer {token}"}, body)
        ok = self.rec.add(step, time.perf_counter() - started, status, content, expect, problem)
        return json.loads(content) if ok and content else None

    # -------------------------------------------------------------- scenarios

    async def trivial(self, client: aiohttp.ClientSession, task: int) -> None:
        path = self.spec["path"]
        while not self.stop:
            started = time.perf_counter()
            status, content, problem = await self.send(client, "GET", path)
            self.rec.add("get", time.perf_counter() - started, status, content, 200, problem)

    async def bids(self, client: aiohttp.ClientSession, task: int) -> None:
        """Every (bank, listing) pair at most once, in a seeded random order."""
        banks, listings = self.spec["banks"], self.spec["listings"]
        while not self.stop:
            try:
                index = next(self.pairs)
            except StopIteration:
                return
            bank, listing = banks[index % len(banks)], listings[index // len(banks)]
            rate = f"0.0{self.rng.randrange(300, 790)}"
            await self.call(client, "bid", "POST", f"/listings/{listing}/bids", bank["token"],
                            {"discount_rate": rate}, 201)

    async def hot(self, client: aiohttp.ClientSession, task: int) -> None:
        """This task's banks each place one bid on the hot listing, then revise it in
        turn: one request per bank at a time, so each bank's last acknowledged rate is
        what the database must hold afterwards."""
        listing = self.spec["listing"]
        shard = self.spec["banks"][self.spec.get("shard", 0)::self.spec.get("shards", 1)]
        mine = [b for i, b in enumerate(shard) if i % self.connections == task]
        for bank in mine:
            rate = f"0.0{self.rng.randrange(300, 790)}"
            answer = await self.call(client, "place", "POST", f"/listings/{listing}/bids",
                                     bank["token"], {"discount_rate": rate}, 201)
            if answer is not None:
                self.hot_bids[bank["organization_id"]] = answer["id"]
                self.hot_rates[bank["organization_id"]] = rate
        mine = [b for b in mine if b["organization_id"] in self.hot_bids]
        for bank in itertools.cycle(mine):
            if self.stop:
                return
            bid_id = self.hot_bids[bank["organization_id"]]
            rate = f"0.0{self.rng.randrange(300, 790)}"
            answer = await self.call(client, "revise", "PATCH", f"/bids/{bid_id}", bank["token"],
                                     {"discount_rate": rate}, 200)
            if answer is not None:
                self.hot_rates[bank["organization_id"]] = rate

    async def market(self, client: aiohttp.ClientSession, task: int) -> None:
        """Banks browse the open market page after page, from the first again at the end."""
        banks, limit = self.spec["banks"], self.spec.get("limit", 50)
        bank, cursor = banks[(task + self.offset) % len(banks)], None
        while not self.stop:
            path = f"/listings?status=open&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            page = await self.call(client, "page", "GET", path, bank["token"])
            cursor = page["next_cursor"] if page else None
            if cursor is None:
                bank = banks[self.rng.randrange(len(banks))]

    async def lifecycle(self, client: aiohttp.ClientSession, task: int) -> None:
        """submit → confirm → list → bid → award → fund → repay in full, again and again."""
        s = self.spec
        due = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 90 * 86400))
        issued = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 10 * 86400))
        closes = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 6 * 3600))
        task += self.offset
        # Fixed widths: the registry's fingerprint drops punctuation, so "-1-23" and
        # "-12-3" would be one invoice (a 409 duplicate_receivable, as in production).
        for serial in itertools.count():
            if self.stop:
                return
            sme = s["smes"][(task + serial) % len(s["smes"])]
            core = s["cores"][(task * 7 + serial) % len(s["cores"])]
            bank = s["banks"][(task * 3 + serial) % len(s["banks"])]
            face = f"{self.rng.randrange(100_000, 2_000_000)}.00"
            receivable = await self.call(client, "submit", "POST", "/receivables", sme["token"], {
                "debtor_id": core["organization_id"],
                "invoice_number": f"{s['run']}-{task:04d}-{serial:08d}",
                "face_value": face, "issue_date": issued, "due_date": due,
            }, 201)
            if receivable is None:
                continue
            rid = receivable["id"]
            if await self.call(client, "confirm", "POST", f"/receivables/{rid}/confirm",
                               core["token"], {}) is None:
                continue
            listing = await self.call(client, "list", "POST", "/listings", sme["token"], {
                "receivable_id": rid, "max_discount_rate": "0.0800", "closes_at": closes,
                "auto_award": False,
            }, 201)
            if listing is None:
                continue
            bid = await self.call(client, "bid", "POST", f"/listings/{listing['id']}/bids",
                                  bank["token"], {"discount_rate": "0.0450"}, 201)
            if bid is None:
                continue
            deal = await self.call(client, "award", "POST", f"/listings/{listing['id']}/award",
                                   sme["token"], {"bid_id": bid["id"]}, 201)
            if deal is None:
                continue
            funded = await self.call(client, "fund", "POST", f"/deals/{deal['id']}/fund",
                                     bank["token"], {"amount": deal["funding_amount"],
                                                     "payment_reference": f"W-{rid[:8]}"})
            if funded is None:
                continue
            repaid = await self.call(client, "repay", "POST", f"/deals/{deal['id']}/repay",
                                     core["token"], {"amount": deal["face_value"],
                                                     "payment_reference": f"R-{rid[:8]}"})
            if repaid is not None and repaid.get("status") == "settled":
                self.settled_measured += self.rec.measuring
                self.settled_total += 1

    # -------------------------------------------------------------- the run

    async def run(self) -> dict[str, Any]:
        spec = self.spec
        self.connections = spec["connections"]
        shard, shards = spec.get("shard", 0), spec.get("shards", 1)
        self.offset = shard * self.connections
        self.rng = random.Random(spec.get("seed", 1) * 1000 + shard)
        kind = spec["scenario"]
        if kind == "bids":
            pairs = list(range(len(spec["banks"]) * len(spec["listings"])))
            random.Random(spec.get("seed", 1)).shuffle(pairs)
            self.pairs = iter(pairs[shard::shards])
        self.hot_bids: dict[str, str] = {}
        self.hot_rates: dict[str, str] = {}
        self.settled_measured = self.settled_total = 0
        connector = aiohttp.TCPConnector(limit=self.connections)
        timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 30.0))
        async with aiohttp.ClientSession(base_url=spec["base_url"], connector=connector,
                                         timeout=timeout) as client:
            tasks = [asyncio.create_task(getattr(self, kind)(client, i)) for i in range(self.connections)]
            await asyncio.sleep(spec.get("warmup", 0))
            self.rec.measuring = True
            cpu0, wall0 = time.process_time(), time.perf_counter()
            done_early = False
            deadline = wall0 + spec["seconds"]
            while time.perf_counter() < deadline:
                if all(t.done() for t in tasks):
                    done_early = True
                    break
                await asyncio.sleep(0.05)
            self.rec.measuring = False
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            self.stop = True
            results = await asyncio.gather(*tasks, return_exceptions=True)
        crashed = [repr(r) for r in results if isinstance(r, BaseException)]
        return self.summary(wall, cpu, done_early, crashed)

    def summary(self, wall: float, cpu: float, done_early: bool, crashed: list[str]) -> dict:
        rec = self.rec
        every = sorted(x for values in rec.latencies.values() for x in values)
        steps = {step: stats(sorted(values), wall) for step, values in rec.latencies.items()}
        out = {
            "scenario": self.spec["scenario"], "seconds": wall, "loadgen_cpu_seconds": cpu,
            "requests": len(every), "errors": sum(rec.errors.values()), "error_kinds": dict(rec.errors),
            "error_samples": rec.error_samples, "acked": dict(rec.acked), "done_early": done_early,
            "crashed": crashed, **stats(every, wall), "steps": steps,
            "latencies_ms": {step: [round(x * 1000, 3) for x in values] for step, values in rec.latencies.items()},
        }
        if self.spec["scenario"] == "hot":
            out["hot_bids"], out["hot_rates"] = self.hot_bids, self.hot_rates
        if self.spec["scenario"] == "lifecycle":
            out["settled"], out["settled_total"] = self.settled_measured, self.settled_total
            out["settled_per_second"] = self.settled_measured / wall if wall else 0.0
        return out


def stats(ordered: list[float], wall: float) -> dict[str, float]:
    def pct(p: float) -> float:
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {"rps": len(ordered) / wall if wall else 0.0, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "p999_ms": pct(0.999), "count": len(ordered)}


def main() -> int:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    loop_factory = uvloop.new_event_loop if uvloop is not None else None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(Driver(spec).run())
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
