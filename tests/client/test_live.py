"""`receivables.client` against a live uvicorn server on loopback: a bank onboarded with
an API client subscribes to webhooks, bids, wins, funds and is repaid; the rival bank
neither sees its bid nor receives its events; errors arrive as ApiError with the API's
codes; tokens are renewed; POSTs are idempotent; lists iterate across pages."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from receivables.client import ApiError, Client, verify_signature
from tests.client.live import Market, open_listing
from tests.webhooks.receiver import Receiver


def _bank_api_client(market: Market) -> Client:
    """What a bank does first: its administrator creates an API client (client
    credentials) for its systems, which then log in with them."""
    credentials = market.bank.client.create_api_client(market.bank.organization_id, name="treasury")
    assert set(credentials) >= {"client_id", "client_secret"}
    return Client.with_client_credentials(
        market.base_url, credentials["client_id"], credentials["client_secret"]
    )


def test_a_bank_bids_wins_funds_and_is_repaid(market: Market, receiver: Receiver):
    bank = _bank_api_client(market)
    rival, sme, core = market.bank2.client, market.sme.client, market.core.client
    me = bank.me()
    assert (me["role"], me["organization"]["id"]) == ("bank", market.bank.organization_id)
    hook = bank.create_webhook(url=receiver.url("/bank"), events=["listing.*", "bid.*", "deal.*"])
    rival_hook = rival.create_webhook(url=receiver.url("/rival"), events=["*"])
    assert hook["secret"] and "secret" not in bank.list_webhooks()["items"][0]
    start = bank.list_events(limit=200)
    seen_before = [e["id"] for e in start["items"]]

    listing = open_listing(market)
    assert listing["id"] in [item["id"] for item in bank.iter_listings(status="open")]
    bid = bank.place_bid(listing["id"], discount_rate="0.0450")
    rival_bid = rival.place_bid(listing["id"], discount_rate="0.0500")
    with pytest.raises(ApiError) as error:
        rival.get_bid(bid["id"])  # sealed: another bank's bid does not exist for it
    assert (error.value.status, error.value.code) == (404, "not_found")

    deal = sme.award_listing(listing["id"], bid_id=bid["id"])
    assert (deal["bank_id"], deal["status"]) == (market.bank.organization_id, "awaiting_funding")
    [awaiting] = [d for d in bank.iter_deals(status="awaiting_funding") if d["id"] == deal["id"]]
    funded = bank.fund_deal(
        awaiting["id"], amount=awaiting["funding_amount"], payment_reference="WIRE-0001"
    )
    assert funded["status"] == "disbursed"
    owed = core.get_deal(deal["id"])["amount_due"]
    settled = core.repay_deal(deal["id"], amount=owed, payment_reference="PAY-0001")
    assert settled["status"] == "settled"
    assert {e["kind"] for e in bank.deal_ledger(deal["id"])} >= {"funding"}
    balance = next(b for b in bank.my_accounts()["balances"] if b["currency"] == "CNY")
    assert float(balance["balance"]) > 0  # the discount earned

    events = list(bank.iter_events(after=seen_before[-1] if seen_before else None))
    types = [e["type"] for e in events]
    for expected in (
        "listing.opened",
        "bid.placed",
        "bid.won",
        "deal.created",
        "deal.funded",
        "deal.settled",
    ):
        assert expected in types
    assert rival_bid["id"] not in {e["data"]["object_id"] for e in events}
    middle = events[len(events) // 2]["id"]
    assert [e["id"] for e in bank.iter_events(after=middle)] == [
        e["id"] for e in events[len(events) // 2 + 1 :]
    ]

    ticked = market.operator.tick()
    assert ticked["failed"] == [] and ticked["processed"]["webhook_attempts"] >= len(events) - 1
    got = receiver.at("/bank")
    assert {r.event_id for r in got} == {
        e["id"] for e in events if e["type"].split(".")[0] in ("listing", "bid", "deal")
    }
    assert all(verify_signature(hook["secret"], r.headers["x-signature"], r.body) for r in got)
    assert all(r.event == next(e for e in events if e["id"] == r.event_id) for r in got)
    rival_got = {r.event["data"]["object_id"] for r in receiver.at("/rival")}
    assert (
        bid["id"] not in rival_got and rival_bid["id"] in rival_got and deal["id"] not in rival_got
    )
    log = list(bank.iter_deliveries(hook["id"]))
    assert {d["status"] for d in log} == {"delivered"} and len(log) == len(got)
    bank.delete_webhook(hook["id"])
    rival.delete_webhook(rival_hook["id"])
    assert [w["id"] for w in bank.iter_webhooks()] == []
    bank.close()


def test_errors_are_api_errors_with_stable_codes(market: Market):
    bank = market.bank.client
    listing = open_listing(market)
    with pytest.raises(ApiError) as error:
        bank.place_bid(listing["id"], discount_rate="0.0900")
    assert (error.value.status, error.value.code) == (422, "bid_above_reserve")
    bank.place_bid(listing["id"], discount_rate="0.0600")
    with pytest.raises(ApiError) as error:
        bank.place_bid(listing["id"], discount_rate="0.0500")
    assert (error.value.status, error.value.code) == (409, "bid_exists")
    with pytest.raises(ApiError) as error:
        bank.submit_receivable(
            debtor_id=market.core.organization_id,
            invoice_number="X-1",
            face_value="1.00",
            issue_date="2026-01-01",
            due_date="2026-06-01",
        )
    assert (error.value.status, error.value.code) == (403, "forbidden")
    with pytest.raises(ApiError) as error:
        bank.fund_deal(uuid.uuid4(), amount="1.00", payment_reference="X")
    assert error.value.status == 404
    with pytest.raises(ApiError) as error:
        bank.create_webhook(url="http://169.254.169.254/latest", events=["*"])
    assert (error.value.code, error.value.status) == ("webhook_url_not_allowed", 422)
    with pytest.raises(ApiError) as error:
        bank.create_webhook(url="http://127.0.0.1:9/x", events=["deal.paid"])
    assert error.value.code == "validation_error" and error.value.errors[0]["field"].startswith(
        "events"
    )


def test_posts_carry_idempotency_keys_and_replay(market: Market):
    sme, core = market.sme.client, market.core.client
    today = market.today()
    body = {
        "debtor_id": market.core.organization_id,
        "invoice_number": f"IDEM-{uuid.uuid4().hex[:8]}",
        "face_value": "5000.00",
        "issue_date": today - dt.timedelta(days=5),
        "due_date": today + dt.timedelta(days=60),
    }
    key = str(uuid.uuid4())
    first = sme.submit_receivable(**body, idempotency_key=key)
    again = sme.submit_receivable(**body, idempotency_key=key)  # a retry after a lost answer
    assert again == first
    with pytest.raises(ApiError) as error:
        sme.submit_receivable(**{**body, "face_value": "6000.00"}, idempotency_key=key)
    assert error.value.code == "idempotency_key_reused"
    with pytest.raises(ApiError) as error:  # no key given: a fresh one, so a real duplicate
        sme.submit_receivable(**body)
    assert error.value.code == "duplicate_receivable"
    core.confirm_receivable(first["id"])


def test_tokens_are_renewed(market: Market):
    user = Client.with_password(
        market.base_url, market.sme.email, "correct horse battery staple 42"
    )
    refresh_before = user._refresh_token
    user._access_token = "expired-or-revoked"
    assert user.me()["role"] == "sme"  # a 401, then the refresh token, then the retry
    assert user._refresh_token not in (None, refresh_before)
    user._access_token, user._refresh_token = "expired", "already-used"
    assert user.me()["role"] == "sme"  # the refresh fails too: logs in again
    token = user.refresh()  # explicit refresh with the held token
    assert token["access_token"] == user.access_token
    user.close()

    bare = Client(market.base_url, token="not-a-token")
    with pytest.raises(ApiError) as error:
        bare.me()
    assert (error.value.status, error.value.code) == (401, "not_authenticated")
    bare.close()


def test_lists_iterate_across_pages(market: Market):
    sme = market.sme.client
    for _ in range(3):
        open_listing(market, face_value="2000.00")
    whole = list(sme.iter_receivables())
    paged, cursor = [], None
    while True:
        page = sme.list_receivables(limit=2, cursor=cursor)
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["id"] for r in paged] == [r["id"] for r in whole] and len(whole) >= 3
    assert len({r["id"] for r in whole}) == len(whole)
    assert market.operator.healthz() == {"status": "ok"}
    assert market.operator.readyz()["status"] == "ok"
    assert "# TYPE" in market.operator.metrics() or market.operator.metrics() == ""
    json.dumps(market.operator.stats_overview())
