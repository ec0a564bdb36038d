"""MEDIUM 4: password guessing costs the guesser, not the server.

Authentication attempts are throttled per client address and failed password checks per
account, with RateLimit / Retry-After header fields and RATE_LIMITED; password hashing runs
a bounded number at a time, so memory stays flat however many arrive together.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from typing import Any

import pytest
from argon2 import PasswordHasher
from limits import parse

from stacklo.auth.passwords import Argon2Hasher
from stacklo.auth.throttle import AuthThrottle
from stacklo.domain.errors import RateLimited
from tests.helpers import LOG_IN, PASSWORD, GraphQLHTTP, sign_up, unique_email
from tests.security.conftest import REDIS_DB, Cluster, new_address


async def _log_in(client: GraphQLHTTP, email: str, password: str) -> Any:
    return await client.http.post(
        "/graphql",
        json={"query": LOG_IN, "variables": {"input": {"email": email, "password": password}}},
    )


async def test_attempts_from_one_address_are_throttled_with_rate_limit_headers(
    production: Cluster,
) -> None:
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    remaining = []
    for _ in range(20):
        response = await _log_in(client, unique_email(), "wrong password 1")
        assert response.status_code == 200
        assert response.json()["data"]["logIn"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
        # Both policies the request counted against: the sign-in throttle and the cost bucket.
        policies = response.headers["ratelimit-policy"].split(", ")
        assert policies == ['"auth-address";q=20;w=60', '"cost";q=5000;w=50']
        state = response.headers["ratelimit"].split(", ")[0]
        assert state.startswith('"auth-address";')
        remaining.append(int(state.split("r=")[1].split(";")[0]))
    assert remaining == list(range(19, -1, -1))

    refused = await _log_in(client, unique_email(), "wrong password 1")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == int(refused.headers["retry-after"])
    # Sign-ups from the address count too; another address is unaffected.
    signing_up = await client.http.post(
        "/graphql",
        json={
            "query": "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            "variables": {"i": {"email": unique_email(), "password": PASSWORD, "fullName": "X"}},
        },
    )
    assert signing_up.status_code == 429
    elsewhere = GraphQLHTTP(production.a.base_url, client_address=new_address())
    assert (await _log_in(elsewhere, unique_email(), "wrong password 1")).status_code == 200
    await client.aclose()
    await elsewhere.aclose()


async def test_failed_passwords_for_one_account_lock_even_the_right_one(
    production: Cluster,
) -> None:
    owner = GraphQLHTTP(production.a.base_url, client_address=new_address())
    victim = await sign_up(owner)
    for n in range(10):  # a botnet: every guess from another address
        guesser = GraphQLHTTP(production.a.base_url, client_address=new_address())
        wrong = await _log_in(guesser, victim.email, f"guess number {n}")
        assert wrong.json()["data"]["logIn"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
        await guesser.aclose()
    late = GraphQLHTTP(production.a.base_url, client_address=new_address())
    right = await _log_in(late, victim.email, PASSWORD)
    assert right.status_code == 429
    assert right.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert right.json()["data"] is None  # the password was not even checked
    # Another account, from the same address, is not held back.
    other = await sign_up(owner)
    assert (await _log_in(late, other.email, PASSWORD)).json()["data"]["logIn"]["session"]
    await owner.aclose()
    await late.aclose()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("where", ["redis", "redis unreachable", "memory"])
async def test_the_throttle_holds_in_redis_without_it_and_in_memory(where: str) -> None:
    url = {
        "redis": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "redis unreachable": f"redis://127.0.0.1:{_closed_port()}/0",
        "memory": None,
    }[where]
    throttle = AuthThrottle(url, parse("3/minute"), parse("2/minute"))
    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}-{uuid.uuid4().hex[:6]}"
    for left in (2, 1, 0):
        assert (await throttle.attempt(address)).remaining == left
    with pytest.raises(RateLimited) as refused:
        await throttle.attempt(address)
    assert refused.value.retry_after is not None and 1 <= refused.value.retry_after <= 60
    account = unique_email()
    await throttle.check_account(account)
    await throttle.failed(account)
    await throttle.failed(account)
    with pytest.raises(RateLimited):
        await throttle.check_account(account)


async def test_instances_share_the_count_through_redis() -> None:
    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    one = AuthThrottle(url, parse("2/minute"), parse("2/minute"))
    two = AuthThrottle(url, parse("2/minute"), parse("2/minute"))
    address = "2001:db8::" + uuid.uuid4().hex[:4]
    await one.attempt(address)
    # Another host in the same /64 is the same client.
    await two.attempt(address.rsplit(":", 1)[0] + ":1")
    with pytest.raises(RateLimited):
        await one.attempt(address)


class _Counting:
    """argon2's hasher, counting how many of its hashes run at once."""

    def __init__(self, hasher: PasswordHasher):
        self._hasher = hasher
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0

    def verify(self, digest: str, password: str) -> bool:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self._hasher.verify(digest, password)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)


async def test_password_hashes_run_a_bounded_number_at_a_time() -> None:
    hasher = Argon2Hasher(2, 16_384, 1, concurrency=2, queue=100)
    digest = await hasher.hash(PASSWORD)
    counting = _Counting(hasher._hasher)
    hasher._hasher = counting  # type: ignore[assignment]
    results = await asyncio.gather(*(hasher.verify(digest, PASSWORD) for _ in range(12)))
    assert all(results)
    assert counting.most == 2


async def test_past_the_queue_a_hash_is_refused_not_queued() -> None:
    hasher = Argon2Hasher(2, 16_384, 1, concurrency=1, queue=2)
    digest = await hasher.hash(PASSWORD)
    outcomes = await asyncio.gather(
        *(hasher.verify(digest, PASSWORD) for _ in range(6)), return_exceptions=True
    )
    refused = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(refused) == 3 and all(o is True for o in outcomes if o not in refused)
    assert refused[0].retry_after == 1
