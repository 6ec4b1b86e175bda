"""Graceful shutdown as real processes. `receivables serve` (one worker, and two as in
docker-compose.yml): SIGTERM while requests are in flight lets each of them finish with a
complete answer (their writes committed), then the process exits 0; a request still
unfinished after RECEIVABLES_SHUTDOWN_GRACE_SECONDS is cancelled and the process exits
anyway. `receivables worker`: SIGTERM in the middle of a batch of webhook deliveries lets
the batch finish and commit, then the loop ends (exit 0) without starting another.

"In flight" is made certain, not timed: each request is sent with `Expect: 100-continue`
and its body is held back; uvicorn answers `100 Continue` only once the app is running
the request and reads the body. The body is sent only after every server process has
logged that it is shutting down (and, with one worker, a new connection is refused). The
worker's batch is held the same way: the receiver answers only once the worker has logged
the signal. Both databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from receivables.config import Settings
from tests.conftest import JWT_SECRET, make_settings
from tests.fixtures.live import RECEIVABLES, LiveServer, server_env
from tests.fixtures.market import bid, listed_receivable, ok
from tests.fixtures.world import World
from tests.webhooks.support import deliveries, subscribe

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60.0
"""Bound on every wait: generous, for a loaded machine; a healthy run takes a few seconds."""


class Server(LiveServer):
    """A LiveServer started with `--workers N`."""

    def __init__(self, *args, workers: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.workers = workers

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [RECEIVABLES, "serve", "--host", self.host, "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.log_path.parent, start_new_session=True,
            )
        self.starts += 1

    def log_messages(self) -> list[str]:
        messages = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                messages.append(json.loads(line)["message"])
            except (ValueError, KeyError, TypeError):
                continue
        return messages

    async def wait_exit(self, timeout: float = WAIT_SECONDS) -> int:
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait, timeout)


async def wait_for(predicate, what: str, server: Server) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{server.log_tail()}"
        await asyncio.sleep(0.05)


class HeldRequest:
    """A POST whose body waits until `finish()`: in flight in the server meanwhile."""

    def __init__(self, server: Server, path: str, body: dict, headers: dict[str, str]) -> None:
        self.server, self.path, self.headers = server, path, headers
        self.body = json.dumps(body).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        """Send the head and wait for `100 Continue`: the app is running the request."""
        self.reader, self.writer = await asyncio.open_connection(self.server.host, self.server.port)
        head = [
            f"POST {self.path} HTTP/1.1", f"Host: {self.server.host}:{self.server.port}",
            "Content-Type: application/json", f"Content-Length: {len(self.body)}",
            "Expect: 100-continue",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await self.writer.drain()
        interim = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT_SECONDS)
        assert interim.startswith(b"HTTP/1.1 100 "), interim

    async def finish(self) -> tuple[int, dict[str, str], bytes]:
        """Send the body; read the whole answer up to the server closing the connection
        (a reset or a truncated body fails the test)."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.body)
        await self.writer.drain()
        raw = await asyncio.wait_for(self.reader.read(), WAIT_SECONDS)  # until EOF
        self.writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        assert len(body) == int(headers["content-length"]), raw
        return int(status_line.split()[1]), headers, body

    async def abandon(self) -> bytes:
        """Never send the body; what the server sends before closing."""
        assert self.reader is not None and self.writer is not None
        try:
            return await asyncio.wait_for(self.reader.read(), WAIT_SECONDS)
        except ConnectionError:
            return b""
        finally:
            self.writer.close()


def refused(server: Server) -> bool:
    import socket

    try:
        socket.create_connection((server.host, server.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_finishes_requests_in_flight_then_exits_0(
    database_url: str, client: httpx.AsyncClient, world: World, tmp_path: Path, workers: int
):
    server = Server(
        database_url, jwt_secret=JWT_SECRET, workers=workers, log_path=tmp_path / "server.log",
        env={"RECEIVABLES_WEBHOOK_ALLOW_INSECURE": "true"},
    )
    await server.astart()
    try:
        headers = server.headers(world.bank)
        async with httpx.AsyncClient(base_url=server.base_url) as http:  # served before
            assert (await http.get("/webhooks", headers=headers)).status_code == 200
        held = [
            HeldRequest(
                server, "/webhooks", {"url": f"http://127.0.0.1:9/hook-{n}", "events": ["*"]},
                headers,
            )
            for n in range(3)
        ]
        await asyncio.gather(*(request.start() for request in held))

        server.process.send_signal(signal.SIGTERM)
        await wait_for(
            lambda: server.log_messages().count("Shutting down") == workers,
            "every server process to start shutting down", server,
        )
        if workers == 1:  # the listening socket is closed: nothing new gets in
            await wait_for(lambda: refused(server), "new connections to be refused", server)

        answers = await asyncio.gather(*(request.finish() for request in held))
        for status, answer_headers, body in answers:
            assert status == 201, body
            assert answer_headers["connection"] == "close"
            assert json.loads(body)["url"].startswith("http://127.0.0.1:9/hook-")
        assert await server.wait_exit() == 0, server.log_tail()
        assert server.log_messages().count("Application shutdown complete.") == workers
    finally:
        server.stop()
    # What they answered was committed.
    listed = await ok(await client.get("/webhooks", headers=world.bank.headers))
    assert sorted(item["url"] for item in listed["items"]) == [
        f"http://127.0.0.1:9/hook-{n}" for n in range(3)
    ]


async def test_a_request_outlasting_the_grace_period_is_cancelled(
    database_url: str, world: World, tmp_path: Path
):
    server = Server(
        database_url, jwt_secret=JWT_SECRET, workers=1, log_path=tmp_path / "server.log",
        env={"RECEIVABLES_SHUTDOWN_GRACE_SECONDS": "1"},
    )
    await server.astart()
    try:
        stuck = HeldRequest(server, "/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["*"]},
                            server.headers(world.bank))
        await stuck.start()
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        await stuck.abandon()
        assert await server.wait_exit() == 0, server.log_tail()
        # Not the 30 s default: the setting reached uvicorn.
        assert time.monotonic() - signalled < 20
        assert any("timeout graceful shutdown exceeded" in m for m in server.log_messages())
    finally:
        server.stop()


# ---------------------------------------------------------------- the worker


class HeldReceiver:
    """A webhook receiver on 127.0.0.1 that holds every answer until `release` is set."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.received: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append(self.headers["X-Event-Id"])
                outer.arrived.set()
                outer.release.wait(WAIT_SECONDS)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, webhook_allow_insecure=True)


@pytest.fixture
def held_receiver() -> Iterator[HeldReceiver]:
    receiver = HeldReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()


async def test_worker_finishes_its_batch_on_sigterm_then_stops(
    database_url: str, client: httpx.AsyncClient, world: World, clock, tmp_path: Path,
    held_receiver: HeldReceiver,
):
    hook = await subscribe(client, world.bank, held_receiver.url)
    _, listing = await listed_receivable(client, world, clock)
    await bid(client, world.bank, listing["id"], "0.0600")
    heartbeat = tmp_path / "worker.heartbeat"
    env = server_env(
        database_url, JWT_SECRET,
        RECEIVABLES_SIMULATED_CLOCK="true",
        RECEIVABLES_WORKER_NOW=(clock.now() + dt.timedelta(minutes=1)).isoformat(),
        RECEIVABLES_WORKER_POLL_SECONDS="0.2",
        RECEIVABLES_WORKER_HEARTBEAT_FILE=str(heartbeat),
        RECEIVABLES_WEBHOOK_ALLOW_INSECURE="true",
    )
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [RECEIVABLES, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def logged(fragment: str) -> bool:
        return fragment in log_path.read_text(errors="replace")

    try:
        # The worker is inside its delivery batch, its transaction open, waiting for us.
        arrived = await asyncio.to_thread(held_receiver.arrived.wait, WAIT_SECONDS)
        assert arrived, log_path.read_text()
        assert heartbeat.exists() and time.time() - heartbeat.stat().st_mtime < WAIT_SECONDS
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WAIT_SECONDS
        while not logged("SIGTERM received: finishing the current batch"):
            assert process.poll() is None, log_path.read_text()  # died mid-batch
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.05)
        held_receiver.release.set()
        returncode = await asyncio.to_thread(process.wait, WAIT_SECONDS)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert returncode == 0, log_path.read_text()
    assert logged("worker stopped")
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    # The batch committed: every delivery it sent is recorded as delivered, once.
    log_rows = await deliveries(client, world.bank, hook["id"])
    assert len(log_rows) >= 2
    assert {row["status"] for row in log_rows} == {"delivered"}
    assert sorted(held_receiver.received) == sorted(row["event_id"] for row in log_rows)
