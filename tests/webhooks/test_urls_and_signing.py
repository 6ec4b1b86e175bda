"""Pure checks: which webhook URLs the platform accepts in production and in insecure
(development) mode, and the signature scheme's positive and negative space."""

from __future__ import annotations

import asyncio

import pytest

from receivables.client import verify_signature
from receivables.webhooks import signing, urls
from receivables.webhooks.delivery import matches

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254/",
    "https://[fd00:ec2::254]/",
    "https://[fe80::1]/",
    "https://[fe80::1%25eth0]/",
    "https://169.254.10.10/",
    "https://10.1.2.3/",
    "https://172.16.0.1/",
    "https://192.168.0.1/",
    "https://[fc00::1]/",
    "https://[::ffff:10.0.0.1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[2002:a9fe:a9fe::1]/",
    "https://0.0.0.0/",
    "https://[::]/",
    "https://224.0.0.1/",
    "https://0xa9.0xfe.0xa9.0xfe/",
    "https://2852039166/",
    "https://hooks.bank.example/#frag",
    "https://user:pw@hooks.bank.example/",
    "https://metadata.google.internal/",
    "https://printer.local/",
    "https://intranet/",
    "https:///nohost",
    "https://hooks.bank.example:99999/",
    "gopher://hooks.bank.example/",
    "file:///etc/passwd",
]
LOOPBACK = [
    "http://127.0.0.1:8080/hooks",
    "http://localhost:9000/x",
    "http://[::1]:8000/",
    "http://127.1/",
    "http://2130706433/",
]


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
@pytest.mark.parametrize("insecure", [False, True])
def test_refused_in_every_mode(url: str, insecure: bool) -> None:
    with pytest.raises(urls.UrlRefused):
        urls.check_url(url, allow_insecure=insecure)


@pytest.mark.parametrize(
    "url", LOOPBACK + ["https://127.0.0.1/", "https://localhost/", "http://hooks.bank.example/"]
)
def test_production_refuses_http_and_loopback(url: str) -> None:
    with pytest.raises(urls.UrlRefused):
        urls.check_url(url, allow_insecure=False)


@pytest.mark.parametrize("url", LOOPBACK)
def test_insecure_mode_allows_http_and_loopback(url: str) -> None:
    assert urls.check_url(url, allow_insecure=True).scheme == "http"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.bank.example/receivables",
        "https://93.184.216.34/x",
        "https://[2606:4700::1]/",
        "https://hooks.bank.example:8443/a?b=c",
    ],
)
def test_public_https_is_allowed(url: str) -> None:
    target = urls.check_url(url, allow_insecure=False)
    assert target.scheme == "https" and target.port in (443, 8443)


def test_resolution_refuses_any_refused_address() -> None:
    target = urls.check_url("https://hooks.bank.example/", allow_insecure=False)

    def resolver(*answer: str):
        async def resolve(host: str, port: int) -> list[str]:
            return list(answer)

        return resolve

    async def check(*answer: str):
        return await urls.resolve(target, allow_insecure=False, resolver=resolver(*answer))

    assert str(asyncio.run(check("93.184.216.34"))) == "93.184.216.34"
    assert str(asyncio.run(check("2606:4700::1", "93.184.216.34"))) == "93.184.216.34"  # IPv4 first
    for answer in (("93.184.216.34", "10.0.0.1"), ("127.0.0.1",), ("169.254.169.254",), ()):
        with pytest.raises(urls.UrlRefused):
            asyncio.run(check(*answer))


def test_signatures() -> None:
    secret, body, t = (
        "whsec_test-secret-0123456789abcdef",
        b'{"id":"e1","type":"deal.funded"}',
        1_772_442_000,
    )
    header = signing.header(secret, t, body)
    assert header.startswith(f"t={t},v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(secret, header, body, now=t)
    assert verify_signature(secret, header, body.decode(), now=t + 299)
    assert verify_signature(
        secret, f"t={t},v1={'0' * 64},v1={header.split('v1=')[1]}", body, now=t
    )  # rotation
    assert not verify_signature(secret, header, body + b" ", now=t)  # tampered body
    assert not verify_signature("another-secret-0123456789abcdefgh", header, body, now=t)
    assert not verify_signature(secret, header, body, now=t + 301)  # too old: a replay
    assert not verify_signature(secret, header, body, now=t - 301)
    assert verify_signature(secret, header, body, now=t + 3000, tolerance_seconds=3600)
    for bad in (
        "",
        "v1=abc",
        f"t={t}",
        f"t=abc,v1={'0' * 64}",
        f"t={t},t={t},v1=x",
        "garbage",
        "x" * 5000,
    ):
        assert not verify_signature(secret, bad, body, now=t)


def test_subscription_patterns() -> None:
    assert matches(["*"], "bid.placed")
    assert matches(["deal.*"], "deal.funded") and not matches(["deal.*"], "dealer.funded")
    assert matches(["listing.opened", "bid.won"], "bid.won")
    assert not matches(["listing.opened"], "listing.awarded")
