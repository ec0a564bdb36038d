"""How long a credit decision takes.

1. The pure decision (``stacklo.domain.credit.decide``) with the packaged scorecard loaded
   once, one call per random applicant (every fiat home currency, a few crypto ones, from
   nothing at all to perfect), timed one by one.

    .venv/bin/python bench/credit.py [--applicants 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import latency_line, percentile
from stacklo.domain.credit import Applicant, CreditStatus, EmploymentStatus, decide, load_scorecard
from stacklo.domain.money import CURRENCIES, CurrencyCode, CurrencyKind

FIAT = [c for c in CurrencyCode if CURRENCIES[c].kind is CurrencyKind.FIAT]


def random_applicant(rng: random.Random) -> Applicant:
    """Amounts log-uniform over 0.01 .. 10 million of the currency, a few exactly 0."""

    def money() -> Decimal:
        if rng.random() < 0.05:
            return Decimal(0)
        return Decimal(round(10 ** rng.uniform(-2, 7), 2)).quantize(Decimal("0.01"))

    paid = rng.randrange(0, 40)
    late = rng.randrange(0, paid + 1) if rng.random() < 0.3 else 0
    return Applicant(
        currency=rng.choice(FIAT) if rng.random() < 0.98 else CurrencyCode.BTC,
        kyc_verified=rng.random() < 0.95,
        account_age_days=rng.randrange(0, 3000),
        monthly_income=money(),
        employment=rng.choice(list(EmploymentStatus)),
        inflow_90d=money(),
        average_balance_90d=money(),
        installments_on_time=paid - late,
        installments_late=late,
        plans_defaulted=1 if rng.random() < 0.03 else 0,
    )


def decision_only(applicants: int, seed: int) -> None:
    started = time.perf_counter()
    card = load_scorecard()
    loaded_ms = (time.perf_counter() - started) * 1000
    print(f"1. the pure decision, {applicants} random applicants (scorecard {card.version})")
    print(f"   load_scorecard (once, at start-up): {loaded_ms:.2f} ms")
    rng = random.Random(seed)
    people = [random_applicant(rng) for _ in range(applicants)]
    for person in people[:2000]:  # warm
        decide(person, card)
    samples = []
    outcomes: collections.Counter[CreditStatus] = collections.Counter()
    for person in people:
        begun = time.perf_counter()
        decision = decide(person, card)
        samples.append((time.perf_counter() - begun) * 1000)
        outcomes[decision.status] += 1
    us = [s * 1000 for s in samples]
    print(f"   decide {latency_line(samples)}")
    print(
        f"          p50 {percentile(us, 50):.1f} / p99 {percentile(us, 99):.1f} / "
        f"max {max(us):.1f} µs; {applicants / (sum(samples) / 1000):,.0f} decisions/s"
    )
    shares = ", ".join(
        f"{status.value} {count / applicants:.0%}" for status, count in outcomes.most_common()
    )
    print(f"   outcomes: {shares}")


async def run(args: argparse.Namespace) -> int:
    decision_only(args.applicants, args.seed)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applicants", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
