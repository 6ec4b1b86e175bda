"""Signed access tokens: the only module in the project that imports ``jose``.

Everything the rest of the code needs (issuing, decoding, the secret check) lives
behind the functions below, so replacing python-jose with PyJWT is a change to
this file only.

python-jose 3.5.0 has unsafe defaults, all of which are overridden here:

* ``algorithms=None`` accepts whatever ``alg`` the header names: we check the
  header ourselves and pass ``algorithms=[ALGORITHM]`` *and* a key object bound
  to HS256, so the header can never choose the algorithm (RFC 8725 §3.1).
* No claim is required by default, and ``aud`` is only checked when present: we
  require and check every claim ourselves.
* ``require_exp``/``require_iat``/``require_nbf`` silently switch the matching
  ``verify_*`` back on, and jose's verification reads the *system* clock. The
  project runs on a simulated clock, so time claims are never handed to jose:
  presence, type and window are checked here against the injected ``now``.
* Passing a raw string secret lets jose ``json.loads`` it as a JWK (set); we
  pass a pre-built HMAC key object instead, after :func:`check_secret`.

Refresh tokens are not JWTs; they are opaque random strings stored hashed
elsewhere.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from jose import jwk, jws, jwt
from jose.exceptions import JOSEError

from receivables.auth.roles import ORGANIZATION_KINDS, Role

ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"
ISSUER = "receivables"
AUDIENCE = "receivables-api"
TOKEN_BYTES_MAX = 8192
SECRET_BYTES_MIN = 32

TOKEN_ROLES: frozenset[str] = frozenset(role.value for role in ORGANIZATION_KINDS)
"""Roles a token may carry. ``system`` is the platform itself and never in a token."""

_HEADER_KEYS_ALLOWED = frozenset({"alg", "typ"})
"""We issue exactly these header parameters. Anything else (jku, x5u, jwk, x5c, kid,
crit, zip, ...) is refused: we never take key material or key references from a
token (RFC 8725 §3.10), and we do not implement any critical extension."""

_REQUIRED_CLAIMS = ("exp", "iat", "aud", "iss", "sub", "org", "role", "jti")

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

_PEM_MARKER = b"-----BEGIN"
_SSH_MARKERS = (
    b"ssh-rsa",
    b"ssh-dss",
    b"ssh-ed25519",
    b"ssh-ed448",
    b"ecdsa-sha2-",
    b"sk-ssh-",
    b"sk-ecdsa-",
    b"-cert-v01@openssh.com",
)
"""python-jose's HMAC key refuses a secret that contains any of several of these
anywhere, so we refuse the same (and a few more) up front, at startup."""


class InsecureSecret(ValueError):
    """The configured signing secret is unfit for HMAC. Raised at startup; fatal."""


class InvalidToken(Exception):
    """Any rejected access token. The message is for logs, never for clients."""


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    subject: str
    organization_id: uuid.UUID
    role: str
    """A :class:`~receivables.auth.roles.Role` member (a ``str``), never ``system``."""
    issued_at: int
    expires_at: int
    token_id: str
    """The ``jti``, for revocation lists and audit logs."""


# --------------------------------------------------------------------------- secret


def _parses_as_key_material(raw: bytes) -> bool:
    """True when ``cryptography`` accepts ``raw`` as a public/private key or a certificate.

    A loader raising ``ValueError`` means "not this format". For the ASN.1 (DER/PEM)
    loaders, ``TypeError`` (an encrypted key that needs a password) and
    ``UnsupportedAlgorithm`` (a well-formed key of a type this build cannot use) both
    mean the bytes *are* a key. The OpenSSH loader raises ``UnsupportedAlgorithm`` for
    any random bytes with a space in them, so there only success counts (OpenSSH key
    lines are caught by their type prefix in :func:`check_secret` anyway).
    """
    is_key = (TypeError, UnsupportedAlgorithm)
    loaders = (
        (serialization.load_pem_public_key, is_key),
        (serialization.load_der_public_key, is_key),
        (lambda data: serialization.load_pem_private_key(data, password=None), is_key),
        (lambda data: serialization.load_der_private_key(data, password=None), is_key),
        (x509.load_pem_x509_certificate, is_key),
        (x509.load_der_x509_certificate, is_key),
        (serialization.load_ssh_public_key, ()),
        (lambda data: serialization.load_ssh_private_key(data, password=None), (TypeError,)),
    )
    for load, key_errors in loaders:
        try:
            load(raw)
        except key_errors:
            return True
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return True
    return False


def _base64_of_key_material(raw: bytes) -> bool:
    """True when ``raw`` is base64 (standard or URL-safe, whitespace ignored) of bytes that
    are a key, a certificate, or an OpenSSH key blob."""
    compact = b"".join(raw.split())
    for altchars in (None, b"-_"):
        try:
            decoded = base64.b64decode(compact, altchars=altchars, validate=True)
        except ValueError:  # binascii.Error is a ValueError
            continue
        if len(decoded) < SECRET_BYTES_MIN:
            continue
        if any(marker in decoded for marker in (_PEM_MARKER, *_SSH_MARKERS)):
            return True
        if _parses_as_key_material(decoded):
            return True
    return False


def _parses_as_json_structure(raw: bytes) -> bool:
    """True for a JSON object or array: a JWK or JWK set pasted where a secret belongs."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
        return False
    return isinstance(value, (dict, list))


def check_secret(raw: str | bytes) -> bytes:
    """Return ``raw`` as bytes if it is fit to be an HS256 secret, else raise InsecureSecret.

    Refused: anything that is not ``str``/``bytes``; fewer than 32 bytes, including empty
    (RFC 7518 §3.2; CVE-2026-120459); anything that is or contains a PEM block, an OpenSSH
    key line, or that ``cryptography`` parses as a DER/PEM/SSH public or private key or an
    X.509 certificate (CVE-2024-33663, CVE-2026-85394: a public key used as the HMAC secret
    lets anyone holding the public key forge tokens), also when it is the base64 body of
    such a key pasted without its PEM armour (the attacker has the public key, so has
    those characters too); and JSON objects/arrays (a JWK).

    A ``str`` is encoded with ``surrogateescape``: that is how Python hands over an
    environment variable holding raw (non-UTF-8) bytes, such as a DER key, so the check
    sees, and the signer uses, the very bytes the operator configured.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    elif isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise InsecureSecret("JWT secret must be str or bytes")
    if len(raw) < SECRET_BYTES_MIN:
        raise InsecureSecret(f"JWT secret must be at least {SECRET_BYTES_MIN} bytes")
    if _PEM_MARKER in raw:
        raise InsecureSecret("JWT secret looks like a PEM key or certificate")
    if any(marker in raw for marker in _SSH_MARKERS):
        raise InsecureSecret("JWT secret looks like an OpenSSH key")
    if _parses_as_key_material(raw):
        raise InsecureSecret("JWT secret parses as an asymmetric key or certificate")
    if _base64_of_key_material(raw):
        raise InsecureSecret("JWT secret is the base64 text of a key or certificate")
    if _parses_as_json_structure(raw):
        raise InsecureSecret("JWT secret looks like a JSON Web Key")
    return raw


@functools.lru_cache(maxsize=8)
def _signing_key(secret: bytes) -> Any:
    """An HS256-bound jose key for ``secret``, checked once per distinct secret.

    Handing jose a key object (not raw bytes) means it neither JSON-parses the secret
    nor builds a key for whatever algorithm the token header names.
    """
    return jwk.construct(check_secret(secret), ALGORITHM)


# --------------------------------------------------------------------------- helpers


def _epoch_seconds(now: datetime) -> float:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.timestamp()


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if type(value) is not int:  # bool is an int subclass; floats are never issued
        raise InvalidToken(f"claim {name!r} is not an integer")
    return value


def _str_claim(claims: dict[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"claim {name!r} is not a non-empty string")
    return value


# --------------------------------------------------------------------------- issue


def issue_access_token(
    *,
    secret: bytes,
    subject: str,
    organization_id: uuid.UUID,
    role: str,
    now: datetime,
    lifetime_seconds: int,
) -> str:
    """Sign a compact HS256 access token valid from ``now`` for ``lifetime_seconds``.

    Raises ``InsecureSecret`` for an unfit secret and ``ValueError`` for bad arguments
    (empty subject, non-UUID organization, role outside :data:`TOKEN_ROLES`, naive
    ``now``, non-positive lifetime).
    """
    key = _signing_key(bytes(secret) if isinstance(secret, (bytearray, memoryview)) else secret)
    if not isinstance(subject, str) or not subject:
        raise ValueError("subject must be a non-empty string")
    if not isinstance(organization_id, uuid.UUID):
        raise ValueError("organization_id must be a UUID")
    if role not in TOKEN_ROLES:
        raise ValueError(f"role {role!r} cannot be put in a token")
    if type(lifetime_seconds) is not int or lifetime_seconds <= 0:
        raise ValueError("lifetime_seconds must be a positive int")
    issued_at = math.floor(_epoch_seconds(now))
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "org": str(organization_id),
        "role": str(role),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE})


# --------------------------------------------------------------------------- decode


def decode_access_token(
    token: str,
    *,
    secret: bytes,
    now: datetime,
    leeway_seconds: int = 0,
) -> AccessClaims:
    """Verify ``token`` and return its claims, judged against the injected ``now``.

    Every rejection raises :class:`InvalidToken`. A misconfigured secret raises
    ``InsecureSecret`` and a naive ``now`` or negative leeway raises ``ValueError``:
    those are server bugs, not bad tokens, and must not turn into a 401.
    """
    key = _signing_key(bytes(secret) if isinstance(secret, (bytearray, memoryview)) else secret)
    now_ts = _epoch_seconds(now)
    if type(leeway_seconds) is not int or leeway_seconds < 0:
        raise ValueError("leeway_seconds must be a non-negative int")

    # Cheap shape checks before any parsing: size cap (JWE/zip bombs, API4), and
    # compact JWS only -- three non-empty base64url segments, so no JWE (5 parts), no
    # unsigned "alg: none" token with an empty signature, no padding or stray bytes.
    if not isinstance(token, str):
        raise InvalidToken("token is not a string")
    if len(token) > TOKEN_BYTES_MAX or not token.isascii():
        raise InvalidToken("token too long or not ASCII")
    if _COMPACT_JWS.fullmatch(token) is None:
        raise InvalidToken("token is not a compact JWS")

    try:
        header = jws.get_unverified_header(token)
        if not isinstance(header, dict):
            raise InvalidToken("header is not a JSON object")
        extra = set(header) - _HEADER_KEYS_ALLOWED
        if extra:
            raise InvalidToken(f"unexpected header parameters {sorted(extra)}")
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("header alg is not HS256")
        if header.get("typ") != TOKEN_TYPE:
            raise InvalidToken("header typ is not at+jwt")

        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={
                "verify_signature": True,
                "verify_aud": True,
                "verify_iss": True,
                "verify_sub": True,
                "verify_jti": True,
                "verify_at_hash": False,
                "require_aud": True,
                "require_iss": True,
                "require_sub": True,
                "require_jti": True,
                # Time is judged below against the simulated clock. jose's require_exp/
                # require_iat/require_nbf would turn verify_* back on (system clock).
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require_exp": False,
                "require_iat": False,
                "require_nbf": False,
                "leeway": 0,
            },
        )
    except InvalidToken:
        raise
    except (JOSEError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # JOSEError covers JWS/JWT/JWK errors; ValueError covers JSON, UTF-8 and
        # binascii errors raised from inside jose's parsing.
        raise InvalidToken(f"jose rejected the token: {type(exc).__name__}: {exc}") from exc

    if not isinstance(claims, dict):
        raise InvalidToken("claims are not a JSON object")
    missing = [name for name in _REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise InvalidToken(f"missing claims {missing}")

    # Re-check what jose already checked, strictly: we only ever issue single strings.
    if claims["iss"] != ISSUER:
        raise InvalidToken("wrong issuer")
    if claims["aud"] != AUDIENCE:
        raise InvalidToken("wrong audience")

    subject = _str_claim(claims, "sub")
    token_id = _str_claim(claims, "jti")
    role = claims["role"]
    if not isinstance(role, str) or role not in TOKEN_ROLES:
        raise InvalidToken("role is not one a token may carry")
    org = _str_claim(claims, "org")
    try:
        organization_id = uuid.UUID(org)
    except ValueError as exc:
        raise InvalidToken("org is not a UUID") from exc
    if str(organization_id) != org:
        raise InvalidToken("org is not a canonical UUID")

    issued_at = _int_claim(claims, "iat")
    expires_at = _int_claim(claims, "exp")
    not_before = _int_claim(claims, "nbf") if "nbf" in claims else issued_at
    if expires_at <= issued_at:
        raise InvalidToken("exp is not after iat")
    if now_ts >= expires_at + leeway_seconds:
        raise InvalidToken("token expired")
    if max(issued_at, not_before) > now_ts + leeway_seconds:
        raise InvalidToken("token not yet valid")

    return AccessClaims(
        subject=subject,
        organization_id=organization_id,
        role=Role(role),
        issued_at=issued_at,
        expires_at=expires_at,
        token_id=token_id,
    )
