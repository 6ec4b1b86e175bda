"""The client's machinery without a server (httpx.MockTransport): one Idempotency-Key
per POST, reused by its retries; retries only where safe; one token renewal on a 401;
problem+json as ApiError; cursor iteration; values encoded as the API expects."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from receivables.client import ApiError, Client


def _client(handler, **options) -> Client:
    options.setdefault("token", "t0")
    return Client(
        "http://api.test", transport=httpx.MockTransport(handler), sleep=lambda _: None, **options
    )


def _problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"type": "x", "title": code, "status": status, "detail": f"because {code}", "code": code}
    return httpx.Response(
        status, json=body, headers={"Content-Type": "application/problem+json", **headers}
    )


def test_a_post_keeps_its_idempotency_key_across_retries() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ReadTimeout("lost answer", request=request)
        if len(seen) == 2:
            return _problem(503, "commit_failed", **{"Retry-After": "1"})
        return httpx.Response(201, json={"id": "b1", "status": "active"})

    client = _client(handler)
    assert client.place_bid("L1", discount_rate=Decimal("0.0450")) == {
        "id": "b1",
        "status": "active",
    }
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(seen) == 3 and len(keys) == 1
    assert json.loads(seen[0].content) == {"discount_rate": "0.0450"}
    client.place_bid("L1", discount_rate="0.0450")
    assert seen[-1].headers["Idempotency-Key"] not in keys  # a new call, a new key
    client.place_bid("L1", discount_rate="0.0450", idempotency_key="my-key-1")
    assert seen[-1].headers["Idempotency-Key"] == "my-key-1"


def test_a_patch_is_not_retried_after_an_ambiguous_failure() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("lost", request=request)

    with pytest.raises(httpx.ReadTimeout):
        _client(handler).revise_bid("B1", discount_rate="0.04")
    assert len(calls) == 1


def test_gets_are_retried_and_give_up() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return _problem(503, "unavailable")

    with pytest.raises(ApiError) as error:
        _client(handler, retries_max=2).get_deal("D1")
    assert (error.value.status, len(calls)) == (503, 3)


def test_a_refused_token_is_renewed_once_by_refresh_then_by_login() -> None:
    log: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        log.append(
            f"{request.method} {request.url.path} {request.headers.get('Authorization', '')}"
        )
        if request.url.path == "/auth/refresh":
            return _problem(401, "not_authenticated")
        if request.url.path == "/auth/token":
            form = dict(x.split("=") for x in request.content.decode().split("&"))
            assert form == {
                "grant_type": "client_credentials",
                "client_id": "c1",
                "client_secret": "s1",
            }
            return httpx.Response(
                200, json={"access_token": "t2", "token_type": "bearer", "expires_in": 900}
            )
        if request.headers["Authorization"] != "Bearer t2":
            return _problem(401, "not_authenticated")
        return httpx.Response(200, json={"role": "bank"})

    client = _client(handler, refresh_token="r1", client_id="c1", client_secret="s1")
    assert client.me() == {"role": "bank"}
    assert log == [
        "GET /me Bearer t0",
        "POST /auth/refresh ",
        "POST /auth/token ",
        "GET /me Bearer t2",
    ]
    assert client.me() == {"role": "bank"} and len(log) == 5


def test_a_token_about_to_expire_is_renewed_before_use() -> None:
    paths = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/auth/token":
            return httpx.Response(
                200, json={"access_token": f"t{len(paths)}", "expires_in": 10, "refresh_token": "r"}
            )
        if request.url.path == "/auth/refresh":
            return httpx.Response(
                200, json={"access_token": "fresh", "expires_in": 900, "refresh_token": "r2"}
            )
        return httpx.Response(200, json={"ok": request.headers["Authorization"]})

    client = Client.with_password(
        "http://api.test", "a@b.example", "pw", transport=httpx.MockTransport(handler)
    )
    assert client.me() == {"ok": "Bearer fresh"}  # 10 s left is within the 30 s margin
    assert paths == ["/auth/token", "/auth/refresh", "/me"]


def test_errors_and_pages() -> None:
    pages = {
        None: {"items": [1, 2], "next_cursor": "c2"},
        "c2": {"items": [3], "next_cursor": None},
    }
    asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/events":
            asked.append(dict(request.url.params))
            return httpx.Response(200, json=pages[request.url.params.get("cursor")])
        if request.url.path == "/deals/D1":
            return _problem(404, "not_found")
        return httpx.Response(502, text="<html>bad gateway</html>")

    client = _client(handler, retries_max=0)
    assert list(client.iter_events(after="e0")) == [1, 2, 3]
    assert asked == [{"limit": "200", "after": "e0"}, {"limit": "200", "cursor": "c2"}]
    with pytest.raises(ApiError) as error:
        client.get_deal("D1")
    assert (error.value.status, error.value.code, error.value.detail) == (
        404,
        "not_found",
        "because not_found",
    )
    with pytest.raises(ApiError) as error:
        client.get_listing("L1")
    assert (error.value.status, error.value.code) == (502, "http_502")


def test_values_are_encoded_as_the_api_expects() -> None:
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={})

    client = _client(handler)
    closes = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    client.create_listing(receivable_id="R1", max_discount_rate=Decimal("0.08"), closes_at=closes)
    assert bodies[-1] == {
        "receivable_id": "R1",
        "max_discount_rate": "0.08",
        "closes_at": "2026-03-02T10:00:00+00:00",
    }
    client.submit_receivable(
        debtor_id="D",
        invoice_number="I",
        face_value="1.00",
        issue_date=dt.date(2026, 1, 1),
        due_date="2026-06-01",
    )
    assert bodies[-1]["issue_date"] == "2026-01-01" and "currency" not in bodies[-1]
    with pytest.raises(ValueError):
        client.create_listing(
            receivable_id="R1", max_discount_rate="0.08", closes_at=dt.datetime(2026, 3, 2)
        )
    client.create_listing(
        receivable_id="R1", max_discount_rate="0.08", closes_at=closes, recourse=False,
        idempotency_key="k1",
    )
    assert bodies[-1]["recourse"] is False and "idempotency_key" not in bodies[-1]
    client.amend_receivable("R1", face_value=Decimal("2.50"))
    assert bodies[-1] == {"face_value": "2.50"}  # the id is in the path, not the body
