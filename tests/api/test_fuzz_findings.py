"""What the schema fuzzer (tests/faults/test_fuzz.py) found, each kept as a small test."""

from __future__ import annotations

from tests.helpers import GraphQLHTTP, admin_token, sign_up

TRANSACTION = "query($r: String!) { transaction(reference: $r) { status description } }"
AUDIT = """query($a: String) { auditEvents(action: $a, first: 5) {
  pageInfo { hasNextPage } edges { node { action } } } }"""


async def test_a_reference_with_a_nul_is_no_transaction(client: GraphQLHTTP) -> None:
    # Was INTERNAL_SERVER_ERROR: PostgreSQL refuses a NUL in text, and the lookup asked it.
    user = await sign_up(client)
    for reference in ("TXN-\x00", "\x00", "TXN-\u0007AB"):
        for sent in (
            await client.post(TRANSACTION, {"r": reference}, token=user.access),
            await client.post(
                '{ transaction(reference: "TXN-\\u0000") { status } }', token=user.access
            ),
        ):
            assert "errors" not in sent and sent["data"] == {"transaction": None}, sent


async def test_an_audit_action_with_a_nul_matches_nothing(
    client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    # Was INTERNAL_SERVER_ERROR, as above; an action past the stored length also names none.
    token = await admin_token(client, admin_credentials)
    for action in ("TXN-\x00", "user.signed_up\x00", "a" * 65):
        body = await client.post(AUDIT, {"a": action}, token=token)
        assert "errors" not in body, body
        assert body["data"]["auditEvents"] == {"pageInfo": {"hasNextPage": False}, "edges": []}
    assert (await client.data(AUDIT, {"a": "user.signed_up"}, token=token))["auditEvents"]["edges"]
