"""Goal: every known way to forge or abuse an access token is refused over HTTP with 401
problem+json, and start-up refuses secrets that would make forging possible.

Method: each token is built by hand (stdlib hmac/base64/json, not the JWT library under
test) for a real user, so the unmodified forgery is accepted (the control case) and
each attack differs from it in exactly one respect. They are sent to GET /me, which
needs nothing but a valid token. tests/auth/test_tokens.py covers the same attacks at
the function level; this proves the HTTP layer adds no bypass (and no 500)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import ValidationError

from receivables.auth.tokens import AUDIENCE, ISSUER, TOKEN_BYTES_MAX
from receivables.config import Settings
from receivables.organizations.models import Organization
from tests.conftest import JWT_SECRET
from tests.fixtures.world import add_user, new_credit_code

SECRET = JWT_SECRET.encode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def sign(header: dict[str, Any], claims: dict[str, Any], *, key: bytes = SECRET, digest=hashlib.sha256) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    signature = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


HEADER = {"alg": "HS256", "typ": "at+jwt"}


@pytest.fixture(scope="module")
def rsa_public_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
async def caller(app) -> dict[str, Any]:
    """A real operator user and the claims of a good token for it, at the app's clock."""
    organization = Organization(
        name="Operator", kind="operator", credit_code=new_credit_code(), size="large",
        sector="private", created_at=app.state.clock.now(),
    )
    async with app.state.sessionmaker.begin() as session:
        session.add(organization)
    user_id = await add_user(app, organization.id, "op@attacks.test")
    now = int(app.state.clock.now().timestamp())
    return {
        "iss": ISSUER, "aud": AUDIENCE, "sub": str(user_id), "org": str(organization.id),
        "role": "operator", "iat": now, "nbf": now, "exp": now + 900, "jti": uuid.uuid4().hex,
    }


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    # Bytes, so non-ASCII garbage reaches the server as sent (httpx would refuse a str).
    return await client.get("/me", headers={"Authorization": f"Bearer {token}".encode()})


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert set(body) >= {"type", "title", "status", "detail", "code"}


class TestControl:
    async def test_the_unmodified_forgery_is_accepted(self, client, caller):
        """Without this, every 401 below could be an artefact of the forging code."""
        response = await me(client, sign(HEADER, caller))
        assert response.status_code == 200, response.text
        assert response.json()["user_id"] == caller["sub"]


class TestAlgorithms:
    async def test_alg_none_unsigned(self, client, caller):
        token = f"{b64json({'alg': 'none', 'typ': 'at+jwt'})}.{b64json(caller)}."
        assert_refused(await me(client, token))

    @pytest.mark.parametrize("alg", ["none", "None", "NONE"])
    async def test_alg_none_with_a_signature(self, client, caller, alg):
        assert_refused(await me(client, sign({"alg": alg, "typ": "at+jwt"}, caller)))

    async def test_hs512_with_the_real_secret(self, client, caller):
        token = sign({"alg": "HS512", "typ": "at+jwt"}, caller, digest=hashlib.sha512)
        assert_refused(await me(client, token))

    async def test_hs384_with_the_real_secret(self, client, caller):
        token = sign({"alg": "HS384", "typ": "at+jwt"}, caller, digest=hashlib.sha384)
        assert_refused(await me(client, token))

    async def test_rs256_header_signed_with_the_public_key_as_hmac_secret(
        self, client, caller, rsa_public_pem
    ):
        token = sign({"alg": "RS256", "typ": "at+jwt"}, caller, key=rsa_public_pem)
        assert_refused(await me(client, token))

    async def test_hs256_signed_with_the_public_key(self, client, caller, rsa_public_pem):
        assert_refused(await me(client, sign(HEADER, caller, key=rsa_public_pem)))

    async def test_another_secret(self, client, caller):
        assert_refused(await me(client, sign(HEADER, caller, key=b"z" * 48)))


class TestHeaders:
    @pytest.mark.parametrize("typ", [None, "JWT", "at+JWT", "refresh+jwt", ""])
    async def test_wrong_or_missing_typ(self, client, caller, typ):
        header = {"alg": "HS256"} if typ is None else {"alg": "HS256", "typ": typ}
        assert_refused(await me(client, sign(header, caller)))

    @pytest.mark.parametrize(
        "name,value",
        [("jku", "https://evil.example/jwks"), ("x5u", "https://evil.example/c"),
         ("jwk", {"kty": "oct", "k": "AAAA"}), ("kid", "../../dev/null"), ("crit", ["exp"])],
    )
    async def test_key_references_and_unknown_headers(self, client, caller, name, value):
        assert_refused(await me(client, sign({**HEADER, name: value}, caller)))

    async def test_jwe_shaped_token(self, client, caller):
        assert_refused(await me(client, "eyJhbGciOiJkaXIifQ.." + "a" * 20 + "." + "b" * 20 + "." + "c" * 22))


class TestClaims:
    @pytest.mark.parametrize("claim", ["exp", "iat", "aud", "iss", "sub", "org", "role", "jti"])
    async def test_missing_claim(self, client, caller, claim):
        claims = {k: v for k, v in caller.items() if k != claim}
        assert_refused(await me(client, sign(HEADER, claims)))

    async def test_expired(self, client, caller):
        claims = {**caller, "iat": caller["iat"] - 1000, "nbf": caller["iat"] - 1000,
                  "exp": caller["iat"] - 100}
        assert_refused(await me(client, sign(HEADER, claims)))

    async def test_expiring_exactly_now(self, client, caller):
        claims = {**caller, "iat": caller["iat"] - 900, "nbf": caller["iat"] - 900,
                  "exp": caller["iat"]}
        assert_refused(await me(client, sign(HEADER, claims)))

    async def test_nbf_in_the_future(self, client, caller):
        assert_refused(await me(client, sign(HEADER, {**caller, "nbf": caller["iat"] + 60})))

    async def test_iat_in_the_future(self, client, caller):
        claims = {**caller, "iat": caller["iat"] + 60, "nbf": caller["iat"] + 60}
        assert_refused(await me(client, sign(HEADER, claims)))

    @pytest.mark.parametrize("aud", ["other-api", ["receivables-api", "other"], "", None])
    async def test_wrong_audience(self, client, caller, aud):
        assert_refused(await me(client, sign(HEADER, {**caller, "aud": aud})))

    @pytest.mark.parametrize("iss", ["someone-else", "", None])
    async def test_wrong_issuer(self, client, caller, iss):
        assert_refused(await me(client, sign(HEADER, {**caller, "iss": iss})))

    async def test_role_that_the_organization_does_not_hold(self, client, caller):
        """Correctly signed (the secret leaked, say) but the role disagrees with the
        database: the per-request check refuses it."""
        assert_refused(await me(client, sign(HEADER, {**caller, "role": "bank"})))

    async def test_organization_that_is_not_the_users(self, client, caller):
        assert_refused(await me(client, sign(HEADER, {**caller, "org": str(uuid.uuid4())})))

    async def test_user_that_does_not_exist(self, client, caller):
        assert_refused(await me(client, sign(HEADER, {**caller, "sub": str(uuid.uuid4())})))

    @pytest.mark.parametrize("sub", ["client:" + str(uuid.uuid4()), "client:nope", "42", ""])
    async def test_subject_of_no_one(self, client, caller, sub):
        assert_refused(await me(client, sign(HEADER, {**caller, "sub": sub})))

    @pytest.mark.parametrize("role", ["system", "admin", ""])
    async def test_roles_no_token_may_carry(self, client, caller, role):
        assert_refused(await me(client, sign(HEADER, {**caller, "role": role})))


class TestTampering:
    async def test_payload_swapped_under_the_original_signature(self, client, caller):
        head, _, signature = sign(HEADER, caller).split(".")
        forged_body = b64json({**caller, "role": "regulator"})
        assert_refused(await me(client, f"{head}.{forged_body}.{signature}"))

    async def test_one_flipped_signature_character(self, client, caller):
        token = sign(HEADER, caller)
        flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        assert_refused(await me(client, flipped))

    async def test_signature_stripped(self, client, caller):
        head, body, _ = sign(HEADER, caller).split(".")
        assert_refused(await me(client, f"{head}.{body}."))

    async def test_oversize_but_validly_signed_token(self, client, caller):
        claims = {**caller, "pad": "x" * TOKEN_BYTES_MAX}
        token = sign(HEADER, claims)
        assert len(token) > TOKEN_BYTES_MAX
        assert_refused(await me(client, token))

    @pytest.mark.parametrize(
        "garbage", ["", "a.b", "a.b.c.d", "....", "Bearer", "é.é.é", " " + "a.b.c"]
    )
    async def test_garbage(self, client, caller, garbage):
        assert_refused(await me(client, garbage))

    async def test_other_schemes_and_no_token(self, client, caller):
        token = sign(HEADER, caller)
        for headers in ({}, {"Authorization": f"Basic {token}"}, {"Authorization": token}):
            assert_refused(await client.get("/me", headers=headers))


class TestStartupRefusesUnsafeSecrets:
    """Settings validates the secret when the process starts: a misconfiguration is
    fatal there, never a silently forgeable token later."""

    @pytest.mark.parametrize("secret", ["", "short", "x" * 31])
    def test_short_secrets(self, secret):
        with pytest.raises(ValidationError, match="at least 32 bytes"):
            Settings(jwt_secret=secret)

    def test_pem_public_key(self, rsa_public_pem):
        with pytest.raises(ValidationError, match="PEM"):
            Settings(jwt_secret=rsa_public_pem.decode())

    @pytest.mark.parametrize("make_key", ["rsa", "ec", "ed25519"])
    def test_der_public_key_from_the_environment(self, make_key):
        """A DER key is binary; the environment hands it to Python as a str with
        surrogate escapes, which must be checked as the original bytes."""
        private = {
            "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
            "ed25519": ed25519.Ed25519PrivateKey.generate,
        }[make_key]()
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with pytest.raises(ValidationError, match="key"):
            Settings(jwt_secret=der.decode("utf-8", "surrogateescape"))

    def test_base64_body_of_a_public_key(self, rsa_public_pem):
        body = "".join(rsa_public_pem.decode().splitlines()[1:-1])
        with pytest.raises(ValidationError, match="base64"):
            Settings(jwt_secret=body)

    def test_a_jwk(self):
        with pytest.raises(ValidationError, match="JSON Web Key"):
            Settings(jwt_secret=json.dumps({"kty": "oct", "k": "A" * 60}))

    def test_a_good_secret_starts(self):
        assert Settings(jwt_secret="n0t-a-key-" + "q" * 40).jwt_secret_bytes

