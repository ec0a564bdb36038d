"""`stacklo ledger verify`: every invariant of the double-entry ledger, checked in SQL.

Each check is one query that returns offending rows (at most ``LIMIT`` of each), so a clean
ledger costs a handful of sequential scans and a broken one names its first violations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

LIMIT = 20

CHECKS: list[tuple[str, str]] = [
    (
        "entries of a transaction sum to zero per currency",
        """SELECT transaction_id, currency, sum(amount) AS total FROM ledger_entries
           GROUP BY transaction_id, currency HAVING sum(amount) <> 0""",
    ),
    (
        "an entry's currency is its account's",
        """SELECT e.id, e.currency, w.currency AS account_currency FROM ledger_entries e
           JOIN wallets w ON w.id = e.wallet_id WHERE e.currency <> w.currency""",
    ),
    (
        "each account's balance equals the sum of its entries",
        """SELECT w.id, w.kind, w.balance, coalesce(s.total, 0) AS entries_total FROM wallets w
           LEFT JOIN (SELECT wallet_id, sum(amount) AS total FROM ledger_entries GROUP BY wallet_id) s
             ON s.wallet_id = w.id
           WHERE w.balance <> coalesce(s.total, 0)""",
    ),
    (
        "balance_after chains: each entry's balance is the previous one plus its amount",
        """SELECT id, wallet_id, balance_after, running FROM (
             SELECT id, wallet_id, balance_after,
                    sum(amount) OVER (PARTITION BY wallet_id ORDER BY id) AS running
             FROM ledger_entries) chained
           WHERE balance_after <> running""",
    ),
    (
        "no customer wallet below zero",
        "SELECT id, balance, held FROM wallets WHERE kind = 'CUSTOMER' AND (balance < 0 OR held < 0)",
    ),
    (
        "held never exceeds balance",
        "SELECT id, balance, held FROM wallets WHERE kind = 'CUSTOMER' AND held > balance",
    ),
    (
        "held equals the withdrawals still in flight",
        """SELECT w.id, w.held, coalesce(p.pending, 0) AS in_flight FROM wallets w
           LEFT JOIN (SELECT source_wallet_id, sum(amount) AS pending FROM ledger_transactions
                      WHERE kind = 'WITHDRAWAL' AND status = 'PROCESSING' GROUP BY source_wallet_id) p
             ON p.source_wallet_id = w.id
           WHERE w.held <> coalesce(p.pending, 0)""",
    ),
    (
        "completed transactions have entries, others have none",
        """SELECT t.reference, t.status, count(e.id) AS entries FROM ledger_transactions t
           LEFT JOIN ledger_entries e ON e.transaction_id = t.id
           GROUP BY t.id
           HAVING (t.status = 'COMPLETED') <> (count(e.id) > 0)""",
    ),
    (
        "a transaction's status is the last of its history",
        """SELECT t.reference, t.status, h.status AS last_recorded FROM ledger_transactions t
           LEFT JOIN LATERAL (SELECT status FROM transaction_status_changes c
                              WHERE c.transaction_id = t.id ORDER BY c.id DESC LIMIT 1) h ON true
           WHERE h.status IS DISTINCT FROM t.status""",
    ),
    (
        "a used quote's transaction moved exactly what the quote locked",
        """SELECT q.id, t.reference FROM quotes q JOIN ledger_transactions t ON t.id = q.transaction_id
           WHERE t.status <> 'COMPLETED' OR t.currency <> q.source_currency
              OR t.amount <> q.source_amount OR t.fee <> q.fee
              OR t.converted_currency IS DISTINCT FROM q.target_currency
              OR t.converted_amount IS DISTINCT FROM q.target_amount""",
    ),
    (
        "a conversion credits its target wallet with exactly the converted amount",
        """SELECT t.reference, t.converted_amount, coalesce(sum(e.amount), 0) AS credited
           FROM ledger_transactions t
           LEFT JOIN ledger_entries e ON e.transaction_id = t.id AND e.wallet_id = t.target_wallet_id
           WHERE t.converted_amount IS NOT NULL AND t.status = 'COMPLETED'
           GROUP BY t.id HAVING coalesce(sum(e.amount), 0) <> t.converted_amount""",
    ),
    (
        "each merchant's payable equals its sales less fees, refunds taken from it and settlements",
        """SELECT m.id, coalesce(p.balance, 0) AS payable,
                  coalesce(s.owed, 0) - coalesce(t.settled, 0) AS expected
           FROM merchants m
           LEFT JOIN (SELECT merchant_id, sum(balance) AS balance FROM wallets
                      WHERE kind = 'MERCHANT_PAYABLE' GROUP BY merchant_id) p
             ON p.merchant_id = m.id
           LEFT JOIN (SELECT merchant_id, sum(amount - fee - refunded_from_payable) AS owed
                      FROM checkouts WHERE paid_at IS NOT NULL GROUP BY merchant_id) s
             ON s.merchant_id = m.id
           LEFT JOIN (SELECT (metadata ->> 'merchant_id')::uuid AS merchant_id,
                             sum(amount) AS settled
                      FROM ledger_transactions WHERE kind = 'SETTLEMENT' AND status = 'COMPLETED'
                      GROUP BY 1) t
             ON t.merchant_id = m.id
           WHERE coalesce(p.balance, 0) <> coalesce(s.owed, 0) - coalesce(t.settled, 0)""",
    ),
    (
        "a paid checkout's payment moved exactly its amount and fee",
        """SELECT c.id, t.reference FROM checkouts c
           LEFT JOIN ledger_transactions t ON t.id = c.payment_transaction_id
           WHERE c.paid_at IS NOT NULL
             AND (t.id IS NULL OR t.kind <> 'CHECKOUT_PAYMENT' OR t.status <> 'COMPLETED'
                  OR t.amount <> c.amount OR t.fee <> c.fee OR t.currency <> c.currency)""",
    ),
    (
        "a checkout's refunds add up to what it says was refunded and returned of the fee",
        """SELECT c.id, c.refunded, coalesce(r.total, 0) AS refunds, c.fee_returned,
                  coalesce(r.fees, 0) AS fees_returned
           FROM checkouts c
           LEFT JOIN (SELECT cr.checkout_id, sum(t.amount) AS total, sum(t.fee) AS fees
                      FROM checkout_refunds cr
                      JOIN ledger_transactions t ON t.id = cr.transaction_id
                      WHERE t.kind = 'REFUND' AND t.status = 'COMPLETED'
                      GROUP BY cr.checkout_id) r ON r.checkout_id = c.id
           WHERE c.refunded <> coalesce(r.total, 0) OR c.fee_returned <> coalesce(r.fees, 0)""",
    ),
    (
        "the BNPL receivable is minus the principal and late fees customers still owe",
        """SELECT c.currency, coalesce(r.balance, 0) AS receivable, coalesce(o.owed, 0) AS owed
           FROM (SELECT currency FROM wallets WHERE kind = 'BNPL_RECEIVABLE'
                 UNION SELECT currency FROM installment_plans) c
           LEFT JOIN (SELECT currency, sum(balance) AS balance FROM wallets
                      WHERE kind = 'BNPL_RECEIVABLE' GROUP BY currency) r
             ON r.currency = c.currency
           LEFT JOIN (SELECT p.currency,
                             sum(i.principal - i.principal_paid + i.late_fee - i.late_fee_paid)
                               AS owed
                      FROM installments i JOIN installment_plans p ON p.id = i.plan_id
                      WHERE i.status IN ('SCHEDULED', 'OVERDUE') GROUP BY p.currency) o
             ON o.currency = c.currency
           WHERE coalesce(r.balance, 0) <> -coalesce(o.owed, 0)""",
    ),
    (
        "a plan's installments add up to its principal and fee",
        """SELECT p.id, p.principal, p.fee, sum(i.principal) AS principals, sum(i.fee) AS fees
           FROM installment_plans p JOIN installments i ON i.plan_id = p.id
           GROUP BY p.id HAVING sum(i.principal) <> p.principal OR sum(i.fee) <> p.fee""",
    ),
]


@dataclass(frozen=True, slots=True)
class Report:
    violations: list[str]
    transactions: int
    entries: int
    accounts: int
    # What customers hold per currency, in the same snapshot as the checks: a total that
    # only transfers between customers touched must not move (the bank test reads it).
    customer_balances: dict[str, Decimal] = field(default_factory=dict)
    customer_held: dict[str, Decimal] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


async def verify(engine: AsyncEngine) -> Report:
    violations: list[str] = []
    # One REPEATABLE READ snapshot: every check sees the same committed state, even while
    # traffic goes on.
    async with engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        for name, query in CHECKS:
            rows = (await conn.execute(text(f"{query} LIMIT {LIMIT}"))).mappings().all()
            violations.extend(f"{name}: {dict(row)}" for row in rows)
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM ledger_transactions), (SELECT count(*) FROM ledger_entries),"
                    " (SELECT count(*) FROM wallets)"
                )
            )
        ).one()
        totals = (
            await conn.execute(
                text(
                    "SELECT currency, sum(balance), sum(held) FROM wallets WHERE kind = 'CUSTOMER'"
                    " GROUP BY currency ORDER BY currency"
                )
            )
        ).all()
    return Report(
        violations,
        int(counts[0]),
        int(counts[1]),
        int(counts[2]),
        {str(row[0]): Decimal(row[1]) for row in totals},
        {str(row[0]): Decimal(row[2]) for row in totals},
    )
