"""JWT access tokens (short-lived, signed) and opaque refresh tokens (stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from stacklo.domain.errors import Unauthenticated
from stacklo.domain.models import User, Viewer
from stacklo.domain.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: datetime


class InvalidAccessToken(Exception):
    """Any reason a bearer token is refused; the reason is logged, never shown."""


# How many verified access tokens a process remembers (a few MB at most).
VERIFIED_TOKENS = 20_000


class JwtTokens:
    REQUIRED = ("iss", "aud", "sub", "iat", "exp", "jti", "sid")

    def __init__(self, secret: str, algorithm: str, issuer: str, audience: str, ttl: timedelta):
        self._secret = secret
        self._algorithm = algorithm
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl
        # Tokens already verified, by their exact text: the same bytes carry the same valid
        # signature, so a repeat only needs its expiry checked again.
        self._verified: dict[str, AccessClaims] = {}

    def issue_access(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
    ) -> tuple[str, datetime]:
        expires = now + self._ttl
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "sid": str(session_id),
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=self._algorithm), expires.replace(
            microsecond=0
        )

    def decode_access(self, token: str) -> AccessClaims:
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at.timestamp() > time.time():
                return known
            del self._verified[token]
            raise InvalidAccessToken("Signature has expired")
        claims = self._decode(token)
        if len(self._verified) >= VERIFIED_TOKENS:  # the oldest goes first
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            # Only the configured algorithm: "none" and algorithm-confusion tokens fail here.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": list(self.REQUIRED)},
            )
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as e:
            raise InvalidAccessToken(str(e)) from None

    def new_refresh(self) -> tuple[str, str]:
        token = secrets.token_urlsafe(32)
        return token, self.hash_refresh(token)

    def hash_refresh(self, token: str) -> str:
        # The token has 256 bits of entropy, so a plain SHA-256 is enough (no salt/stretch).
        return hashlib.sha256(token.encode()).hexdigest()


class ViewerCache:
    """Live sessions' viewers, remembered for ``seconds`` so a signed-in request costs no
    database round trip.

    Invariant: a viewer is never served after its session ended and this process heard of it.
    ``forget_changed`` drops entries: called by the session guard as the ended-sessions and
    changed-user events reach every process, and by this process's units of work the moment
    they commit such a change; a lookup that
    was in flight while anything was forgotten is not stored (the generation moved on), so a
    row read just before a session ended cannot outlive the news. If the news is lost (the
    broadcast is down), an entry lives ``seconds`` at most: changes to a user's roles or
    identity status made elsewhere reach a cached viewer within that time too.
    """

    def __init__(self, seconds: float, size: int = 100_000):
        self._seconds = seconds
        self._size = size
        self._entries: dict[uuid.UUID, tuple[float, User]] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, session_id: uuid.UUID) -> User | None:
        found = self._entries.get(session_id)
        if found is None:
            return None
        if time.monotonic() - found[0] > self._seconds:
            del self._entries[session_id]
            return None
        return found[1]

    def put(self, session_id: uuid.UUID, user: User, generation: int) -> None:
        if self._seconds <= 0 or generation != self._generation:
            return
        if len(self._entries) >= self._size:  # the oldest goes first (insertion order)
            del self._entries[next(iter(self._entries))]
        self._entries[session_id] = (time.monotonic(), user)

    def forget_changed(self, sessions: set[uuid.UUID], users: set[uuid.UUID]) -> None:
        """Sessions that ended and users who changed (roles, identity status, password)."""
        self._generation += 1
        for session_id, (_, user) in list(self._entries.items()):
            if session_id in sessions or user.id in users:
                del self._entries[session_id]


class Authenticator:
    """Bearer token -> Viewer. The session must still be live (logout is immediate): one
    query, or none while ``cache`` remembers the session (see ``ViewerCache``)."""

    def __init__(
        self,
        tokens: JwtTokens,
        uow: UnitOfWorkFactory,
        clock: Clock,
        cache: ViewerCache | None = None,
    ):
        self._tokens = tokens
        self._uow = uow
        self._clock = clock
        self.cache = cache or ViewerCache(0)

    async def authenticate(self, bearer: str) -> Viewer:
        try:
            claims = self._tokens.decode_access(bearer)
        except InvalidAccessToken as e:
            raise Unauthenticated("The access token is invalid or has expired.") from e
        user = self.cache.get(claims.session_id)
        if user is None or user.id != claims.user_id:
            generation = self.cache.generation
            async with self._uow(read_only=True) as uow:
                user = await uow.sessions.active_viewer(
                    claims.user_id, claims.session_id, self._clock()
                )
            if user is None:
                raise Unauthenticated("The session has ended; sign in again.")
            self.cache.put(claims.session_id, user, generation)
        return Viewer(user=user, session_id=claims.session_id, token_expires_at=claims.expires_at)
