"""What parser and validation caching saves per operation.

    .venv/bin/python bench/parse_cache.py [--iterations 2000]

Runs a trivial operation and a realistic dashboard one through the production schema
(ParserCache and ValidationCache on) and through the same schema without them, in process,
and prints the mean and median time per operation for each. No database is touched: the
operations read static data, so the difference is parsing and validation alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

from strawberry.schema.config import StrawberryConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import record
from stacklo.api import Mutation, Query, schema
from stacklo.config import Settings
from stacklo.data.buckets import SharedBuckets
from stacklo.domain.budget import Bucket, Budget
from stacklo.observability import observe_operation
from stacklo.schema.common import DECIMAL_SCALAR
from stacklo.schema.errors import ErrorPolicy, QuietSchema

TRIVIAL = "query Trivial { __typename }"

DASHBOARD = """
query Dashboard {
  currencies { code name kind decimals }
  me { id email fullName roles kycStatus wallets { id currency { code } balance { amount currency }
       heldBalance { amount } availableBalance { amount } status createdAt } }
  a: currencies { code }
  b: currencies { decimals }
}
"""


async def measure(target: QuietSchema, operation: str, iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        result = await target.execute(operation, context_value=_Anonymous())
        samples.append(time.perf_counter() - start)
        assert result.errors is None, result.errors
    return samples


class _Anonymous:
    """Just enough context for `me` to answer null without a database (the production
    schema's cost budget takes from buckets in process memory, never empty)."""

    services = type(
        "Services",
        (),
        {
            "settings": Settings(),
            "budget": Budget(
                SharedBuckets(None),
                Bucket("cost", 10**12, 10**12),
                Bucket("money", 10**12, 10**12),
            ),
        },
    )
    socket = None
    meta = type("Meta", (), {"ip_address": "127.0.0.1"})
    response = None

    async def viewer(self) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    uncached = QuietSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True, scalar_map={Decimal: DECIMAL_SCALAR}),
        extensions=[ErrorPolicy, observe_operation],
    )
    for name, operation in (("trivial", TRIVIAL), ("dashboard", DASHBOARD)):
        p50s: dict[str, float] = {}
        means: dict[str, float] = {}
        for label, target in (("without caches", uncached), ("with caches", schema)):
            asyncio.run(measure(target, operation, 200))  # warm up
            samples = asyncio.run(measure(target, operation, args.iterations))
            means[label] = statistics.mean(samples) * 1000
            p50s[label] = statistics.median(samples) * 1000
            print(
                f"{name:>9} {label:>15}: mean {means[label]:.3f} ms, "
                f"p50 {p50s[label]:.3f} ms per op ({args.iterations} runs)"
            )
        record(
            "parse_cache",
            {
                "case": f"{name} operation",
                "p50_ms": round(p50s["with caches"], 4),
                "mean_ms": round(means["with caches"], 4),
                "uncached_p50_ms": round(p50s["without caches"], 4),
                "uncached_mean_ms": round(means["without caches"], 4),
                "iterations": args.iterations,
            },
            baseline="without caches (p50)",
            ratio=p50s["with caches"] / p50s["without caches"],
        )


if __name__ == "__main__":
    main()
