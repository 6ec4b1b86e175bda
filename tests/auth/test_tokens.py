"""Goal: prove access tokens round-trip, and that every known JWT attack is rejected.

Each forged token is built by hand here (stdlib ``hmac``/``base64``/``json``), not
with the JWT library under test, so the tests keep their meaning if tokens.py
swaps python-jose for PyJWT, and cannot share a bug with the library. All time
checks use an injected clock far from the real one, proving the system clock is
never consulted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

from receivables.auth.roles import Role
from receivables.auth.tokens import (
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    SECRET_BYTES_MIN,
    TOKEN_BYTES_MAX,
    TOKEN_TYPE,
    AccessClaims,
    InsecureSecret,
    InvalidToken,
    check_secret,
    decode_access_token,
    issue_access_token,
)

SECRET = b"k" * 8 + os.urandom(40)
OTHER_SECRET = os.urandom(48)
ORG = uuid.UUID("6f1c2b9e-3d4a-4c5b-9e8f-0a1b2c3d4e5f")
# Simulated clock, deliberately decades away from the real one.
NOW = datetime(2041, 3, 4, 5, 6, 7, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
LIFETIME = 900


# --------------------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def good_header() -> dict[str, Any]:
    return {"alg": "HS256", "typ": "at+jwt"}


def good_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "org": str(ORG),
        "role": "bank",
        "iat": NOW_TS,
        "nbf": NOW_TS,
        "exp": NOW_TS + LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def forge(
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    *,
    key: bytes = SECRET,
    digest: Any = hashlib.sha256,
) -> str:
    """A compact JWS whose signature is HMAC(key) with ``digest``, whatever the header says."""
    header = good_header() if header is None else header
    claims = good_claims() if claims is None else claims
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def decode(token: Any, *, now: datetime = NOW, leeway: int = 0) -> AccessClaims:
    return decode_access_token(token, secret=SECRET, now=now, leeway_seconds=leeway)


def segments(token: str) -> list[Any]:
    head, body, _sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return [
        json.loads(base64.urlsafe_b64decode(pad(head))),
        json.loads(base64.urlsafe_b64decode(pad(body))),
    ]


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_public_pem(rsa_key: rsa.RSAPrivateKey) -> bytes:
    return rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------- happy path


def test_round_trip_returns_the_issued_claims() -> None:
    token = issue_access_token(
        secret=SECRET,
        subject="user-42",
        organization_id=ORG,
        role="bank",
        now=NOW,
        lifetime_seconds=LIFETIME,
    )
    claims = decode(token)
    assert claims.subject == "user-42"
    assert claims.organization_id == ORG
    assert claims.role == "bank" and claims.role is Role.bank
    assert claims.issued_at == NOW_TS
    assert claims.expires_at == NOW_TS + LIFETIME
    assert len(claims.token_id) == 32 and int(claims.token_id, 16) >= 0


def test_issued_token_has_exact_header_and_claim_set() -> None:
    token = issue_access_token(
        secret=SECRET, subject="u", organization_id=ORG, role="sme", now=NOW,
        lifetime_seconds=60,
    )
    header, body = segments(token)
    assert header == {"alg": ALGORITHM, "typ": TOKEN_TYPE}
    assert set(body) == {"exp", "iat", "nbf", "iss", "aud", "sub", "org", "role", "jti"}
    assert body["iss"] == ISSUER and body["aud"] == AUDIENCE
    assert body["nbf"] == body["iat"] == NOW_TS


def test_each_token_gets_a_fresh_jti() -> None:
    make = lambda: issue_access_token(  # noqa: E731
        secret=SECRET, subject="u", organization_id=ORG, role="sme", now=NOW,
        lifetime_seconds=60,
    )
    assert decode(make()).token_id != decode(make()).token_id


@pytest.mark.parametrize(
    "role", [r.value for r in (Role.sme, Role.core, Role.bank, Role.regulator, Role.operator)]
)
def test_every_organization_role_round_trips(role: str) -> None:
    token = issue_access_token(
        secret=SECRET, subject="u", organization_id=ORG, role=role, now=NOW,
        lifetime_seconds=60,
    )
    assert decode(token).role == role


def test_hand_forged_token_with_correct_secret_is_accepted() -> None:
    """Sanity check for the forging helper: the attacks below differ only in the attack."""
    assert decode(forge()).subject == "user-42"


def test_str_secret_is_accepted_for_issue_and_decode() -> None:
    text_secret: Any = secrets.token_urlsafe(48)
    token = issue_access_token(
        secret=text_secret, subject="u", organization_id=ORG, role="core", now=NOW,
        lifetime_seconds=60,
    )
    assert decode_access_token(token, secret=text_secret, now=NOW).role == "core"


def test_issue_refuses_system_role_and_bad_arguments() -> None:
    base = dict(secret=SECRET, subject="u", organization_id=ORG, role="sme", now=NOW,
                lifetime_seconds=60)
    for override in (
        {"role": "system"},
        {"role": "admin"},
        {"subject": ""},
        {"organization_id": str(ORG)},
        {"lifetime_seconds": 0},
        {"now": NOW.replace(tzinfo=None)},
    ):
        with pytest.raises(ValueError):
            issue_access_token(**{**base, **override})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- time


def test_expired_token_is_rejected_at_and_after_exp() -> None:
    token = forge()
    decode(token, now=NOW + timedelta(seconds=LIFETIME - 1))
    for later in (LIFETIME, LIFETIME + 1, LIFETIME + 86_400):
        with pytest.raises(InvalidToken):
            decode(token, now=NOW + timedelta(seconds=later))


def test_leeway_extends_expiry_only_by_leeway() -> None:
    token = forge()
    decode(token, now=NOW + timedelta(seconds=LIFETIME + 29), leeway=30)
    with pytest.raises(InvalidToken):
        decode(token, now=NOW + timedelta(seconds=LIFETIME + 30), leeway=30)


def test_expiry_is_judged_by_injected_clock_not_system_clock() -> None:
    """Issued in 2041 with a 60 s lifetime: valid at 2041 'now', expired at the real now."""
    token = forge(claims=good_claims(exp=NOW_TS + 60))
    decode(token, now=NOW)
    with pytest.raises(InvalidToken):
        decode(token, now=NOW + timedelta(seconds=61))
    # And a token from 2001 is valid when the simulated clock says it is 2001.
    past = datetime(2001, 1, 1, tzinfo=UTC)
    past_ts = int(past.timestamp())
    old = forge(claims=good_claims(iat=past_ts, nbf=past_ts, exp=past_ts + 60))
    assert decode(old, now=past).issued_at == past_ts


@pytest.mark.parametrize(
    "overrides",
    [
        {"iat": NOW_TS + 120, "nbf": NOW_TS + 120},  # issued in the future
        {"nbf": NOW_TS + 120},  # explicitly not yet valid
        {"iat": NOW_TS + 120},  # iat in the future even though nbf says now
    ],
    ids=["iat_and_nbf", "nbf_only", "iat_only"],
)
def test_not_yet_valid_token_is_rejected(overrides: dict[str, int]) -> None:
    token = forge(claims=good_claims(**overrides, exp=NOW_TS + 3600))
    with pytest.raises(InvalidToken):
        decode(token)
    # ...but accepted once the simulated clock reaches it.
    decode(token, now=NOW + timedelta(seconds=120))


def test_not_yet_valid_within_leeway_is_accepted() -> None:
    token = forge(claims=good_claims(iat=NOW_TS + 10, nbf=NOW_TS + 10))
    decode(token, leeway=10)
    with pytest.raises(InvalidToken):
        decode(token, leeway=9)


def test_naive_now_and_negative_leeway_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        decode(forge(), now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        decode(forge(), leeway=-1)


# --------------------------------------------------------------------------- algorithm attacks


def test_alg_none_unsigned_token_is_rejected() -> None:
    for alg in ("none", "None", "NONE", "nOnE"):
        head = b64url_json({"alg": alg, "typ": "at+jwt"})
        body = b64url_json(good_claims())
        for token in (f"{head}.{body}.", f"{head}.{body}"):
            with pytest.raises(InvalidToken):
                decode(token)
        # "none" header with a valid-looking HS256 signature appended
        with pytest.raises(InvalidToken):
            decode(forge(header={"alg": alg, "typ": "at+jwt"}))


@pytest.mark.parametrize(
    ("alg", "digest"), [("HS384", hashlib.sha384), ("HS512", hashlib.sha512)]
)
def test_other_hmac_algorithms_with_same_secret_are_rejected(alg: str, digest: Any) -> None:
    with pytest.raises(InvalidToken):
        decode(forge(header={"alg": alg, "typ": "at+jwt"}, digest=digest))
    # Lying header: says HS256 but signed with the stronger hash.
    with pytest.raises(InvalidToken):
        decode(forge(digest=digest))


def test_rs256_header_signed_hmac_with_public_key_pem_is_rejected(rsa_public_pem: bytes) -> None:
    """Key confusion (CVE-2024-33663 family): attacker HMACs with the public key PEM."""
    token = forge(header={"alg": "RS256", "typ": "at+jwt"}, key=rsa_public_pem)
    with pytest.raises(InvalidToken):
        decode(token)
    # Same forgery with an HS256 header: signature does not match our real secret.
    with pytest.raises(InvalidToken):
        decode(forge(key=rsa_public_pem))
    # And the server refuses to ever be configured with that PEM as its secret.
    with pytest.raises(InsecureSecret):
        decode_access_token(forge(key=rsa_public_pem), secret=rsa_public_pem, now=NOW)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA", "hs256", "HS256 ", ""])
def test_any_alg_other_than_exact_hs256_is_rejected(alg: str) -> None:
    with pytest.raises(InvalidToken):
        decode(forge(header={"alg": alg, "typ": "at+jwt"}))


def test_missing_alg_is_rejected() -> None:
    with pytest.raises(InvalidToken):
        decode(forge(header={"typ": "at+jwt"}))


def test_token_signed_with_another_secret_is_rejected() -> None:
    with pytest.raises(InvalidToken):
        decode(forge(key=OTHER_SECRET))
    real = issue_access_token(
        secret=OTHER_SECRET, subject="u", organization_id=ORG, role="sme", now=NOW,
        lifetime_seconds=60,
    )
    with pytest.raises(InvalidToken):
        decode(real)


# --------------------------------------------------------------------------- header attacks


@pytest.mark.parametrize("typ", ["JWT", "jwt", "AT+JWT", "application/at+jwt", "", None, 1])
def test_wrong_typ_is_rejected(typ: Any) -> None:
    with pytest.raises(InvalidToken):
        decode(forge(header={"alg": "HS256", "typ": typ}))


def test_missing_typ_is_rejected() -> None:
    with pytest.raises(InvalidToken):
        decode(forge(header={"alg": "HS256"}))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "oct", "k": b64url(b"attacker-secret-attacker-secret!!")}),
        ("x5c", ["MIIBszCCAVmgAwIBAgIUQ"]),
        ("kid", "../../../../dev/null"),
        ("crit", ["exp"]),
        ("zip", "DEF"),
        ("cty", "JWT"),
    ],
)
def test_key_reference_and_unknown_headers_are_rejected(name: str, value: Any) -> None:
    header = {**good_header(), name: value}
    with pytest.raises(InvalidToken):
        decode(forge(header=header))


def test_header_that_is_not_an_object_is_rejected() -> None:
    body = b64url_json(good_claims())
    for header in ('["HS256"]', '"HS256"', "null", "{", ""):
        head = b64url(header.encode())
        signing_input = f"{head}.{body}"
        sig = b64url(hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest())
        with pytest.raises(InvalidToken):
            decode(f"{signing_input}.{sig}")


# --------------------------------------------------------------------------- claim attacks


@pytest.mark.parametrize("claim", ["exp", "iat", "aud", "iss", "sub", "org", "role", "jti"])
def test_token_missing_a_required_claim_is_rejected(claim: str) -> None:
    claims = good_claims()
    del claims[claim]
    with pytest.raises(InvalidToken):
        decode(forge(claims=claims))


def test_nbf_is_optional() -> None:
    claims = good_claims()
    del claims["nbf"]
    assert decode(forge(claims=claims)).subject == "user-42"


@pytest.mark.parametrize(
    "aud", ["other-api", "receivables", "", ["other-api"], ["receivables-api"], None, 1]
)
def test_wrong_audience_is_rejected(aud: Any) -> None:
    with pytest.raises(InvalidToken):
        decode(forge(claims=good_claims(aud=aud)))


@pytest.mark.parametrize("iss", ["evil", "Receivables", "", None, ["receivables"]])
def test_wrong_issuer_is_rejected(iss: Any) -> None:
    with pytest.raises(InvalidToken):
        decode(forge(claims=good_claims(iss=iss)))


@pytest.mark.parametrize("role", ["system", "admin", "root", "SME", "", None, ["bank"], 1])
def test_role_outside_token_roles_is_rejected(role: Any) -> None:
    with pytest.raises(InvalidToken):
        decode(forge(claims=good_claims(role=role)))


@pytest.mark.parametrize(
    "org",
    [
        "not-a-uuid", "", 42, None, ORG.hex, "{" + str(ORG) + "}", f"urn:uuid:{ORG}",
        str(ORG).upper(),
    ],
)
def test_org_must_be_a_canonical_uuid(org: Any) -> None:
    with pytest.raises(InvalidToken):
        decode(forge(claims=good_claims(org=org)))


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": str(NOW_TS + 60)},
        {"exp": float(NOW_TS + 60)},
        {"exp": True},
        {"exp": None},
        {"iat": "0"},
        {"nbf": "0"},
        {"exp": NOW_TS - 1, "iat": NOW_TS},  # exp before iat
        {"sub": ""},
        {"sub": 42},
        {"jti": ""},
        {"jti": 7},
    ],
)
def test_ill_typed_claims_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        decode(forge(claims=good_claims(**overrides)))


def test_payload_not_a_json_object_is_rejected() -> None:
    head = b64url_json(good_header())
    for payload in (b"[1,2]", b'"x"', b"null", b"{", b"\xff\xfe"):
        signing_input = f"{head}.{b64url(payload)}"
        sig = b64url(hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest())
        with pytest.raises(InvalidToken):
            decode(f"{signing_input}.{sig}")


def test_tampered_payload_with_original_signature_is_rejected() -> None:
    token = issue_access_token(
        secret=SECRET, subject="u", organization_id=ORG, role="sme", now=NOW,
        lifetime_seconds=60,
    )
    head, body, sig = token.split(".")
    claims = segments(token)[1]
    claims["role"] = "operator"
    with pytest.raises(InvalidToken):
        decode(f"{head}.{b64url_json(claims)}.{sig}")
    # Flipping one signature character is rejected too.
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    with pytest.raises(InvalidToken):
        decode(f"{head}.{body}.{flipped}")


# --------------------------------------------------------------------------- shape attacks


def test_five_part_jwe_shaped_token_is_rejected() -> None:
    header = b64url_json({"alg": "dir", "enc": "A256GCM", "typ": "at+jwt"})
    token = ".".join(
        [header, "", b64url(os.urandom(12)), b64url(os.urandom(64)), b64url(os.urandom(16))]
    )
    with pytest.raises(InvalidToken):
        decode(token)
    full = ".".join([header, b64url(os.urandom(32)), b64url(os.urandom(12)),
                     b64url(os.urandom(64)), b64url(os.urandom(16))])
    with pytest.raises(InvalidToken):
        decode(full)


def test_token_over_size_cap_is_rejected() -> None:
    padding = "x" * TOKEN_BYTES_MAX
    token = forge(claims=good_claims(pad=padding))
    assert len(token) > TOKEN_BYTES_MAX
    with pytest.raises(InvalidToken):
        decode(token)


def test_token_just_under_size_cap_with_valid_signature_is_accepted() -> None:
    base = len(forge(claims=good_claims(pad="")))
    # base64 expands 3 -> 4; leave slack so the result stays under the cap.
    token = forge(claims=good_claims(pad="x" * ((TOKEN_BYTES_MAX - base) * 3 // 4 - 3)))
    assert len(token) <= TOKEN_BYTES_MAX
    assert decode(token).subject == "user-42"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        " ",
        "null",
        "a",
        "a.b",
        "a.b.c",
        "..",
        "...",
        "a.b.c.d",
        "Bearer abc.def.ghi",
        "eyJ.eyJ.",
        "!!!.@@@.###",
        "é.é.é",
        "a\x00.b.c",
        "\n",
        "x" * (TOKEN_BYTES_MAX + 1),
    ],
)
def test_garbage_strings_are_rejected(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        decode(garbage)


@pytest.mark.parametrize("value", [None, 123, b"a.b.c", ["a", "b", "c"]])
def test_non_string_token_is_rejected(value: Any) -> None:
    with pytest.raises(InvalidToken):
        decode(value)


def test_valid_token_with_surrounding_whitespace_or_padding_is_rejected() -> None:
    token = forge()
    for variant in (f" {token}", f"{token}\n", f"{token}=", token.replace(".", "=.", 1)):
        with pytest.raises(InvalidToken):
            decode(variant)


# --------------------------------------------------------------------------- check_secret


def test_check_secret_refuses_empty_and_short() -> None:
    for raw in (b"", "", b"x" * (SECRET_BYTES_MIN - 1), os.urandom(31)):
        with pytest.raises(InsecureSecret):
            check_secret(raw)


def test_check_secret_refuses_pem_public_key(rsa_public_pem: bytes) -> None:
    with pytest.raises(InsecureSecret):
        check_secret(rsa_public_pem)
    with pytest.raises(InsecureSecret):
        check_secret(rsa_public_pem.decode())


def test_check_secret_refuses_pem_private_key(rsa_key: rsa.RSAPrivateKey) -> None:
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = rsa_key.private_bytes(
            serialization.Encoding.PEM, fmt, serialization.NoEncryption()
        )
        with pytest.raises(InsecureSecret):
            check_secret(pem)


def test_check_secret_refuses_ssh_public_key_line() -> None:
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert line.startswith(b"ssh-ed25519 ")
    with pytest.raises(InsecureSecret):
        check_secret(line + b" user@host")
    with pytest.raises(InsecureSecret):
        check_secret(line.decode())


def test_check_secret_refuses_ssh_rsa_public_key_line(rsa_key: rsa.RSAPrivateKey) -> None:
    line = rsa_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    with pytest.raises(InsecureSecret):
        check_secret(line)


def test_check_secret_refuses_der_public_keys(rsa_key: rsa.RSAPrivateKey) -> None:
    """CVE-2026-85394: binary DER has no PEM/SSH marker; only a parser catches it."""
    spki = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1 = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    ed_spki = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for der in (spki, pkcs1, ed_spki):
        assert len(der) >= SECRET_BYTES_MIN and b"-----BEGIN" not in der
        with pytest.raises(InsecureSecret):
            check_secret(der)


def test_check_secret_refuses_der_private_keys(rsa_key: rsa.RSAPrivateKey) -> None:
    plain = rsa_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    encrypted = rsa_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    for der in (plain, encrypted):
        with pytest.raises(InsecureSecret):
            check_secret(der)


def test_check_secret_refuses_certificates(rsa_key: rsa.RSAPrivateKey) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receivables")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2050, 1, 1, tzinfo=UTC))
        .sign(rsa_key, hashes.SHA256())
    )
    for encoding in (serialization.Encoding.PEM, serialization.Encoding.DER):
        with pytest.raises(InsecureSecret):
            check_secret(cert.public_bytes(encoding))


def test_check_secret_refuses_a_jwk() -> None:
    jwk_text = json.dumps({"kty": "oct", "k": b64url(os.urandom(32))})
    with pytest.raises(InsecureSecret):
        check_secret(jwk_text)


def test_check_secret_refuses_non_text_types() -> None:
    for raw in (None, 12345678901234567890123456789012345, ["x" * 40]):
        with pytest.raises(InsecureSecret):
            check_secret(raw)  # type: ignore[arg-type]


def test_check_secret_accepts_random_bytes_and_long_random_strings() -> None:
    for _ in range(200):
        raw = os.urandom(SECRET_BYTES_MIN + secrets.randbelow(64))
        assert check_secret(raw) == raw
    text = secrets.token_urlsafe(48)
    assert check_secret(text) == text.encode()
    hex_secret = secrets.token_hex(32)
    assert check_secret(hex_secret) == hex_secret.encode()
    assert isinstance(check_secret(os.urandom(32)), bytes)


def test_issue_and_decode_refuse_insecure_secrets(rsa_public_pem: bytes) -> None:
    for bad in (b"", b"short", rsa_public_pem):
        with pytest.raises(InsecureSecret):
            issue_access_token(
                secret=bad, subject="u", organization_id=ORG, role="sme", now=NOW,
                lifetime_seconds=60,
            )
        with pytest.raises(InsecureSecret):
            decode_access_token(forge(), secret=bad, now=NOW)
