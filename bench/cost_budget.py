"""What the cost budget adds to every operation.

1. One bucket take (the Lua script in Redis; process memory; Redis configured but unreachable,
   so process memory after the first failure): microseconds per call.
2. Over HTTP, one client in a loop: an ordinary dashboard query (the viewer's wallets and 20
   latest transactions, which takes its requested cost and gives back what it did not use)
   with the buckets in process memory, then in Redis.

    .venv/bin/python bench/cost_budget.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                          [--redis redis://127.0.0.1:6379/15] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CHEAP_ARGON2,
    DEFAULT_DSN,
    UNTHROTTLED,
    graphql,
    latency_figures,
    latency_line,
    percentile,
    record,
    sign_up,
    started_server,
)
from stacklo.data.buckets import SharedBuckets
from stacklo.domain.budget import Bucket

DASHBOARD = """{ me { wallets { currency { code } balance { amount } }
  transactions(first: 20) { edges { node { reference status amount { amount currency } } } } } }"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def takes(redis: str, rounds: int) -> None:
    bucket = Bucket("bench", capacity=10**12, rate=10**12)
    print(f"1. one take, {rounds} rounds (p50 / p99 / max)")
    for name, store in (
        ("Redis (Lua, one round trip)", SharedBuckets(redis)),
        ("process memory", SharedBuckets(None)),
        ("Redis unreachable: memory", SharedBuckets(f"redis://127.0.0.1:{_closed_port()}/0")),
    ):
        key = uuid.uuid4().hex
        await store.take(bucket, key, 1)  # warm: the script loaded, the outage noticed
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            await store.take(bucket, key, 1)
            samples.append((time.perf_counter() - started) * 1000)
        print(f"   {name:30s} {latency_line(samples)}")
        record("cost_budget", {"case": f"one take: {name}", **latency_figures(samples)})


async def over_http(dsn: str, redis: str, seconds: float) -> None:
    print(f"2. dashboard query over HTTP, one client in a loop, {seconds:g} s each")
    in_memory_p50: float | None = None
    for name, extra in (("buckets in memory", {}), ("buckets in Redis", {"REDIS_URL": redis})):
        async with (
            started_server(dsn, **CHEAP_ARGON2, **UNTHROTTLED, **extra) as server,
            httpx.AsyncClient(timeout=60) as http,
        ):
            user = await sign_up(http, server.base, "budget", uuid.uuid4().hex[:8], 0, "NGN")
            headers = {"authorization": f"Bearer {user.token}"}
            await graphql(http, server.base, DASHBOARD, token=user.token)
            samples = []
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                started = time.perf_counter()
                response = await http.post(
                    server.base + "/graphql", json={"query": DASHBOARD}, headers=headers
                )
                samples.append((time.perf_counter() - started) * 1000)
                cost = response.json()["extensions"]["cost"]
                assert cost["requestedQueryCost"] > cost["actualQueryCost"], cost
            rate = len(samples) / seconds
            print(f"   {name:18s} {latency_line(samples)}; {rate:.0f} requests/s")
            case = {"case": f"dashboard over HTTP, {name}", **latency_figures(samples)}
            case["requests_per_s"] = round(rate, 1)
            if in_memory_p50 is None:
                in_memory_p50 = percentile(samples, 50)
                record("cost_budget", case)
            else:
                record(
                    "cost_budget",
                    case,
                    baseline="buckets in memory (p50)",
                    ratio=percentile(samples, 50) / in_memory_p50,
                )


async def run(args: argparse.Namespace) -> int:
    await takes(args.redis, args.rounds)
    await over_http(args.dsn, args.redis, args.seconds)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help="a PostgreSQL server to make a scratch database on"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5000)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
