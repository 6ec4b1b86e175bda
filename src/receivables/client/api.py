"""`Client`: one method per API operation, named for what it does, with the body fields
as keyword arguments. Lists come two ways: `list_x(...)` returns one page
(`{"items", "next_cursor"}`), `iter_x(...)` yields every item across pages."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

from receivables.client import types as t
from receivables.client.core import BaseClient, compact, route

Id = str | uuid.UUID
Money = str | Decimal
"""A decimal amount with at most two places: "1000000.00"."""
Rate = str | Decimal
"""An annual rate as a decimal fraction: "0.0450" is 4.5 %."""
Day = dt.date | str
Instant = dt.datetime | str

NOT_IN_BODY = frozenset({"self", "idempotency_key"})


def request_body(arguments: dict[str, Any], *in_path: str) -> dict[str, Any]:
    """A method's JSON body from its arguments (`locals()` as its first statement): every
    one but `self`, the Idempotency-Key and the ids in the path, None left out, encoded.
    The fields are then named once, in the signature, where their types are."""
    skipped = NOT_IN_BODY.union(in_path)
    return compact(**{k: v for k, v in arguments.items() if k not in skipped})


class Client(BaseClient):
    """A typed client for the receivables marketplace API.

    >>> client = Client.with_client_credentials("https://api.example", "<id>", "<secret>")
    >>> for listing in client.iter_listings(status="open"): ...
    """

    @classmethod
    def with_client_credentials(
        cls, base_url: str, client_id: str, client_secret: str, **options: Any
    ) -> Client:
        """An API client (machine to machine): logs in now and again whenever needed."""
        client = cls(base_url, client_id=client_id, client_secret=client_secret, **options)
        client.authenticate()
        return client

    @classmethod
    def with_password(cls, base_url: str, email: str, password: str, **options: Any) -> Client:
        """A user: logs in now; refreshes with the refresh token, else logs in again."""
        client = cls(base_url, username=email, password=password, **options)
        client.authenticate()
        return client

    # ------------------------------------------------------------------ auth
    @route("POST", "/auth/token")
    def login(self) -> t.Token:
        """Get a new token pair with the stored credentials (done for you when needed)."""
        return cast(t.Token, self.authenticate())

    @route("POST", "/auth/refresh")
    def refresh(self, refresh_token: str | None = None) -> t.Token:
        """Exchange a refresh token (default: the one held) for a new pair. Single use."""
        token = refresh_token or self._refresh_token
        response = self._send(
            "POST", "/auth/refresh", json={"refresh_token": token}, authenticated=False, retry=False
        )
        return cast(t.Token, self._store(self._json(response)))

    @route("GET", "/me")
    def me(self) -> t.Me:
        return self.request("GET", "/me")

    # ------------------------------------------------------------------ organizations
    @route("POST", "/organizations")
    def create_organization(
        self,
        *,
        name: str,
        kind: str,
        credit_code: str,
        size: str | None = None,
        sector: str | None = None,
        idempotency_key: str | None = None,
    ) -> t.Organization:
        fields = request_body(locals())
        return self.request("POST", "/organizations", json=fields, idempotency_key=idempotency_key)

    @route("GET", "/organizations")
    def list_organizations(
        self, *, kind: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> t.Page[t.Organization]:
        return self.request(
            "GET", "/organizations", params={"kind": kind, "limit": limit, "cursor": cursor}
        )

    def iter_organizations(self, *, kind: str | None = None) -> Iterator[t.Organization]:
        return self._iterate("/organizations", {"kind": kind, "limit": 200})

    @route("GET", "/organizations/{organization_id}")
    def get_organization(self, organization_id: Id) -> t.Organization:
        return self.request("GET", f"/organizations/{organization_id}")

    @route("POST", "/organizations/{organization_id}/suspend")
    def suspend_organization(
        self, organization_id: Id, *, idempotency_key: str | None = None
    ) -> t.Organization:
        return self.request(
            "POST", f"/organizations/{organization_id}/suspend", idempotency_key=idempotency_key
        )

    @route("POST", "/organizations/{organization_id}/users")
    def create_user(
        self, organization_id: Id, *, email: str, password: str, idempotency_key: str | None = None
    ) -> t.User:
        body = {"email": email, "password": password}
        return self.request(
            "POST",
            f"/organizations/{organization_id}/users",
            json=body,
            idempotency_key=idempotency_key,
        )

    @route("POST", "/organizations/{organization_id}/api-clients")
    def create_api_client(
        self, organization_id: Id, *, name: str | None = None, idempotency_key: str | None = None
    ) -> t.ApiClientCreated:
        """Client credentials for machine-to-machine access; the secret is shown once."""
        return self.request(
            "POST",
            f"/organizations/{organization_id}/api-clients",
            json=compact(name=name),
            idempotency_key=idempotency_key,
        )

    @route("GET", "/organizations/{organization_id}/api-clients")
    def list_api_clients(
        self, organization_id: Id, *, limit: int | None = None, cursor: str | None = None
    ) -> t.Page[t.ApiClient]:
        return self.request(
            "GET",
            f"/organizations/{organization_id}/api-clients",
            params={"limit": limit, "cursor": cursor},
        )

    def iter_api_clients(self, organization_id: Id) -> Iterator[t.ApiClient]:
        return self._iterate(f"/organizations/{organization_id}/api-clients", {"limit": 200})

    @route("DELETE", "/organizations/{organization_id}/api-clients/{client_id}")
    def revoke_api_client(self, organization_id: Id, client_id: Id) -> None:
        self.request("DELETE", f"/organizations/{organization_id}/api-clients/{client_id}")

    @route("GET", "/organizations/{organization_id}/profile")
    def organization_profile(
        self,
        organization_id: Id,
        *,
        from_: Day | None = None,
        to: Day | None = None,
        currency: str | None = None,
    ) -> t.JSON:
        """A debtor's track record (confirmations, on-time rate, overdue amount)."""
        params = {"from": from_, "to": to, "currency": currency}
        return self.request("GET", f"/organizations/{organization_id}/profile", params=params)

    # ------------------------------------------------------------------ receivables
    @route("POST", "/receivables")
    def submit_receivable(
        self,
        *,
        debtor_id: Id,
        invoice_number: str,
        face_value: Money,
        issue_date: Day,
        due_date: Day,
        currency: str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> t.Receivable:
        fields = request_body(locals())
        return self.request("POST", "/receivables", json=fields, idempotency_key=idempotency_key)

    @route("GET", "/receivables")
    def list_receivables(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> t.Page[t.Receivable]:
        return self.request(
            "GET", "/receivables", params={"status": status, "limit": limit, "cursor": cursor}
        )

    def iter_receivables(self, *, status: str | None = None) -> Iterator[t.Receivable]:
        return self._iterate("/receivables", {"status": status, "limit": 200})

    @route("GET", "/receivables/{receivable_id}")
    def get_receivable(self, receivable_id: Id) -> t.Receivable:
        return self.request("GET", f"/receivables/{receivable_id}")

    @route("POST", "/receivables/{receivable_id}/confirm")
    def confirm_receivable(
        self,
        receivable_id: Id,
        *,
        amount: Money | None = None,
        due_date: Day | None = None,
        idempotency_key: str | None = None,
    ) -> t.Receivable:
        """As the debtor: confirm (the amount may only go down)."""
        body = compact(amount=amount, due_date=due_date)
        return self.request(
            "POST",
            f"/receivables/{receivable_id}/confirm",
            json=body,
            idempotency_key=idempotency_key,
        )

    @route("POST", "/receivables/{receivable_id}/dispute")
    def dispute_receivable(
        self, receivable_id: Id, *, reason: str, idempotency_key: str | None = None
    ) -> t.Receivable:
        return self.request(
            "POST",
            f"/receivables/{receivable_id}/dispute",
            json={"reason": reason},
            idempotency_key=idempotency_key,
        )

    @route("PATCH", "/receivables/{receivable_id}")
    def amend_receivable(
        self,
        receivable_id: Id,
        *,
        invoice_number: str | None = None,
        face_value: Money | None = None,
        issue_date: Day | None = None,
        due_date: Day | None = None,
        description: str | None = None,
    ) -> t.Receivable:
        """As the seller, while disputed: the corrected fields; it is submitted again."""
        fields = request_body(locals(), "receivable_id")
        return self.request("PATCH", f"/receivables/{receivable_id}", json=fields)

    @route("POST", "/receivables/{receivable_id}/cancel")
    def cancel_receivable(
        self, receivable_id: Id, *, idempotency_key: str | None = None
    ) -> t.Receivable:
        return self.request(
            "POST", f"/receivables/{receivable_id}/cancel", idempotency_key=idempotency_key
        )

    # ------------------------------------------------------------------ listings and bids
    @route("POST", "/listings")
    def create_listing(
        self,
        *,
        receivable_id: Id,
        max_discount_rate: Rate,
        closes_at: Instant,
        advance_ratio: Rate | None = None,
        recourse: bool | None = None,
        auto_award: bool | None = None,
        idempotency_key: str | None = None,
    ) -> t.Listing:
        fields = request_body(locals())
        return self.request("POST", "/listings", json=fields, idempotency_key=idempotency_key)

    @route("GET", "/listings")
    def list_listings(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> t.Page[t.Listing]:
        """Banks: the open market with `status="open"`."""
        return self.request(
            "GET", "/listings", params={"status": status, "limit": limit, "cursor": cursor}
        )

    def iter_listings(self, *, status: str | None = None) -> Iterator[t.Listing]:
        return self._iterate("/listings", {"status": status, "limit": 200})

    @route("GET", "/listings/{listing_id}")
    def get_listing(self, listing_id: Id) -> t.Listing:
        return self.request("GET", f"/listings/{listing_id}")

    @route("POST", "/listings/{listing_id}/cancel")
    def cancel_listing(self, listing_id: Id, *, idempotency_key: str | None = None) -> t.Listing:
        return self.request(
            "POST", f"/listings/{listing_id}/cancel", idempotency_key=idempotency_key
        )

    @route("POST", "/listings/{listing_id}/bids")
    def place_bid(
        self, listing_id: Id, *, discount_rate: Rate, idempotency_key: str | None = None
    ) -> t.Bid:
        """As a bank: a sealed bid; no other bank ever sees it."""
        body = {"discount_rate": str(discount_rate)}
        return self.request(
            "POST", f"/listings/{listing_id}/bids", json=body, idempotency_key=idempotency_key
        )

    @route("GET", "/listings/{listing_id}/bids")
    def list_bids(
        self, listing_id: Id, *, limit: int | None = None, cursor: str | None = None
    ) -> t.Page[t.Bid]:
        return self.request(
            "GET", f"/listings/{listing_id}/bids", params={"limit": limit, "cursor": cursor}
        )

    def iter_bids(self, listing_id: Id) -> Iterator[t.Bid]:
        return self._iterate(f"/listings/{listing_id}/bids", {"limit": 200})

    @route("POST", "/listings/{listing_id}/award")
    def award_listing(
        self, listing_id: Id, *, bid_id: Id, idempotency_key: str | None = None
    ) -> t.Deal:
        return self.request(
            "POST",
            f"/listings/{listing_id}/award",
            json={"bid_id": str(bid_id)},
            idempotency_key=idempotency_key,
        )

    @route("GET", "/bids/{bid_id}")
    def get_bid(self, bid_id: Id) -> t.Bid:
        return self.request("GET", f"/bids/{bid_id}")

    @route("PATCH", "/bids/{bid_id}")
    def revise_bid(self, bid_id: Id, *, discount_rate: Rate) -> t.Bid:
        return self.request("PATCH", f"/bids/{bid_id}", json={"discount_rate": str(discount_rate)})

    @route("POST", "/bids/{bid_id}/withdraw")
    def withdraw_bid(self, bid_id: Id, *, idempotency_key: str | None = None) -> t.Bid:
        return self.request("POST", f"/bids/{bid_id}/withdraw", idempotency_key=idempotency_key)

    # ------------------------------------------------------------------ deals and money
    @route("GET", "/deals")
    def list_deals(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> t.Page[t.Deal]:
        return self.request(
            "GET", "/deals", params={"status": status, "limit": limit, "cursor": cursor}
        )

    def iter_deals(self, *, status: str | None = None) -> Iterator[t.Deal]:
        return self._iterate("/deals", {"status": status, "limit": 200})

    @route("GET", "/deals/{deal_id}")
    def get_deal(self, deal_id: Id) -> t.Deal:
        return self.request("GET", f"/deals/{deal_id}")

    @route("POST", "/deals/{deal_id}/fund")
    def fund_deal(
        self,
        deal_id: Id,
        *,
        amount: Money,
        payment_reference: str,
        idempotency_key: str | None = None,
    ) -> t.Deal:
        """As the winning bank: pay `funding_amount` into escrow (for today's value date)."""
        body = compact(amount=amount, payment_reference=payment_reference)
        return self.request(
            "POST", f"/deals/{deal_id}/fund", json=body, idempotency_key=idempotency_key
        )

    @route("POST", "/deals/{deal_id}/repay")
    def repay_deal(
        self,
        deal_id: Id,
        *,
        amount: Money,
        payment_reference: str,
        idempotency_key: str | None = None,
    ) -> t.Deal:
        body = compact(amount=amount, payment_reference=payment_reference)
        return self.request(
            "POST", f"/deals/{deal_id}/repay", json=body, idempotency_key=idempotency_key
        )

    @route("GET", "/deals/{deal_id}/ledger")
    def deal_ledger(self, deal_id: Id) -> list[t.LedgerEntry]:
        return self.request("GET", f"/deals/{deal_id}/ledger")["items"]

    @route("GET", "/accounts/me")
    def my_accounts(self) -> t.Accounts:
        return self.request("GET", "/accounts/me")

    @route("GET", "/ledger/verify")
    def verify_ledger(self) -> t.JSON:
        return self.request("GET", "/ledger/verify")

    # ------------------------------------------------------------------ events and audit
    @route("GET", "/events")
    def list_events(
        self, *, after: Id | None = None, cursor: str | None = None, limit: int | None = None
    ) -> t.Page[t.Event]:
        return self.request(
            "GET", "/events", params={"after": after, "cursor": cursor, "limit": limit}
        )

    def iter_events(self, *, after: Id | None = None) -> Iterator[t.Event]:
        """Every event concerning you after `after` (an event id you processed; None:
        from the start), oldest first. Store each id as you process it to resume."""
        return self._iterate("/events", {"limit": 200}, first={"after": after})

    @route("GET", "/audit")
    def list_audit(self, *, cursor: str | None = None, limit: int | None = None) -> t.Page[t.JSON]:
        return self.request("GET", "/audit", params={"cursor": cursor, "limit": limit})

    def iter_audit(self) -> Iterator[t.JSON]:
        return self._iterate("/audit", {"limit": 200})

    @route("GET", "/audit/verify")
    def verify_audit(self) -> t.JSON:
        return self.request("GET", "/audit/verify")

    # ------------------------------------------------------------------ webhooks
    @route("POST", "/webhooks")
    def create_webhook(
        self,
        *,
        url: str,
        events: list[str],
        secret: str | None = None,
        idempotency_key: str | None = None,
    ) -> t.WebhookCreated:
        """Subscribe `url` to event types (`deal.funded`, `deal.*`, `*`). Keep the
        returned `secret`: it is shown this once and signs every delivery."""
        body = compact(url=url, events=list(events), secret=secret)
        return self.request("POST", "/webhooks", json=body, idempotency_key=idempotency_key)

    @route("GET", "/webhooks")
    def list_webhooks(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> t.Page[t.Webhook]:
        return self.request(
            "GET", "/webhooks", params={"status": status, "limit": limit, "cursor": cursor}
        )

    def iter_webhooks(self, *, status: str | None = None) -> Iterator[t.Webhook]:
        return self._iterate("/webhooks", {"status": status, "limit": 200})

    @route("DELETE", "/webhooks/{webhook_id}")
    def delete_webhook(self, webhook_id: Id) -> None:
        self.request("DELETE", f"/webhooks/{webhook_id}")

    @route("GET", "/webhooks/{webhook_id}/deliveries")
    def list_deliveries(
        self,
        webhook_id: Id,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> t.Page[t.Delivery]:
        return self.request(
            "GET",
            f"/webhooks/{webhook_id}/deliveries",
            params={"status": status, "limit": limit, "cursor": cursor},
        )

    def iter_deliveries(self, webhook_id: Id, *, status: str | None = None) -> Iterator[t.Delivery]:
        return self._iterate(f"/webhooks/{webhook_id}/deliveries", {"status": status, "limit": 200})

    # ------------------------------------------------------------------ statistics
    @route("GET", "/stats/overview")
    def stats_overview(
        self, *, from_: Day | None = None, to: Day | None = None, currency: str | None = None
    ) -> t.JSON:
        return self.request(
            "GET", "/stats/overview", params={"from": from_, "to": to, "currency": currency}
        )

    @route("GET", "/stats/core-enterprises")
    def stats_core_enterprises(
        self,
        *,
        sort: str | None = None,
        order: str | None = None,
        from_: Day | None = None,
        to: Day | None = None,
        currency: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> t.Page[t.JSON]:
        params = {
            "sort": sort,
            "order": order,
            "from": from_,
            "to": to,
            "currency": currency,
            "limit": limit,
            "cursor": cursor,
        }
        return self.request("GET", "/stats/core-enterprises", params=params)

    def iter_stats_core_enterprises(self, **filters: Any) -> Iterator[t.JSON]:
        params = {("from" if k == "from_" else k): v for k, v in filters.items()}
        return self._iterate("/stats/core-enterprises", {**params, "limit": 200})

    @route("GET", "/stats/arrears")
    def stats_arrears(
        self,
        *,
        serious: bool | None = None,
        group_by: str | None = None,
        from_: Day | None = None,
        to: Day | None = None,
        currency: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> t.Page[t.JSON]:
        params = {
            "serious": None if serious is None else str(serious).lower(),
            "group_by": group_by,
            "from": from_,
            "to": to,
            "currency": currency,
            "limit": limit,
            "cursor": cursor,
        }
        return self.request("GET", "/stats/arrears", params=params)

    def iter_stats_arrears(self, **filters: Any) -> Iterator[t.JSON]:
        params = {("from" if k == "from_" else k): v for k, v in filters.items()}
        if isinstance(params.get("serious"), bool):
            params["serious"] = str(params["serious"]).lower()
        return self._iterate("/stats/arrears", {**params, "limit": 200})

    # ------------------------------------------------------------------ operations
    @route("GET", "/healthz")
    def healthz(self) -> t.JSON:
        return self._json(self._send("GET", "/healthz", authenticated=False))

    @route("GET", "/readyz")
    def readyz(self) -> t.JSON:
        """`{"status": "ok", ...}`; raises ApiError(503) while not ready."""
        return self._json(self._send("GET", "/readyz", authenticated=False))

    @route("GET", "/metrics")
    def metrics(self) -> str:
        """Prometheus text."""
        response = self._send("GET", "/metrics")
        if response.status_code >= 400:
            self._json(response)
        return response.text

    # Simulated clock (RECEIVABLES_SIMULATED_CLOCK=true only; not in the OpenAPI document)
    def advance_clock(self, seconds: float) -> str:
        """As the operator: move the platform's simulated clock forward; the new now."""
        return self.request("POST", "/admin/clock", json={"advance_seconds": seconds})["now"]

    def set_clock(self, now: dt.datetime) -> str:
        return self.request("POST", "/admin/clock", json=compact(now=now))["now"]

    def tick(self) -> t.JSON:
        """As the operator: run the worker's due jobs (deadlines, webhooks) once."""
        return self.request("POST", "/admin/tick")
