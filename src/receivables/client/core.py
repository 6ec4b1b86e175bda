"""The client's machinery: one httpx connection pool, tokens (refreshed before they
expire, renewed once on a 401), an Idempotency-Key on every POST that survives the
client's own retries, retries of what is safe to retry, and cursor iteration."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Self, TypeVar

import httpx

from receivables.client.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])

TIMEOUT_SECONDS_DEFAULT = 10.0
RETRIES_MAX_DEFAULT = 3
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_SECONDS_MAX = 8.0
TOKEN_RENEW_MARGIN_SECONDS = 30
"""Renew an access token this long before it expires, not after a 401."""
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
RETRYABLE_CODES = frozenset({"idempotency_key_in_flight", "commit_failed"})
USER_AGENT = "receivables-python-client/1"


def route(method: str, path: str) -> Callable[[F], F]:
    """Mark a client method as the one for `method path` (the coverage test walks the
    OpenAPI document and finds one for every operation)."""

    def mark(function: F) -> F:
        function.__route__ = (method, path)  # type: ignore[attr-defined]
        return function

    return mark


def encode(value: Any) -> Any:
    """Python values to the API's JSON: ids and decimals as strings, dates ISO, instants
    RFC 3339 (a naive datetime is refused: its time zone would be a guess)."""
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes sent to the API must carry a time zone")
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def compact(**fields: Any) -> dict[str, Any]:
    """The given fields without the ones left at None, encoded."""
    return {k: encode(v) for k, v in fields.items() if v is not None}


class Credentials:
    """How to get a new token when the current one cannot be refreshed."""

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if (client_id is None) != (client_secret is None) or (username is None) != (
            password is None
        ):
            raise ValueError("give client_id with client_secret, and username with password")
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password

    @property
    def form(self) -> dict[str, str] | None:
        if self.client_id is not None and self.client_secret is not None:
            return {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        if self.username is not None and self.password is not None:
            return {"grant_type": "password", "username": self.username, "password": self.password}
        return None


class BaseClient:
    """Connection, authentication and retries; `Client` adds one method per endpoint."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float | httpx.Timeout = TIMEOUT_SECONDS_DEFAULT,
        retries_max: int = RETRIES_MAX_DEFAULT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self._credentials = Credentials(
            client_id=client_id, client_secret=client_secret, username=username, password=password
        )
        self._access_token = token
        self._refresh_token = refresh_token
        self._expires_at: float | None = None
        self._lock = threading.Lock()
        self.retries_max = retries_max
        self._sleep = sleep

    # --------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    @property
    def access_token(self) -> str | None:
        return self._access_token

    # --------------------------------------------------------------- tokens
    def _store(self, token: dict[str, Any]) -> dict[str, Any]:
        self._access_token = token["access_token"]
        self._refresh_token = token.get("refresh_token") or None
        expires_in = token.get("expires_in")
        self._expires_at = time.monotonic() + float(expires_in) if expires_in else None
        return token

    def authenticate(self) -> dict[str, Any]:
        """Log in with the stored credentials (client credentials or password)."""
        form = self._credentials.form
        if form is None:
            raise ApiError(
                401,
                "not_authenticated",
                "No credentials",
                "the token expired and the client holds no credentials to log in again",
            )
        response = self._send("POST", "/auth/token", data=form, authenticated=False)
        return self._store(self._json(response))

    def _renew(self, stale: str | None) -> None:
        """A new access token: by refresh token if we have one, else by logging in.
        `stale` is the token that failed: another thread may have renewed it already."""
        with self._lock:
            if stale is not None and self._access_token != stale:
                return
            if self._refresh_token is not None:
                refresh, self._refresh_token = self._refresh_token, None  # single use
                response = self._send(
                    "POST",
                    "/auth/refresh",
                    json={"refresh_token": refresh},
                    authenticated=False,
                    retry=False,
                )
                if response.status_code == 200:
                    self._store(response.json())
                    return
            self.authenticate()

    def _current_token(self) -> str:
        expiring = (
            self._expires_at is not None
            and time.monotonic() > self._expires_at - TOKEN_RENEW_MARGIN_SECONDS
        )
        if self._access_token is None or expiring:
            self._renew(self._access_token)
        assert self._access_token is not None
        return self._access_token

    # --------------------------------------------------------------- requests
    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after is not None:
            try:
                return min(float(retry_after), BACKOFF_SECONDS_MAX)
            except ValueError:
                pass
        delay = min(BACKOFF_BASE_SECONDS * 2**attempt, BACKOFF_SECONDS_MAX)
        return delay * (0.5 + random.random() / 2)

    @staticmethod
    def _retryable(method: str, has_key: bool, error: Exception | None) -> bool:
        """GET and DELETE are idempotent, a POST carries its Idempotency-Key; anything
        else only if the request provably never left (the connection failed)."""
        if method in ("GET", "DELETE", "HEAD") or (method == "POST" and has_key):
            return True
        return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)

    @staticmethod
    def _code(response: httpx.Response) -> str | None:
        try:
            body = response.json()
        except ValueError:
            return None
        return body.get("code") if isinstance(body, dict) else None

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        authenticated: bool = True,
        idempotency_key: str | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        """One logical call: the same Idempotency-Key on every retry of a POST, one token
        renewal on a 401, backoff (honouring Retry-After) on 429/502/503/504."""
        if method == "POST" and authenticated and idempotency_key is None:
            idempotency_key = str(uuid.uuid4())
        renewed = False
        attempt = 0
        while True:
            headers = {}
            token = None
            if authenticated:
                token = self._current_token()
                headers["Authorization"] = f"Bearer {token}"
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
            query = {k: encode(v) for k, v in (params or {}).items() if v is not None}
            try:
                response = self._http.request(
                    method, path, json=json, params=query, data=data, headers=headers
                )
            except httpx.TransportError as exc:
                if not (
                    retry
                    and attempt < self.retries_max
                    and self._retryable(method, idempotency_key is not None, exc)
                ):
                    raise
                self._sleep(self._backoff(attempt, None))
                attempt += 1
                continue
            can_renew = self._credentials.form is not None or self._refresh_token is not None
            if response.status_code == 401 and authenticated and not renewed and can_renew:
                renewed = True
                self._renew(token)
                continue
            transient = response.status_code in RETRYABLE_STATUSES or (
                response.status_code in (409, 503) and self._code(response) in RETRYABLE_CODES
            )
            if (
                transient
                and retry
                and attempt < self.retries_max
                and self._retryable(method, idempotency_key is not None, None)
            ):
                self._sleep(self._backoff(attempt, response))
                attempt += 1
                continue
            return response

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Any call, authenticated: the parsed JSON answer, or ApiError."""
        return self._json(
            self._send(method, path, json=json, params=params, idempotency_key=idempotency_key)
        )

    def _iterate(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        first: dict[str, Any] | None = None,
    ) -> Iterator[Any]:
        """Every item of a paginated list, following `next_cursor` page after page.
        `first` holds parameters for the first page only (the events feed's `after`)."""
        cursor: str | None = None
        while True:
            query = dict(params or {})
            query.update((first or {}) if cursor is None else {"cursor": cursor})
            page = self.request("GET", path, params=query)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return
