"""What a KYC document upload costs the server: latency and memory.

``stacklo serve`` on a migrated scratch database stores documents in its local folder. Users
upload PDFs of ``--megabytes`` each as GraphQL multipart requests, one at a time and then
``--clients`` at once. Printed: each phase's latency (from the request's first byte to the
answer: parsing the multipart body into a spooled temporary file, judging the type by its
first bytes, copying it into storage, the row and the audit record) and the server's peak
resident memory (VmHWM) before and after, so the growth per concurrent upload shows whether a
file is ever held whole in memory.

    .venv/bin/python bench/uploads.py [--uploads 20] [--clients 4] [--megabytes 10]
                                      [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import (
    CHEAP_ARGON2,
    DEFAULT_DSN,
    UNTHROTTLED,
    BenchError,
    User,
    latency_figures,
    latency_line,
    percentile,
    record,
    sign_up,
    started_server,
    status_kib,
)

UPLOAD = """mutation BenchUpload($f: Upload!) {
  uploadKycDocument(input: {type: UTILITY_BILL, file: $f}) {
    document { sizeBytes } userErrors { code message } } }"""
MiB = 1024 * 1024


def document(megabytes: int) -> bytes:
    head = b"%PDF-1.4\n"
    return head + b"0" * (megabytes * MiB - len(head))


async def upload(client: httpx.AsyncClient, base: str, user: User, body: bytes) -> float:
    started = time.perf_counter()
    response = await client.post(
        base + "/graphql",
        headers={"authorization": f"Bearer {user.token}", "apollo-require-preflight": "1"},
        data={
            "operations": json.dumps({"query": UPLOAD, "variables": {"f": None}}),
            "map": json.dumps({"0": ["variables.f"]}),
        },
        files={"0": ("bill.pdf", body, "application/pdf")},
    )
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise BenchError(f"upload: HTTP {response.status_code} {response.text[:300]}")
    payload = response.json()["data"]["uploadKycDocument"]
    if payload["userErrors"] or payload["document"]["sizeBytes"] != len(body):
        raise BenchError(f"upload: {payload}")
    return elapsed


async def run(args: argparse.Namespace) -> int:
    body = document(args.megabytes)
    run_id = uuid.uuid4().hex[:8]
    settings = {**CHEAP_ARGON2, **UNTHROTTLED}
    settings["STACKLO_KYC_MAX_BYTES"] = str(max(args.megabytes * MiB, 10 * MiB))
    settings["STACKLO_MAX_UPLOAD_BYTES"] = str(max(args.megabytes * MiB, 10 * MiB) + MiB)
    async with (
        started_server(args.dsn, **settings) as server,
        httpx.AsyncClient(timeout=120) as client,
    ):
        rounds = max(1, args.uploads // args.clients)
        # A user of their own for every upload: no row lock shared between clients.
        users = [
            await sign_up(client, server.base, "upload", run_id, i, "NGN")
            for i in range(1 + args.uploads + rounds * args.clients)
        ]
        fresh = iter(users)
        await upload(client, server.base, next(fresh), body)  # warm up
        before = status_kib(server.pid, "VmHWM")
        one = [await upload(client, server.base, next(fresh), body) for _ in range(args.uploads)]
        after_one = status_kib(server.pid, "VmHWM")
        print(f"{args.megabytes} MB, one at a time: {latency_line(one)}")
        print(
            f"  {args.megabytes * len(one) / (sum(one) / 1000):.0f} MB/s; server peak RSS "
            f"{before / 1024:.0f} -> {after_one / 1024:.0f} MiB"
        )
        record(
            "uploads",
            {
                "case": f"{args.megabytes} MB, one at a time",
                **latency_figures(one, 2),
                "mb_per_s": round(args.megabytes * len(one) / (sum(one) / 1000), 1),
                "peak_rss_before_mib": round(before / 1024, 1),
                "peak_rss_after_mib": round(after_one / 1024, 1),
            },
        )

        many: list[float] = []
        for _ in range(rounds):
            many += await asyncio.gather(
                *(upload(client, server.base, next(fresh), body) for _ in range(args.clients))
            )
        after_many = status_kib(server.pid, "VmHWM")
        print(f"{args.megabytes} MB, {args.clients} at once: {latency_line(many)}")
        print(
            f"  server peak RSS {after_one / 1024:.0f} -> {after_many / 1024:.0f} MiB "
            f"({(after_many - after_one) / 1024 / args.clients:.1f} MiB per concurrent "
            f"upload of {args.megabytes} MB)"
        )
        record(
            "uploads",
            {
                "case": f"{args.megabytes} MB, {args.clients} at once",
                **latency_figures(many, 2),
                "peak_rss_after_mib": round(after_many / 1024, 1),
                "mib_per_concurrent_upload": round(
                    (after_many - after_one) / 1024 / args.clients, 2
                ),
            },
            baseline="one at a time (p50)",
            ratio=percentile(many, 50) / percentile(one, 50),
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--megabytes", type=int, default=10)
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help="a PostgreSQL server to make a scratch database on"
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
