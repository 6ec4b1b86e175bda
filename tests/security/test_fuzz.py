"""Goal: no input makes the API answer 5xx, and every answer matches the committed
OpenAPI document (status code declared, body conforming to its schema).

Method: schemathesis generates requests from `openapi/openapi.json` (the committed
document, which tests/test_openapi.py keeps equal to what the app serves) for every
operation, valid (positive) and invalid (negative) ones, and sends each one through the
live ASGI app and its whole middleware stack, anonymously and authenticated as each
role (sme, core, bank, regulator, operator).
Path ids are real objects (a listed receivable, its listing, a bid, a deal, the
caller's organization, an API client), so the fuzzed bodies reach the services instead
of stopping at 404. Examples are bounded and derandomized (same cases every run), so
the module takes well under a minute per database.

schemathesis drives hypothesis synchronously, so the app runs on an event loop of this
module's own, built once per database for all operations (a module fixture).
"""

from __future__ import annotations

import asyncio
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from receivables.app import create_app
from receivables.config import async_database_url
from receivables.kit.clock import SimulatedClock
from tests.conftest import CLOCK_START, make_settings
from tests.fixtures.databases import truncate_statement
from tests.fixtures.flows import submit_receivable
from tests.fixtures.market import award, bid, listed_receivable, ok
from tests.fixtures.world import World, build_world, new_credit_code

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
EXAMPLES_PER_CALLER = 3
"""Per operation, generation mode and caller: 40 operations x 2 modes x 6 callers x 3
is ~1,500 requests per database (~20 s on SQLite, a little more on PostgreSQL)."""
ROLES = ("sme", "core", "bank", "regulator", "operator")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

KNOWN_FAILURES: dict[tuple[str, str], str] = {}
"""Operations failing in code other sessions own: each an xfail (strict=False) for its
operation only, so every other operation stays checked. Empty now; see below."""

KNOWN_BUG_HEADERS: dict[tuple[str, str], tuple[str, str]] = {}
"""A header that triggers a known bug in another domain is left out of that operation's
fuzzing (so the rest of it stays covered); `test_known_bug_*` reproduces the bug."""

SCHEMA = schemathesis.openapi.from_path(str(COMMITTED))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def _param(operation) -> Any:
    key = (operation.method.upper(), operation.path)
    marks = [pytest.mark.xfail(reason=KNOWN_FAILURES[key], strict=False)] if key in KNOWN_FAILURES else []
    return pytest.param(operation, id=f"{key[0]} {key[1]}", marks=marks)


# ---------------------------------------------------------------------- the target


@dataclass
class Target:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    world: World
    ids: dict[str, str] = field(default_factory=dict)
    """Real objects by path parameter name."""
    victim_organization_id: str = ""
    """What /suspend gets, so the world's own organizations stay active."""

    def send(self, request: dict[str, Any]) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(**request))


async def _real_objects(app, client: httpx.AsyncClient, world: World) -> tuple[dict[str, str], str]:
    clock = app.state.clock
    receivable, listing = await listed_receivable(client, world, clock)
    placed = await bid(client, world.bank, listing["id"], "0.0450")
    _, other_listing = await listed_receivable(client, world, clock)
    other_bid = await bid(client, world.bank, other_listing["id"], "0.0400")
    deal = await award(client, world.sme, other_listing["id"], other_bid["id"])
    await submit_receivable(client, world.sme, world.core)
    created = await ok(await client.post(
        f"/organizations/{world.bank.organization_id}/api-clients", headers=world.bank.headers), 201)
    victim = await ok(await client.post(
        "/organizations", json={"name": "Fuzz Victim", "kind": "sme", "credit_code": new_credit_code()},
        headers=world.operator.headers), 201)
    ids = {
        "receivable_id": receivable["id"],
        "listing_id": listing["id"],
        "bid_id": placed["id"],
        "deal_id": deal["id"],
        "organization_id": str(world.bank.organization_id),
        "client_id": created["client_id"],
    }
    return ids, victim["id"]


def _database_url(backend: str, request: pytest.FixtureRequest, directory: Path) -> str:
    if backend == "sqlite":
        path = directory / "fuzz.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template_path"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")

    async def truncate() -> None:
        engine = create_async_engine(async_database_url(url))
        async with engine.begin() as connection:
            await connection.execute(text(truncate_statement()))
        await engine.dispose()

    asyncio.run(truncate())
    return url


@pytest.fixture(scope="module")
def target(backend: str, request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Target]:
    database_url = _database_url(backend, request, tmp_path_factory.mktemp("fuzz"))
    app = create_app(make_settings(database_url), clock=SimulatedClock(CLOCK_START))
    loop = asyncio.new_event_loop()
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    # raise_app_exceptions=False: an unhandled error must come back as the 500 a client
    # would see, so the checks judge it like any other answer.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    try:
        world = loop.run_until_complete(build_world(app, client))
        ids, victim = loop.run_until_complete(_real_objects(app, client, world))
        yield Target(loop, client, world, ids, victim)
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()


# ---------------------------------------------------------------------- one operation


def _httpx_request(case, headers: dict[str, str]) -> dict[str, Any]:
    """schemathesis speaks `requests`; translate its keyword arguments for httpx."""
    request = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    request.pop("cookies", None)
    # Negative cases put non-ASCII text in headers; send it as UTF-8 bytes, as an
    # attacker's client would (httpx refuses non-ASCII str header values).
    request["headers"] = {
        name: value.encode("utf-8") if isinstance(value, str) else value
        for name, value in request.get("headers", {}).items()
    }
    data = request.pop("data", None)
    if isinstance(data, (bytes, str)):
        request["content"] = data
    elif data is not None:
        request["data"] = {key: str(value) for key, value in data.items()}
    return request


def _path_parameters(target: Target, operation) -> dict[str, str] | None:
    names = [p.name for p in operation.path_parameters]
    if not names or any(name not in target.ids for name in names):
        return None
    chosen = {name: target.ids[name] for name in names}
    if operation.path.endswith("/suspend"):
        chosen["organization_id"] = target.victim_organization_id
    return chosen


def _without_known_bug_headers(operation, request: dict[str, Any]) -> dict[str, Any]:
    dropped = KNOWN_BUG_HEADERS.get((operation.method.upper(), operation.path))
    if dropped is not None:
        request["headers"] = {k: v for k, v in request["headers"].items() if k.lower() != dropped[0]}
    return request


def _fuzz(target: Target, operation, mode: GenerationMode, headers: dict[str, str]) -> list[str]:
    failures: list[str] = []
    strategy = operation.as_strategy(
        generation_mode=mode, path_parameters=_path_parameters(target, operation)
    )

    @hypothesis_settings(
        max_examples=EXAMPLES_PER_CALLER,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        response = target.send(_without_known_bug_headers(operation, _httpx_request(case, headers)))
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis FailureGroup
            failures.append(f"{mode.value}: {failure}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing to negate (an operation without parameters or body)
    return failures


@pytest.mark.parametrize("operation", [_param(op) for op in OPERATIONS])
def test_operation_never_fails_and_conforms(target: Target, operation) -> None:
    callers: list[dict[str, str]] = [{}] + [getattr(target.world, r).headers for r in ROLES]
    failures: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for headers in callers:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failures += _fuzz(target, operation, mode, headers)
    assert not failures, "\n\n".join(failures[:5])


def test_every_served_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 35
    assert {(op.method.upper(), op.path) for op in OPERATIONS} >= {
        ("POST", "/auth/token"), ("POST", "/receivables"), ("POST", "/deals/{deal_id}/fund"),
    }


def test_form_post_with_bearer_and_idempotency_key(target: Target) -> None:
    """Regression: the idempotency gate once re-read a form body FastAPI had consumed."""
    headers = {**target.world.bank.headers, "Idempotency-Key": "fuzz-known-bug-1"}
    response = target.send({
        "method": "POST", "url": "http://testserver/auth/token", "headers": headers,
        "data": {"grant_type": "password", "username": "nobody@example.test", "password": "x"},
    })
    assert response.status_code < 500, response.text


def test_the_world_survived_the_run(target: Target) -> None:
    """Runs last in this module: the fuzzed tokens were real all along (had the database
    been reset under the module, every call would have been a trivially valid 401)."""
    response = target.send({"method": "GET", "url": "http://testserver/me",
                            "headers": target.world.bank.headers})
    assert response.status_code == 200, response.text
