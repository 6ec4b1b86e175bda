"""Goal: no request body can set fields its model does not declare (mass assignment,
OWASP API3), every string a client sends has a declared maximum length, and no body
larger than the configured cap reaches a handler (OWASP API4).

Method: (1) walk every request body of the app's own OpenAPI document (so a new
endpoint is checked without anyone listing it) and assert `additionalProperties: false`
on every object and `maxLength` on every free-form string (uuid, date, date-time,
enums and constants are bounded by their format); arrays need `maxItems`, numbers a
`maximum`. (2) Send oversize bodies, with and without Content-Length, through the real
middleware stack and check the 413 and that nothing was written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from receivables.app import create_app
from receivables.config import Settings
from receivables.organizations.models import Organization
from tests.fixtures.world import World, new_credit_code

BOUNDED_STRING_FORMATS = {"uuid", "date", "date-time", "email"}
"""Formats whose parser bounds the length (pydantic refuses anything that is not one);
`email` additionally carries maxLength wherever it is declared here."""

KNOWN_VIOLATIONS: dict[str, str] = {}
"""Request fields allowed to lack a declared bound, each with the reason: none today."""


def _document() -> dict[str, Any]:
    app = create_app(Settings(jwt_secret="input-limits-" + "x" * 40))
    return app.openapi()


DOCUMENT = _document()
SCHEMAS = DOCUMENT["components"]["schemas"]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _violations(schema: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """(location, problem) for every unbounded part of `schema`."""
    schema = _resolve(schema)
    found: list[tuple[str, str]] = []
    for combinator in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(combinator, []):
            found += _violations(option, where)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            found.append((where or ".", "object without additionalProperties: false"))
        for name, sub in schema.get("properties", {}).items():
            found += _violations(sub, f"{where}.{name}")
    elif kind == "string":
        bounded = (
            "maxLength" in schema
            or "enum" in schema
            or "const" in schema
            or schema.get("format") in BOUNDED_STRING_FORMATS
        )
        if not bounded:
            found.append((where, "string without maxLength"))
    elif kind == "array":
        if "maxItems" not in schema:
            found.append((where, "array without maxItems"))
        found += _violations(schema.get("items", {}), f"{where}[]")
    elif kind in ("integer", "number"):
        if "maximum" not in schema and "exclusiveMaximum" not in schema:
            found.append((where, "number without maximum"))
    return found


def _bodies() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            for media_type, content in (body or {}).get("content", {}).items():
                found.append((f"{method.upper()} {path}", media_type, content["schema"]))
    return found


BODIES = _bodies()


def _cases() -> list[Any]:
    cases = []
    for operation, media_type, schema in BODIES:
        problems = _violations(schema, "")
        for location, problem in problems or [("", "")]:
            key = f"{operation} {location}".rstrip()
            marks = []
            if key in KNOWN_VIOLATIONS:
                marks.append(pytest.mark.xfail(reason=KNOWN_VIOLATIONS[key], strict=False))
            cases.append(pytest.param(operation, media_type, location, problem, id=key, marks=marks))
    return cases


def test_the_walk_sees_every_body() -> None:
    """Guards the walk itself: it found the JSON and form bodies we know of."""
    operations = {operation for operation, _, _ in BODIES}
    assert {"POST /auth/token", "POST /auth/refresh", "POST /receivables",
            "POST /organizations/{organization_id}/api-clients"} <= operations
    assert len(BODIES) >= 12


@pytest.mark.parametrize("operation,media_type,location,problem", _cases())
def test_request_body_is_closed_and_bounded(operation, media_type, location, problem) -> None:
    assert not problem, f"{operation} ({media_type}) {location}: {problem}"


def test_known_violations_are_still_real() -> None:
    """Each entry above names a violation the walk still finds (or was fixed: then the
    entry must go, and this test says which)."""
    live = {
        f"{operation} {location}".rstrip()
        for operation, _, schema in BODIES
        for location, _ in _violations(schema, "")
    }
    stale = sorted(set(KNOWN_VIOLATIONS) - live)
    assert not stale, f"fixed, remove from KNOWN_VIOLATIONS: {stale}"


# ---------------------------------------------------------------------- body size cap


async def _chunks(total: int, size: int = 4096) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b" " * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "request_too_large"


async def organization_count(app) -> int:
    async with app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Organization))).scalar_one()


class TestBodySizeLimit:
    async def test_declared_length_over_the_cap_is_413_before_reading(self, app, client, world: World):
        cap = app.state.settings.request_body_bytes_max
        before = await organization_count(app)
        body = {"name": "x" * cap, "kind": "sme", "credit_code": new_credit_code()}
        response = await client.post("/organizations", json=body, headers=world.operator.headers)
        assert_too_large(response)
        assert await organization_count(app) == before

    async def test_streamed_body_without_length_over_the_cap_is_413(self, app, client, world: World):
        cap = app.state.settings.request_body_bytes_max
        before = await organization_count(app)
        headers = {**world.operator.headers, "content-type": "application/json"}
        response = await client.post("/organizations", content=_chunks(cap + 1), headers=headers)
        assert "content-length" not in response.request.headers
        assert_too_large(response)
        assert await organization_count(app) == before

    async def test_streamed_form_over_the_cap_is_413(self, app, client):
        cap = app.state.settings.request_body_bytes_max
        headers = {"content-type": "application/x-www-form-urlencoded"}
        response = await client.post("/auth/token", content=_chunks(cap * 3), headers=headers)
        assert_too_large(response)

    async def test_multipart_over_the_cap_is_413(self, app, client):
        cap = app.state.settings.request_body_bytes_max
        response = await client.post("/auth/token", files={"f": ("a.bin", b"\0" * (cap + 1))})
        assert_too_large(response)

    async def test_streamed_body_within_the_cap_reaches_the_handler(self, app, client, world: World):
        body = json.dumps({"name": "Streamed Ltd", "kind": "sme", "credit_code": new_credit_code()})

        async def one_chunk() -> AsyncIterator[bytes]:
            yield body.encode()

        headers = {**world.operator.headers, "content-type": "application/json"}
        response = await client.post("/organizations", content=one_chunk(), headers=headers)
        assert response.status_code == 201, response.text

    async def test_exactly_the_cap_is_allowed(self, app, client):
        cap = app.state.settings.request_body_bytes_max
        padded = b'{"refresh_token": "x"}'.ljust(cap, b" ")
        response = await client.post(
            "/auth/refresh", content=padded, headers={"content-type": "application/json"}
        )
        assert response.status_code == 401  # parsed and refused as a token, not as a size

    async def test_the_cap_is_a_setting(self, database_url, clock):
        from tests.conftest import make_settings

        small = create_app(make_settings(database_url, request_body_bytes_max=2048), clock=clock)
        async with small.router.lifespan_context(small):
            transport = httpx.ASGITransport(app=small)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.post("/auth/refresh", content=b"x" * 2049)
        assert_too_large(response)

    async def test_many_form_fields_are_refused_cleanly(self, client):
        crowded = b"&".join(b"f%d=1" % i for i in range(5000))
        assert len(crowded) < 65_536
        response = await client.post(
            "/auth/token", content=crowded,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
