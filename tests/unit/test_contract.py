"""The API as served: committed as schema.graphql, and checked against the public contract.

schema.graphql at the repository root is what `stacklo schema` prints, so every change to the
API shows up as a diff in review (`make schema` writes it). Where the public contract
(../shared/contract) sits beside this clone, the printed schema must keep it, except the
breaks tests/contract_pending.txt lists (that list only shrinks).
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from stacklo.api import schema

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT.parent / "shared" / "contract" / "check_contract.py"
PENDING = ROOT / "tests" / "contract_pending.txt"
SERVED = ROOT / "schema.graphql"


def test_schema_file_is_exactly_what_stacklo_schema_prints() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "stacklo", "schema"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert printed == SERVED.read_text(), "the API changed: run `make schema` and commit it"


def _checker():  # type: ignore[no-untyped-def]
    if not CHECKER.exists():
        pytest.skip(
            f"the public contract is not beside this clone ({CHECKER.parent} is missing): "
            "schema.graphql is checked against it where it is"
        )
    spec = importlib.util.spec_from_file_location("check_contract", CHECKER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_breaks_are_exactly_the_pending_list() -> None:
    breaks = _checker().breaking_changes(schema.as_str())
    pending = [line for line in PENDING.read_text().splitlines() if line.strip()]
    assert sorted(breaks) == sorted(pending)


def test_served_parts_of_the_contract_are_never_pending() -> None:
    pending = PENDING.read_text()
    for served in (
        "Query.me",
        "Mutation.signUp",
        "Mutation.openWallet",
        "Query.users",
        "Query.auditEvents",
    ):
        assert served not in pending
