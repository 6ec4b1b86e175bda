"""A real HTTP receiver on 127.0.0.1 for webhook tests: a `ThreadingHTTPServer` in a
daemon thread that records every request and answers from a per-path script (a list of
status codes consumed one per request; 200 once it is empty)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from receivables.config import Settings
from tests.conftest import make_settings


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["x-event-id"]


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[int | tuple[int, bytes]]] = field(default_factory=dict)
    answer_body: bytes = b'{"ok": true}'
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "/hooks") -> str:
        return self.base_url + path

    def answer(self, path: str, *statuses: int | tuple[int, bytes]) -> None:
        """The next requests to `path` get these statuses (or (status, body)), in order."""
        with self.lock:
            self.script.setdefault(path, []).extend(statuses)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def _next_answer(self, path: str) -> tuple[int, bytes]:
        with self.lock:
            queue = self.script.get(path) or []
            step = queue.pop(0) if queue else 200
        return step if isinstance(step, tuple) else (step, self.answer_body)


def _handler(receiver_box: list[Receiver]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = receiver_box[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                receiver.requests.append(Received(self.path, headers, body))
            status, answer = receiver._next_answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 64
    daemon_threads = True


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []
    server = _Server(("127.0.0.1", 0), _handler(box))
    receiver = Receiver(server)
    box.append(receiver)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a loopback port, for this test only."""
    with running_receiver() as running:
        yield running


@pytest.fixture(name="settings")
def loopback_webhook_settings(database_url: str) -> Settings:
    """The app's settings with RECEIVABLES_WEBHOOK_ALLOW_INSECURE=true: http and loopback
    receivers such as `receiver` are accepted."""
    return make_settings(database_url, webhook_allow_insecure=True)
