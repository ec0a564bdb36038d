"""Settlement: what merchants are owed moves from their payable to the owner's wallet.

A sale is settled once it is older than the settlement delay (paid before ``now - delay``).
A run settles each merchant in its own database transaction: it locks that merchant's
unsettled checkouts paid before the cutoff (re-checked after the lock, so a second run at the
same time finds them settled and moves nothing), sums what of them is still on the payable
(``Checkout.unsettled``), moves that sum to the owner's wallet in the settlement currency
(opened if the owner has none) as one SETTLEMENT transaction, and marks those checkouts
settled. Safe to run again at any time; suspended merchants settle too.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from stacklo.domain.commerce import ZERO, Checkout, Merchant, debit_in_order
from stacklo.domain.errors import Conflict
from stacklo.domain.ledger import Posting, Transaction, TransactionKind, TransactionStatus
from stacklo.domain.models import WORKER, audit
from stacklo.domain.money import Money
from stacklo.domain.movements import Movement, book
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.wallets import add_wallet


class Settlement:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, delay: timedelta):
        self._uow = uow
        self._clock = clock
        self._delay = delay

    async def run(self) -> int:
        """Settle every merchant with sales past the delay; returns how many moved money."""
        now = self._clock()
        cutoff = now - self._delay
        async with self._uow(read_only=True) as uow:
            merchants = await uow.checkouts.merchants_to_settle(cutoff)
        settled = 0
        for merchant_id in merchants:
            settled += await self.merchant(merchant_id, cutoff, now)
        return settled

    async def merchant(self, merchant_id: uuid.UUID, cutoff: datetime, now: datetime) -> int:
        async with self._uow() as uow:
            sales = await uow.checkouts.unsettled_for_update(merchant_id, cutoff)
            if not sales:
                return 0
            merchant = await uow.merchants.get(merchant_id)
            assert merchant is not None, "a checkout's merchant exists"
            total = sum((c.unsettled for c in sales), ZERO)
            tx_id = await _move(uow, merchant, sales, total, now) if total > 0 else None
            await uow.checkouts.mark_settled([c.id for c in sales], now, tx_id)
            await uow.commit()
        return 1 if tx_id else 0


async def _move(
    uow: UnitOfWork, merchant: Merchant, sales: list[Checkout], total: Decimal, now: datetime
) -> uuid.UUID:
    code = merchant.settlement_currency
    wallet = await uow.wallets.for_user_currency(merchant.user_id, code)
    if wallet is None:
        try:
            wallet = await add_wallet(uow, merchant.user_id, code, now, WORKER, reason="settlement")
        except Conflict:  # opened meanwhile by its owner
            wallet = await uow.wallets.for_user_currency(merchant.user_id, code)
            assert wallet is not None
    shards = await uow.ledger.merchant_payables(merchant.id, code)
    locked = await uow.ledger.lock_wallets([*shards, wallet.id])
    postings = [
        Posting(wallet.id, code, total),
        *debit_in_order(locked, shards, total, code, customer=False),
    ]
    tx = Transaction.start(
        TransactionKind.SETTLEMENT,
        Money(total, code),
        now,
        status=TransactionStatus.COMPLETED,
        source_wallet_id=postings[1].wallet_id,
        target_wallet_id=wallet.id,
        description=f"Settlement: {merchant.name}",
        metadata={"merchant_id": str(merchant.id), "checkouts": len(sales)},
    )
    await book(
        uow,
        Movement(
            tx,
            postings=postings,
            audit=audit(
                "merchant.settled",
                WORKER,
                actor_id=None,
                target_type="Merchant",
                target_id=merchant.id,
                transaction=tx.reference,
                amount=str(total),
                currency=code.value,
                checkouts=len(sales),
            ),
        ),
    )
    return tx.id
