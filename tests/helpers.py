"""Test helpers: a tiny GraphQL-over-HTTP client and user factories (real HTTP, no mocks)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

PASSWORD = "correct horse battery"


# The test servers trust this address as a proxy (STACKLO_TRUSTED_PROXIES), so a client
# connecting from it may say, in X-Forwarded-For, which client address it speaks for.
PROXY_ADDRESS = "127.0.0.2"


class GraphQLHTTP:
    def __init__(self, base_url: str, client_address: str | None = None):
        """``client_address``: speak for that address through the trusted proxy address
        (per-address limits then count it, not 127.0.0.1)."""
        self.base_url = base_url
        if client_address is None:
            self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        else:
            self.http = httpx.AsyncClient(
                base_url=base_url,
                timeout=30,
                headers={"x-forwarded-for": client_address},
                transport=httpx.AsyncHTTPTransport(local_address=PROXY_ADDRESS),
            )

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers, **kw
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        body = await self.post(query, variables, token)
        assert "errors" not in body, body
        return body["data"]

    async def aclose(self) -> None:
        await self.http.aclose()


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


SIGN_UP = """
mutation($input: SignUpInput!) {
  signUp(input: $input) {
    session { accessToken refreshToken tokenType expiresAt }
    user { id email fullName roles kycStatus wallets { id currency { code } balance { amount currency } } }
    userErrors { code message field }
  }
}"""

LOG_IN = """
mutation($input: LogInInput!) {
  logIn(input: $input) {
    session { accessToken refreshToken expiresAt }
    user { id email }
    userErrors { code message field }
  }
}"""

REFRESH = """
mutation($t: String!) {
  refreshSession(input: {refreshToken: $t}) {
    session { accessToken refreshToken }
    userErrors { code message field }
  }
}"""


@dataclass
class SignedUp:
    id: str
    email: str
    access: str
    refresh: str
    user: dict[str, Any]


async def sign_up(client: GraphQLHTTP, **overrides: Any) -> SignedUp:
    payload = {
        "email": unique_email(),
        "password": PASSWORD,
        "fullName": "Test Person",
        **overrides,
    }
    result = (await client.data(SIGN_UP, {"input": payload}))["signUp"]
    assert result["userErrors"] == [], result
    return SignedUp(
        id=result["user"]["id"],
        email=result["user"]["email"],
        access=result["session"]["accessToken"],
        refresh=result["session"]["refreshToken"],
        user=result["user"],
    )


DEPOSIT = """
mutation($i: StartDepositInput!) {
  startDeposit(input: $i) {
    paymentUrl
    transaction { id reference status kind amount { amount currency } }
    userErrors { code message field }
  }
}"""

SEND = """
mutation($i: SendMoneyInput!) {
  sendMoney(input: $i) {
    transaction { id reference status kind amount { amount currency } description
                  counterparty { displayName email } statusHistory { status reason }
                  entries { direction amount { amount } balanceAfter { amount } } }
    userErrors { code message field }
  }
}"""

WITHDRAW = """
mutation($i: RequestWithdrawalInput!) {
  requestWithdrawal(input: $i) {
    transaction { id reference status failureReason amount { amount currency } }
    userErrors { code message field }
  }
}"""

WALLETS = "{ me { wallets { id currency { code } balance { amount } heldBalance { amount } availableBalance { amount } status } } }"

BANK = {"bankCode": "058", "accountNumber": "0123456789", "accountName": "Ada Obi"}


def key() -> str:
    return uuid.uuid4().hex


async def deposit(
    client: GraphQLHTTP,
    user: SignedUp,
    amount: str,
    wallet_id: str | None = None,
    outcome: str = "success",
) -> dict[str, Any]:
    """Fund a wallet the way a customer does: startDeposit, then pay on the sandbox page."""
    wallet = wallet_id or user.user["wallets"][0]["id"]
    started = (
        await client.data(
            DEPOSIT,
            {"i": {"walletId": wallet, "amount": amount, "idempotencyKey": key()}},
            token=user.access,
        )
    )["startDeposit"]
    assert started["userErrors"] == [], started
    paid = await client.http.post(started["paymentUrl"], data={"outcome": outcome})
    assert paid.status_code == 200, paid.text
    return started


async def wallets(client: GraphQLHTTP, user: SignedUp) -> dict[str, dict[str, Any]]:
    found = (await client.data(WALLETS, token=user.access))["me"]["wallets"]
    return {w["currency"]["code"]: w for w in found}


async def send(
    client: GraphQLHTTP,
    user: SignedUp,
    to: dict[str, str],
    amount: str,
    from_wallet: str | None = None,
    idempotency_key: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    payload = {
        "fromWalletId": from_wallet or user.user["wallets"][0]["id"],
        "to": to,
        "amount": amount,
        "idempotencyKey": idempotency_key or key(),
        **extra,
    }
    result: dict[str, Any] = (await client.data(SEND, {"i": payload}, token=user.access))[
        "sendMoney"
    ]
    return result


async def admin_token(client: GraphQLHTTP, creds: tuple[str, str]) -> str:
    result = await client.data(LOG_IN, {"input": {"email": creds[0], "password": creds[1]}})
    token: str = result["logIn"]["session"]["accessToken"]
    return token


async def settled(database_url: str, within: float = 10) -> None:
    """Wait until the relay has published every committed outbox event.

    A subscription opened after this sees only what happens next: nothing from earlier
    requests can still be on its way to it.
    """
    conn = await asyncpg.connect(database_url.replace("+asyncpg", "", 1))
    try:
        deadline = time.monotonic() + within
        while await conn.fetchval("SELECT count(*) FROM outbox_events WHERE published_at IS NULL"):
            if time.monotonic() > deadline:
                raise AssertionError(f"outbox events still unpublished after {within} s")
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


# The smallest files of each accepted type that their magic numbers recognise.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    + b"\x90wS\xde"
)
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + bytes(64)
    + (b"\xff\xd9")
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

UPLOAD = """mutation($i: UploadKycDocumentInput!) { uploadKycDocument(input: $i) {
  document { id type fileName contentType sizeBytes status uploadedAt }
  userErrors { code message field } } }"""

REVIEW_KYC = """mutation($i: ReviewKycInput!) { reviewKyc(input: $i) {
  user { id kycStatus kycMayResubmit } userErrors { code message field } } }"""


async def upload_raw(
    client: GraphQLHTTP,
    token: str | None,
    data: bytes,
    *,
    type: str = "PASSPORT",
    file_name: str = "passport.png",
    content_type: str = "image/png",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """uploadKycDocument as the GraphQL multipart request spec sends it (what Apollo's upload
    link sends, with its CSRF header unless ``headers`` says otherwise)."""
    import json

    operations = {"query": UPLOAD, "variables": {"i": {"type": type, "file": None}}}
    sent = {"apollo-require-preflight": "true"} if headers is None else dict(headers)
    if token:
        sent["authorization"] = f"Bearer {token}"
    return await client.http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.i.file"]})},
        files={"0": (file_name, data, content_type)},
        headers=sent,
    )


async def upload(client: GraphQLHTTP, user: SignedUp, data: bytes, **kw: Any) -> dict[str, Any]:
    """The uploadKycDocument payload; the request itself must have been answered."""
    response = await upload_raw(client, user.access, data, **kw)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["uploadKycDocument"]
    return payload


async def verify_identity(client: GraphQLHTTP, user: SignedUp, admin: str) -> None:
    """What a user and staff do to reach VERIFIED: a passport and a selfie, then approval."""
    for type, data in (("PASSPORT", PDF), ("SELFIE", JPEG)):
        sent = await upload(client, user, data, type=type, file_name=f"{type.lower()}.bin")
        assert sent["userErrors"] == [], sent
    reviewed = (
        await client.data(REVIEW_KYC, {"i": {"userId": user.id, "approve": True}}, token=admin)
    )["reviewKyc"]
    assert reviewed["userErrors"] == [] and reviewed["user"]["kycStatus"] == "VERIFIED", reviewed
