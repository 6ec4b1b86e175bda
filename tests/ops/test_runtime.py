"""A serving process tunes its garbage collector once the app is up (ops/runtime.py);
an app built any other way (tests, the demo, the CLI's one-shot commands) leaves the
collector as CPython set it. Each case runs in its own interpreter: freezing is for the
life of a process."""

from __future__ import annotations

import json
import subprocess
import sys

from receivables.ops.runtime import YOUNG_GENERATION_THRESHOLD
from tests.fixtures.live import server_env

PROBE = """
import asyncio, gc, json
from receivables.app import create_app, create_served_app

async def main():
    app = create_served_app() if {served} else create_app()
    async with app.router.lifespan_context(app):
        print(json.dumps({{"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}}))

asyncio.run(main())
"""


def _collector_after_startup(tmp_path, *, served: bool) -> dict:
    env = server_env(f"sqlite:///{tmp_path / 'runtime.db'}")
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(served=served)],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_served_app_freezes_what_start_up_built_and_collects_young_objects_less_often(tmp_path):
    collector = _collector_after_startup(tmp_path, served=True)
    assert collector["threshold"][0] == YOUNG_GENERATION_THRESHOLD
    # The imported code and the app: tens of thousands of objects never scanned again.
    assert collector["frozen"] > 10_000


def test_any_other_app_leaves_the_collector_alone(tmp_path):
    collector = _collector_after_startup(tmp_path, served=False)
    assert collector["threshold"][0] == 700  # CPython's default
    assert collector["frozen"] == 0
