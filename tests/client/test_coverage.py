"""The client cannot drift from the API: every operation of the committed OpenAPI
document (openapi/openapi.json) has a client method, which accepts each of its query
parameters and body fields; and the client's response types name only fields the
API's schemas have."""

from __future__ import annotations

import inspect
import json
import re
import typing
from pathlib import Path

import pytest

from receivables.client import Client, types

OPENAPI = json.loads((Path(__file__).parents[2] / "openapi" / "openapi.json").read_text())
SCHEMAS = OPENAPI["components"]["schemas"]
OPERATIONS = [
    (method.upper(), path, operation)
    for path, operations in OPENAPI["paths"].items()
    for method, operation in operations.items()
]
PARAMETER_NAMES = {"from": "from_"}
AUTH_FORM_FIELDS = {"grant_type", "username", "password", "client_id", "client_secret", "scope"}
"""POST /auth/token's form: the constructor's credentials, not method arguments."""


def _routes() -> dict[tuple[str, str], typing.Callable]:
    found = {}
    for _, member in inspect.getmembers(Client, inspect.isfunction):
        if hasattr(member, "__route__"):
            found[member.__route__] = member
    return found


ROUTES = _routes()


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _body_fields(operation: dict) -> set[str]:
    fields: set[str] = set()
    for content in operation.get("requestBody", {}).get("content", {}).values():
        schema = content["schema"]
        for ref in [schema] + schema.get("anyOf", []):
            if "$ref" in ref:
                fields |= set(SCHEMAS[ref["$ref"].split("/")[-1]].get("properties", {}))
    return fields


def test_every_operation_has_a_method() -> None:
    served = {(m, _shape(p)) for m, p, _ in OPERATIONS}
    covered = {(m, _shape(p)) for m, p in ROUTES}
    assert not served - covered, f"operations without a client method: {sorted(served - covered)}"


def test_every_method_is_an_operation_of_the_document() -> None:
    served = {(m, _shape(p)) for m, p, _ in OPERATIONS}
    stale = {(m, _shape(p)) for m, p in ROUTES} - served
    assert not stale, f"client methods for operations the API does not have: {sorted(stale)}"


@pytest.mark.parametrize(
    "method,path,operation", OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_methods_accept_every_parameter_and_field(method: str, path: str, operation: dict) -> None:
    function = next(f for (m, p), f in ROUTES.items() if (m, _shape(p)) == (method, _shape(path)))
    accepted = set(inspect.signature(function).parameters)
    wanted = {
        PARAMETER_NAMES.get(p["name"], p["name"])
        for p in operation.get("parameters", [])
        if p["in"] == "query"
    }
    wanted |= _body_fields(operation) - (AUTH_FORM_FIELDS if path == "/auth/token" else set())
    if path == "/auth/refresh":
        wanted = {"refresh_token"}
    assert wanted <= accepted, f"{function.__name__} lacks {sorted(wanted - accepted)}"


RESPONSE_SCHEMAS = {
    types.Token: "TokenResponse",
    types.Me: "MeRead",
    types.Organization: "OrganizationRead",
    types.User: "UserRead",
    types.ApiClient: "ApiClientRead",
    types.Receivable: "ReceivableRead",
    types.Listing: "ListingRead",
    types.Bid: "BidRead",
    types.Deal: "DealRead",
    types.LedgerEntry: "JournalEntryRead",
    types.Posting: "PostingRead",
    types.Accounts: "AccountsRead",
    types.Balance: "BalanceRead",
    types.Event: "EventRead",
    types.Webhook: "WebhookRead",
    types.Attempt: "AttemptRead",
    types.Delivery: "DeliveryRead",
}


@pytest.mark.parametrize(
    "shape,schema", RESPONSE_SCHEMAS.items(), ids=lambda x: getattr(x, "__name__", x)
)
def test_response_types_name_only_real_fields(shape: type, schema: str) -> None:
    fields = set(typing.get_type_hints(shape))
    real = set(SCHEMAS[schema]["properties"])
    if shape is types.Deal:
        real |= set(SCHEMAS["DealDebtorRead"]["properties"])
    assert fields <= real, f"{shape.__name__} names fields {schema} lacks: {sorted(fields - real)}"
