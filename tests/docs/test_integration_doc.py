"""docs/integration.md is executed: every ```bash block runs in bash (curl and jq) and
every ```python block in one Python namespace, in document order, against a live
server. Between blocks, `<!-- counterpart: NAME -->` comments let the test play the
other parties (the supplier lists and awards, the debtor repays, the platform's worker
runs), as they would act in real life. The catalogue and error-code tables are checked
against the code and the OpenAPI document."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from receivables.app import create_app
from receivables.config import Settings
from receivables.kit.errors import ReceivablesError
from receivables.webhooks.schemas import EVENT_CATALOGUE
from tests.client.live import PASSWORD, Market, open_listing
from tests.fixtures.world import new_credit_code
from tests.webhooks.receiver import Receiver

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "integration.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
COUNTERPART = re.compile(r"<!-- counterpart: ([\w-]+) -->")
ASSIGNED = re.compile(r"^\s*([A-Z_][A-Z0-9_]*)=", re.MULTILINE)


@dataclass
class Block:
    language: str
    code: str
    line: int
    counterparts: list[str] = field(default_factory=list)


def blocks(text: str) -> list[Block]:
    found, previous_end = [], 0
    for match in FENCE.finditer(text):
        before = text[previous_end : match.start()]
        line = text.count("\n", 0, match.start()) + 2
        found.append(Block(match.group(1), match.group(2), line, COUNTERPART.findall(before)))
        previous_end = match.end()
    return found


EXECUTED = [b for b in blocks(DOC.read_text()) if b.language in ("bash", "python")]


# ------------------------------------------------------------------ the other parties


@dataclass
class Story:
    market: Market
    namespace: dict[str, Any]
    shell: dict[str, str]


def _supplier_lists(story: Story) -> None:
    open_listing(story.market)


def _supplier_relists(story: Story) -> None:
    story.market.sme.client.cancel_listing(story.shell["LISTING_ID"])
    open_listing(story.market)


def _supplier_awards(story: Story) -> None:
    listing, bid = story.namespace["listing"], story.namespace["bid"]
    story.market.sme.client.award_listing(listing["id"], bid_id=bid["id"])


def _platform_delivers(story: Story) -> None:
    report = story.market.operator.tick()
    assert report["failed"] == [], report


def _debtor_repays(story: Story) -> None:
    core = story.market.core.client
    deal = core.get_deal(story.namespace["deal"]["id"])
    core.repay_deal(deal["id"], amount=deal["amount_due"], payment_reference="DEBTOR-PAY-1")


COUNTERPARTS: dict[str, Callable[[Story], None]] = {
    "supplier-lists": _supplier_lists,
    "supplier-relists": _supplier_relists,
    "supplier-awards": _supplier_awards,
    "platform-delivers": _platform_delivers,
    "debtor-repays": _debtor_repays,
}


# ------------------------------------------------------------------ running blocks


def _run_bash(block: Block, env: dict[str, str], cwd: Path, shell: dict[str, str]) -> None:
    """One block in its own bash, with the variables earlier blocks assigned."""
    names = sorted(set(ASSIGNED.findall(block.code)))
    dump = "".join(f'printf "%s\\0%s\\0" {n} "${{{n}}}" >> vars.bin\n' for n in names)
    script = f"set -euo pipefail\nrm -f vars.bin\n{block.code}\n{dump}"
    result = subprocess.run(
        ["bash", "-c", script],
        env={**env, **shell},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"bash block at line {block.line} failed:\n{result.stdout}\n{result.stderr}"
    )
    if names:
        values = (cwd / "vars.bin").read_bytes().decode().split("\0")[:-1]
        shell.update(dict(zip(values[::2], values[1::2])))
        assert all(shell[n] not in ("", "null") for n in names), (
            block.line,
            {n: shell[n] for n in names},
        )


def _run_python(block: Block, namespace: dict[str, Any]) -> None:
    exec(compile(block.code, f"{DOC}:{block.line}", "exec"), namespace)  # noqa: S102 - the doc's own code


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="curl and jq run the shell examples"
)
def test_the_examples_run(
    market: Market, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    bank = market.operator.create_organization(
        name="Docs Bank", kind="bank", credit_code=new_credit_code()
    )
    admin_email = f"admin-{uuid.uuid4().hex[:6]}@docs.example"
    market.operator.create_user(bank["id"], email=admin_email, password=PASSWORD)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "RECEIVABLES_URL": market.base_url,
        "ADMIN_EMAIL": admin_email,
        "ADMIN_PASSWORD": PASSWORD,
        "WEBHOOK_URL": receiver.url("/curl-webhook"),
    }
    story = Story(market, {"__name__": "integration_md"}, {})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for block in EXECUTED:
        for name in block.counterparts:
            COUNTERPARTS[name](story)
        if block.language == "bash":
            _run_bash(block, env, tmp_path, story.shell)
        else:
            for name, value in story.shell.items():
                monkeypatch.setenv(name, value)
            _run_python(block, story.namespace)

    ns = story.namespace
    assert ns["deal"]["status"] == "settled"
    assert ns["me"]["organization"]["id"] == bank["id"]
    curl_hook = receiver.at("/curl-webhook")  # the webhook subscribed with curl got its events too
    assert {r.event["type"] for r in curl_hook} >= {"listing.opened", "deal.funded", "deal.settled"}
    ns["receiver"].shutdown()
    ns["bank"].close()


def test_every_counterpart_and_block_is_used() -> None:
    used = {name for block in EXECUTED for name in block.counterparts}
    assert used == set(COUNTERPARTS)
    assert (
        sum(b.language == "bash" for b in EXECUTED) >= 5
        and sum(b.language == "python" for b in EXECUTED) >= 6
    )


def test_the_event_catalogue_is_the_code_s() -> None:
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| (.+?) \|$", DOC.read_text(), re.MULTILINE)
    assert dict(rows) == EVENT_CATALOGUE


def _error_codes() -> set[str]:
    create_app(Settings(jwt_secret="docs-" + "x" * 40))  # imports every router: every error class
    codes, pending = set(), [ReceivablesError]
    while pending:
        error = pending.pop()
        codes.add(error.code)
        pending += error.__subclasses__()
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    for operations in document["paths"].values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                codes |= set(re.findall(r"`([a-z_]+)`: ", response.get("description", "")))
    return codes


def test_every_error_code_is_documented() -> None:
    documented = set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", DOC.read_text(), re.MULTILINE))
    missing = _error_codes() - documented
    assert not missing, (
        f"error codes missing from docs/integration.md section 12: {sorted(missing)}"
    )
    assert {
        "validation_error",
        "internal_error",
        "commit_failed",
        "request_too_large",
    } <= documented
