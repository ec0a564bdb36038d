"""Throttles for password guessing: per client address and per account.

- Every sign-up, log-in and password change counts against its client address
  (``STACKLO_AUTH_ATTEMPTS_PER_ADDRESS``, default 20 a minute; an IPv6 client counts by its
  /64, the block one host usually holds).
- Every failed password check counts against its account (``STACKLO_AUTH_FAILURES_PER_ACCOUNT``,
  default 10 in 15 minutes, from any address). Past it, the account's password is not even
  checked until the window moves on: the right password is refused too, so a guesser learns
  nothing from it. That also lets a stranger hold an account's log-in back for the window;
  the limit is per account rather than per account and address so that a botnet cannot spread
  its guesses.

Windows are moving (``limits``' moving-window strategy). The counts live in Redis when
``REDIS_URL`` is set, shared by every instance; in process memory otherwise. If Redis cannot
be reached, this process counts in its own memory until it can again (``SharedOrLocal``): the
limits still hold per process, and authentication keeps working.

Each answer carries the address bucket's state as IETF ``RateLimit-Policy`` / ``RateLimit``
header fields (draft-ietf-httpapi-ratelimit-headers); a refusal is the GraphQL error
``RATE_LIMITED`` with ``extensions.retryAfter``, answered 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from stacklo.data.fallback import SharedOrLocal
from stacklo.domain.errors import RateLimited

T = TypeVar("T")

ADDRESS_POLICY = "auth-address"
ACCOUNT_POLICY = "auth-account"


def address_key(address: str | None) -> str:
    """What one client is: its IPv4 address, or its IPv6 /64 (one host's usual allocation)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def account_key(email: str) -> str:
    """Accounts by a digest of the normalised email: no addresses in Redis keys."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Quota:
    """A bucket's state after a request, for the RateLimit header fields."""

    policy: str
    limit: int
    window: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset}',
        }


class AuthThrottle:
    def __init__(
        self,
        redis_url: str | None,
        per_address: RateLimitItem,
        failures_per_account: RateLimitItem,
    ):
        self._per_address = per_address
        self._per_account = failures_per_account
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared = (
            MovingWindowRateLimiter(
                RedisStorage(
                    "async+" + redis_url,
                    implementation="redispy",
                    wrap_exceptions=True,
                    key_prefix="stacklo:throttle",
                    socket_timeout=0.5,
                    socket_connect_timeout=0.5,
                )
            )
            if redis_url
            else None
        )
        self._fallback = SharedOrLocal("throttle")

    async def attempt(self, address: str | None) -> Quota:
        """Count an authentication attempt from ``address``; RATE_LIMITED past the limit."""
        key = address_key(address)
        allowed = await self._hit(self._per_address, ADDRESS_POLICY, key)
        quota = await self._quota(self._per_address, ADDRESS_POLICY, key)
        if not allowed:
            raise Throttled("Too many sign-in attempts from this address; try again later.", quota)
        return quota

    async def check_account(self, email: str) -> None:
        """RATE_LIMITED while the account has used up its failed attempts."""
        key = account_key(email)
        allowed = await self._use(
            lambda limiter: limiter.test(self._per_account, ACCOUNT_POLICY, key)
        )
        if not allowed:
            quota = await self._quota(self._per_account, ACCOUNT_POLICY, key)
            raise Throttled("Too many failed attempts for this account; try again later.", quota)

    async def failed(self, email: str) -> None:
        await self._hit(self._per_account, ACCOUNT_POLICY, account_key(email))

    async def _hit(self, item: RateLimitItem, policy: str, key: str) -> bool:
        return await self._use(lambda limiter: limiter.hit(item, policy, key))

    async def _quota(self, item: RateLimitItem, policy: str, key: str) -> Quota:
        stats = await self._use(lambda limiter: limiter.get_window_stats(item, policy, key))
        window = item.get_expiry()
        reset = max(0, min(window, math.ceil(stats.reset_time - time.time())))
        return Quota(policy, item.amount, window, max(stats.remaining, 0), reset)

    async def _use(self, call: Callable[[MovingWindowRateLimiter], Awaitable[T]]) -> T:
        shared = self._shared
        if shared is None:
            return await call(self._local)
        return await self._fallback.call(lambda: call(shared), lambda: call(self._local))


class Throttled(RateLimited):
    """RATE_LIMITED with the bucket that said no."""

    def __init__(self, message: str, quota: Quota):
        super().__init__(message, retry_after=max(quota.reset, 1))
        self.quota = quota
