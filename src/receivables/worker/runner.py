"""Running the due jobs: once (`POST /admin/tick`, `receivables worker --once`) or in a
loop (`receivables worker`).

Each batch of each job is its own transaction (`sessionmaker.begin()`): committed when the
batch is done, rolled back on any error. A crash therefore loses nothing: what committed
is done, what did not is still due, and the next run (of this worker or another) finishes
it. A failing batch is logged and reported; the other jobs still run, and the loop tries
the failed one again at its next pass.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import AwareDatetime, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from receivables.config import Settings
from receivables.kit.clock import Clock, SimulatedClock, SystemClock
from receivables.kit.db import create_engine, create_sessionmaker
from receivables.worker.jobs import JOBS, Job

log = logging.getLogger("receivables.worker")

BATCHES_PER_JOB_MAX = 10_000
"""A bound on one run's batches of one job (at most 10,000 × its batch size objects);
what is left waits for the next run instead of keeping the run from ever ending."""


class WorkerSettings(BaseSettings):
    """The worker's own settings, from the environment (prefix RECEIVABLES_WORKER_)."""

    model_config = SettingsConfigDict(
        env_prefix="RECEIVABLES_WORKER_", env_file=".env", extra="ignore"
    )

    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    """Pause between two passes of the loop."""
    now: AwareDatetime | None = None
    """Run as if it were this instant (a frozen clock), for demos and tests; refused
    unless RECEIVABLES_SIMULATED_CLOCK=true. `--now` overrides it."""
    heartbeat_file: Path | None = None
    """The loop touches this file before each batch and each pause: a container health
    check reads its age (docker-compose.yml). Unset: no file."""


class Heartbeat:
    """Touches a file to say the loop is making progress; a failure is logged, never
    fatal (the health check then reports the staleness)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failing = False

    def __call__(self) -> None:
        try:
            self.path.touch()
        except OSError as exc:
            if not self.failing:
                log.warning("cannot touch the heartbeat file %s: %s", self.path, exc)
            self.failing = True
        else:
            self.failing = False


class FrozenNowRefused(ValueError):
    """`--now` / RECEIVABLES_WORKER_NOW given while the simulated clock is disabled."""


@dataclass
class RunReport:
    processed: dict[str, int] = field(default_factory=lambda: {job.name: 0 for job in JOBS})
    failed: list[str] = field(default_factory=list)
    """Jobs whose last batch was rolled back; their objects are still due."""

    @property
    def total(self) -> int:
        return sum(self.processed.values())

    def as_dict(self) -> dict[str, object]:
        return {"processed": dict(self.processed), "failed": list(self.failed)}


async def run_batch(
    sessionmaker: async_sessionmaker[AsyncSession], job: Job, *, clock: Clock, settings: Settings
) -> int:
    """One batch of `job` in one transaction: all of it commits, or none of it."""
    async with sessionmaker.begin() as session:
        return await job.run(session, clock, settings)


async def run_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    clock: Clock,
    settings: Settings,
    stop: asyncio.Event | None = None,
    beat: Callable[[], None] | None = None,
) -> RunReport:
    """Run every job until nothing of its kind is due (a batch smaller than its maximum),
    in JOBS order; stop early, between two batches, once `stop` is set. `beat` is called
    before each batch (the loop's heartbeat)."""
    report = RunReport()
    for job in JOBS:
        for _ in range(BATCHES_PER_JOB_MAX):
            if stop is not None and stop.is_set():
                return report
            if beat is not None:
                beat()
            try:
                count = await run_batch(sessionmaker, job, clock=clock, settings=settings)
            except Exception:
                log.exception("job %s failed; its batch was rolled back and stays due", job.name)
                report.failed.append(job.name)
                break
            report.processed[job.name] += count
            if count < job.batch_size_max:
                break
    return report


async def run_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    clock: Clock,
    settings: Settings,
    poll_seconds: float,
    stop: asyncio.Event,
    beat: Callable[[], None] | None = None,
) -> None:
    """Pass after pass until `stop` is set; a pass in progress finishes its current batch
    (a batch is never interrupted: it commits, and the pass ends before the next one)."""
    while not stop.is_set():
        report = await run_due(sessionmaker, clock=clock, settings=settings, stop=stop, beat=beat)
        if report.total or report.failed:
            log.info("processed %s failed %s", report.processed, report.failed)
        if beat is not None:
            beat()
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
        except TimeoutError:
            pass


def worker_clock(settings: Settings, now: dt.datetime | None) -> Clock:
    """The system clock; or, only when the simulated clock is enabled, one frozen at
    `now` (a separate process cannot share an app's simulated clock)."""
    if now is None:
        return SystemClock()
    if not settings.simulated_clock:
        raise FrozenNowRefused(
            "--now / RECEIVABLES_WORKER_NOW need RECEIVABLES_SIMULATED_CLOCK=true"
        )
    if now.tzinfo is None:
        raise FrozenNowRefused("--now must carry a time zone, e.g. 2026-03-02T09:00:00+00:00")
    return SimulatedClock(now.astimezone(dt.UTC))


async def main(settings: Settings, *, once: bool, now: dt.datetime | None) -> int:
    """`receivables worker [--once] [--now ISO]`: with `once`, print the report as JSON
    and exit 1 if a job failed; otherwise loop until SIGTERM or SIGINT."""
    worker_settings = WorkerSettings()
    clock = worker_clock(settings, now if now is not None else worker_settings.now)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        if once:
            report = await run_due(sessionmaker, clock=clock, settings=settings)
            print(json.dumps(report.as_dict(), sort_keys=True), flush=True)
            return 1 if report.failed else 0
        stop = asyncio.Event()

        def request_stop(signum: signal.Signals) -> None:
            if not stop.is_set():
                log.info("%s received: finishing the current batch, then stopping", signum.name)
            stop.set()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, request_stop, signum)
        log.info("worker started: polling every %s s", worker_settings.poll_seconds)
        heartbeat_file = worker_settings.heartbeat_file
        await run_forever(
            sessionmaker, clock=clock, settings=settings,
            poll_seconds=worker_settings.poll_seconds, stop=stop,
            beat=Heartbeat(heartbeat_file) if heartbeat_file is not None else None,
        )
        log.info("worker stopped")
        return 0
    finally:
        await engine.dispose()
