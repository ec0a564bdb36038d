"""The baseline bench/transfers.py measures Stacklo against: a transfer as bare Starlette and
asyncpg, running the same SQL the server runs for ``sendMoney`` and nothing else.

    STACKLO_RAW_DSN=postgresql://... uvicorn bench.raw_transfer:app --workers 2

POST /transfer {"user", "from", "to", "amount", "key"} (ids as UUIDs): the idempotency key
looked up, the sender's wallet read, the day's sends summed (the daily cap), the recipient's
wallet read, then the booking statement of ``stacklo.data.ledger.booking_statement`` (the
function locks, checks and saves both wallets; the transaction, its history, entries, outbox
events, audit record and the claimed key ride along), all as prepared statements on one
pooled connection. No GraphQL, no token, no session check, no domain objects beyond the
booking's own: what is left between this and Stacklo's figure is those.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stacklo.data.ledger import booking_statement
from stacklo.domain.ledger import (
    Answer,
    Booking,
    Cap,
    Claim,
    Transaction,
    TransactionKind,
    TransactionStatus,
    transfer_postings,
)
from stacklo.domain.money import CurrencyCode, Money
from stacklo.domain.outcomes import request_hash
from stacklo.domain.spending import DEFAULT_UNVERIFIED_DAILY

KEY = (
    "SELECT operation, request_hash, response FROM idempotency_keys WHERE user_id = $1 AND key = $2"
)
WALLET = "SELECT * FROM wallets WHERE id = $1"
OUTGOING = """SELECT coalesce(sum(amount), 0) FROM daily_outgoing
  WHERE user_id = $1 AND day = $2 AND currency = $3"""

_pool: asyncpg.Pool | None = None
_booking: tuple[str, tuple[str, ...]] | None = None


def _compiled(booking: Booking) -> tuple[str, list[Any]]:
    """The booking statement as asyncpg takes it: numbered placeholders, values in order."""
    global _booking
    statement, params = booking_statement(booking)
    if _booking is None:
        compiled = statement.compile(dialect=asyncpg_dialect.dialect())
        assert compiled.positiontup is not None
        _booking = (compiled.string, tuple(compiled.positiontup))
    sql, order = _booking
    return sql, [params[name] for name in order]


async def transfer(request: Request) -> Response:
    body = json.loads(await request.body())
    user, source_id, target_id = (uuid.UUID(body[k]) for k in ("user", "from", "to"))
    key, amount = body["key"], Decimal(body["amount"])
    assert _pool is not None
    async with _pool.acquire() as conn:
        if await conn.fetchrow(KEY, user, key) is not None:
            return Response(b'{"replayed":true}', media_type="application/json")
        source = await conn.fetchrow(WALLET, source_id)
        if source is None or source["user_id"] != user:
            return Response(b'{"error":"NOT_FOUND"}', 404, media_type="application/json")
        code = CurrencyCode(source["currency"])
        now = datetime.now(UTC)
        used = await conn.fetchval(OUTGOING, user, now.date(), code.value)
        limit = DEFAULT_UNVERIFIED_DAILY[code]
        if used + amount > limit or source["balance"] - source["held"] < amount:
            return Response(b'{"error":"REFUSED"}', 422, media_type="application/json")
        target = await conn.fetchrow(WALLET, target_id)
        if target is None or target["currency"] != code.value:
            return Response(b'{"error":"NOT_FOUND"}', 404, media_type="application/json")
        money = Money(amount, code)
        tx = Transaction.start(
            TransactionKind.TRANSFER,
            money,
            now,
            status=TransactionStatus.COMPLETED,
            initiator_id=user,
            source_wallet_id=source_id,
            target_wallet_id=target_id,
        )
        answer = {"transaction_id": str(tx.id)}
        claim = Claim(user, key, "sendMoney", request_hash("sendMoney", body))
        booking = Booking(
            tx,
            None,
            transfer_postings(source_id, target_id, money),
            [],
            [source_id],
            Cap(user, code, now.date(), limit, amount),
            None,
            Answer(user, key, answer, claim),
        )
        sql, args = _compiled(booking)
        try:
            await conn.execute(sql, *args)
        except asyncpg.PostgresError as e:
            if e.sqlstate in ("SL001", "SL002"):
                return Response(b'{"error":"REFUSED"}', 422, media_type="application/json")
            raise
    reply = {"transaction": {"reference": tx.reference, "status": "COMPLETED"}}
    return Response(json.dumps(reply).encode(), media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global _pool
    _pool = await asyncpg.create_pool(
        os.environ["STACKLO_RAW_DSN"], min_size=4, max_size=int(os.environ.get("RAW_POOL", "10"))
    )
    try:
        yield
    finally:
        await _pool.close()


app = Starlette(routes=[Route("/transfer", transfer, methods=["POST"])], lifespan=lifespan)
