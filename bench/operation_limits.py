"""What refusing a hostile operation costs, and what it leaves for everyone else.

1. In process: the server-side CPU of refusing each kind of bomb (every text unique, so no
   cache helps), next to the gate's cost for an ordinary dashboard query.
2. Over HTTP: an ordinary query's latency alone, then while four clients send bombs as fast
   as they can; the refusals' own latency.
3. Memory: the server's RSS before and at the peak of 48 concurrent log-ins with the default
   Argon2 cost (64 MiB each).

    .venv/bin/python bench/operation_limits.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                     [--seconds 5] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CHEAP_ARGON2,
    DEFAULT_DSN,
    UNTHROTTLED,
    cpu_seconds,
    latency_figures,
    latency_line,
    percentile,
    record,
    started_server,
    status_kib,
)
from stacklo.api import schema
from stacklo.config import Settings
from stacklo.data.buckets import SharedBuckets
from stacklo.domain.budget import Bucket, Budget
from stacklo.web.endpoint import query_refused

HEAVY = (
    "me { wallets { entries(first: 100) { edges { node { amount { amount } "
    "transaction { reference } } } } } }"
)
BOMBS: dict[str, Callable[[int], str]] = {
    "audit alias bomb (1000 aliases, 93 KB)": lambda n: (
        f"# {n}\n{{ " + " ".join(f"a{i}: {HEAVY}" for i in range(1000)) + " }"
    ),
    "cost (3 heavy aliases)": lambda n: (
        f"# {n}\n{{ " + " ".join(f"a{i}: {HEAVY}" for i in range(3)) + " }"
    ),
    "tokens (2,500 in 5 KB)": lambda n: f"# {n}\n{{ " + "a " * 2500 + "}",
    "depth (12 levels)": lambda n: (
        f"# {n}\n"
        + "{ me { wallets { entries { edges { node { transaction { entries { transaction "
        "{ entries { transaction { id } } } } } } } } } } }"
    ),
    "fragments (2^30 aliases)": lambda n: (
        f"# {n}\nquery {{ me {{ ...F0 }} }}\n"
        + "\n".join(f"fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
        + "\nfragment F30 on User { x: email }"
    ),
    "two logIns": lambda n: (
        f"# {n}\nmutation {{ "
        + 'a: logIn(input: {email: "a@b.co", password: "x"}) { user { id } } '
        + 'b: logIn(input: {email: "a@b.co", password: "y"}) { user { id } } }'
    ),
}
ORDINARY = (
    "{ me { email wallets { id balance { amount currency } } "
    "transactions(first: 20) { edges { node { id reference status amount { amount } } } } } }"
)


async def in_process(rounds: int) -> None:
    settings = Settings()

    async def nobody() -> None:
        return None

    # No database: the ordinary query resolves `me` to null, so it measures the gate,
    # validation, the cost budget's take in process memory and a trivial execution.
    budget = Budget(
        SharedBuckets(None), Bucket("cost", 10**12, 10**12), Bucket("money", 10**12, 10**12)
    )
    context = SimpleNamespace(
        services=SimpleNamespace(settings=settings, budget=budget),
        socket=None,
        viewer=nobody,
        meta=SimpleNamespace(ip_address="127.0.0.1"),
        response=None,
    )
    print(f"1. refusal cost in process (server CPU, unique texts, {rounds} rounds each)")
    counter = itertools.count()
    cases: dict[str, Callable[[int], str]] = {
        **BOMBS,
        "ordinary query: gate + validation": lambda n: f"# {n}\n{ORDINARY}",
    }
    for name, make in cases.items():
        samples = []
        for _ in range(rounds):
            text = make(next(counter))
            started = time.perf_counter()
            if query_refused(text, settings) is None:
                result = await schema.execute(text, context_value=context)
                if name.startswith("ordinary"):
                    assert not result.errors, result.errors
                else:
                    first = result.errors[0].extensions if result.errors else None
                    code = (first or {}).get("code")
                    assert code == "QUERY_TOO_COMPLEX", (name, result.errors)
            else:
                assert not name.startswith("ordinary")
            samples.append((time.perf_counter() - started) * 1000)
        print(f"   {name:42s} {latency_line(samples)}")
        record("operation_limits", {"case": f"in process: {name}", **latency_figures(samples)})


async def sign_up(http: httpx.AsyncClient, base: str) -> str:
    response = await http.post(
        base + "/graphql",
        json={
            "query": """mutation($i: SignUpInput!) { signUp(input: $i) {
                       session { accessToken } userErrors { code } } }""",
            "variables": {
                "i": {
                    "email": f"bench-{time.monotonic_ns()}@example.com",
                    "password": "correct horse battery",
                    "fullName": "Bench",
                }
            },
        },
    )
    token: str = response.json()["data"]["signUp"]["session"]["accessToken"]
    return token


async def over_http(dsn: str, seconds: float) -> None:
    async with (
        started_server(dsn, **CHEAP_ARGON2, **UNTHROTTLED) as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        token = await sign_up(http, server.base)
        headers = {"authorization": f"Bearer {token}"}

        async def ordinary(until: float, samples: list[float]) -> None:
            while time.monotonic() < until:
                started = time.perf_counter()
                response = await http.post(
                    server.base + "/graphql", json={"query": ORDINARY}, headers=headers
                )
                assert "errors" not in response.json(), response.text
                samples.append((time.perf_counter() - started) * 1000)

        async def bombs(until: float, samples: list[float], counter: Any) -> None:
            makers = list(BOMBS.values())
            while time.monotonic() < until:
                text = makers[next(counter) % len(makers)](next(counter))
                started = time.perf_counter()
                response = await http.post(
                    server.base + "/graphql", json={"query": text}, headers=headers
                )
                assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
                samples.append((time.perf_counter() - started) * 1000)

        alone: list[float] = []
        await ordinary(time.monotonic() + seconds, alone)
        print(f"2. over HTTP, one server process, {seconds:g} s each")
        print(f"   ordinary query alone:            {latency_line(alone)}")
        with_bombs: list[float] = []
        refused: list[float] = []
        counter = itertools.count()
        cpu = cpu_seconds(server.pid)
        until = time.monotonic() + seconds
        await asyncio.gather(
            ordinary(until, with_bombs), *(bombs(until, refused, counter) for _ in range(4))
        )
        used = cpu_seconds(server.pid) - cpu
        print(f"   ordinary query beside 4 bombers: {latency_line(with_bombs)}")
        print(f"   bombs refused:                   {latency_line(refused)}")
        print(
            f"   {len(refused) / seconds:.0f} bombs refused/s; server CPU {used / seconds:.0%} "
            f"of a core ({used / max(len(refused) + len(with_bombs), 1) * 1000:.2f} ms a request)"
        )
        alone_figures = {"case": "over HTTP: ordinary query alone", **latency_figures(alone)}
        record("operation_limits", alone_figures)
        record(
            "operation_limits",
            {
                "case": "over HTTP: bombs refused",
                **latency_figures(refused),
                "refused_per_s": round(len(refused) / seconds, 1),
                "server_cpu_share": round(used / seconds, 3),
            },
        )
        record(
            "operation_limits",
            {"case": "over HTTP: ordinary query beside 4 bombers", **latency_figures(with_bombs)},
            baseline="the ordinary query alone (p50)",
            ratio=percentile(with_bombs, 50) / percentile(alone, 50),
        )


async def memory(dsn: str) -> None:
    async with (
        started_server(dsn, **UNTHROTTLED) as server,
        httpx.AsyncClient(timeout=120) as http,
    ):
        email = f"mem-{time.monotonic_ns()}@example.com"
        password = "correct horse battery"
        await http.post(
            server.base + "/graphql",
            json={
                "query": "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
                "variables": {"i": {"email": email, "password": password, "fullName": "M"}},
            },
        )
        before, peak_before = status_kib(server.pid, "VmRSS"), status_kib(server.pid, "VmHWM")
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(
                http.post(
                    server.base + "/graphql",
                    json={
                        "query": """mutation($i: LogInInput!) { logIn(input: $i) {
                                   session { accessToken } } }""",
                        "variables": {"i": {"email": email, "password": password}},
                    },
                )
                for _ in range(48)
            )
        )
        took = time.perf_counter() - started
        peak = status_kib(server.pid, "VmHWM")
        codes = [a.status_code for a in answers]
        ok = sum(1 for a in answers if (a.json().get("data") or {}).get("logIn"))
        busy = sum(1 for a in answers if a.status_code == 429)
        print("3. 48 concurrent log-ins, Argon2id 64 MiB t=3 p=4 (the defaults)")
        print(
            f"   RSS before {before / 1024:.0f} MiB (peak so far {peak_before / 1024:.0f} MiB); "
            f"peak during {peak / 1024:.0f} MiB; {ok} signed in, {busy} told to retry (429), "
            f"statuses {sorted(set(codes))}, all answered in {took:.1f} s "
            f"(p50 of one: {percentile([took], 50):.1f} s)"
        )
        record(
            "operation_limits",
            {
                "case": "48 concurrent log-ins",
                "rss_before_mib": round(before / 1024, 1),
                "peak_before_mib": round(peak_before / 1024, 1),
                "peak_during_mib": round(peak / 1024, 1),
                "signed_in": ok,
                "told_to_retry": busy,
                "seconds": round(took, 2),
            },
        )


async def run(args: argparse.Namespace) -> int:
    await in_process(args.rounds)
    await over_http(args.dsn, args.seconds)
    await memory(args.dsn)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help="a PostgreSQL server to make a scratch database on"
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=200)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
