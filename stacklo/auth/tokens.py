"""JWT access tokens (short-lived, signed) and opaque refresh tokens (stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from stacklo.domain.errors import Unauthenticated
from stacklo.domain.models import Viewer
from stacklo.domain.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: datetime


class InvalidAccessToken(Exception):
    """Any reason a bearer token is refused; the reason is logged, never shown."""


class JwtTokens:
    REQUIRED = ("iss", "aud", "sub", "iat", "exp", "jti", "sid")

    def __init__(self, secret: str, algorithm: str, issuer: str, audience: str, ttl: timedelta):
        self._secret = secret
        self._algorithm = algorithm
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl

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


class Authenticator:
    """Bearer token -> Viewer. One query: the session must still be live (logout is immediate)."""

    def __init__(self, tokens: JwtTokens, uow: UnitOfWorkFactory, clock: Clock):
        self._tokens = tokens
        self._uow = uow
        self._clock = clock

    async def authenticate(self, bearer: str) -> Viewer:
        try:
            claims = self._tokens.decode_access(bearer)
        except InvalidAccessToken as e:
            raise Unauthenticated("The access token is invalid or has expired.") from e
        async with self._uow(read_only=True) as uow:
            user = await uow.sessions.active_viewer(
                claims.user_id, claims.session_id, self._clock()
            )
        if user is None:
            raise Unauthenticated("The session has ended; sign in again.")
        return Viewer(user=user, session_id=claims.session_id, token_expires_at=claims.expires_at)
