"""The committed OpenAPI document is exactly what the app serves (regenerate with
`receivables openapi > openapi/openapi.json`), and it documents the contract's shape."""

from __future__ import annotations

import json
from pathlib import Path

from receivables.app import openapi_document

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_document_matches_the_app() -> None:
    assert COMMITTED.read_text() == openapi_document(), (
        "openapi/openapi.json is stale: run `receivables openapi > openapi/openapi.json`"
    )


def test_admin_routes_stay_out_of_the_document() -> None:
    paths = json.loads(openapi_document())["paths"]
    assert not [p for p in paths if p.startswith("/admin")]


def test_every_operation_has_a_description_and_declares_401() -> None:
    paths = json.loads(openapi_document())["paths"]
    public = {"/healthz", "/readyz", "/metrics", "/auth/token", "/auth/refresh"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("description"), f"{method.upper()} {path} has no description"
            if path not in public:
                assert "401" in operation["responses"], f"{method.upper()} {path} omits 401"
