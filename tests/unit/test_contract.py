"""The printed schema keeps the public contract, except what later issues still owe.

tests/contract_pending.txt lists, one per line, the breaks that are expected today. It only
shrinks: a line disappears when its part of the contract is served, and a new break fails.
"""

import importlib.util
from pathlib import Path

from stacklo.schema.root import schema

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT.parent / "shared" / "contract" / "check_contract.py"
PENDING = ROOT / "tests" / "contract_pending.txt"


def _checker():  # type: ignore[no-untyped-def]
    assert CHECKER.exists(), f"the contract checker is missing: {CHECKER}"
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
