import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from stacklo.auth.tokens import InvalidAccessToken, JwtTokens, ViewerCache
from stacklo.domain.models import KycStatus, Role, User

SECRET = "s" * 48
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def tokens(**kw: object) -> JwtTokens:
    args: dict[str, object] = {
        "secret": SECRET,
        "algorithm": "HS256",
        "issuer": "stacklo",
        "audience": "stacklo-api",
        "ttl": timedelta(minutes=15),
    }
    args.update(kw)
    return JwtTokens(**args)  # type: ignore[arg-type]


def test_round_trip_carries_user_and_session() -> None:
    user, session = uuid.uuid4(), uuid.uuid4()
    t = tokens()
    raw, expires = t.issue_access(user, session, datetime.now(UTC))
    claims = t.decode_access(raw)
    assert (claims.user_id, claims.session_id) == (user, session)
    assert set(jwt.decode(raw, options={"verify_signature": False})) >= {
        "iss",
        "aud",
        "sub",
        "iat",
        "exp",
        "jti",
    }
    assert expires - datetime.now(UTC) <= timedelta(minutes=15)


def test_a_token_verified_before_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    t = tokens()
    raw, _ = t.issue_access(uuid.uuid4(), uuid.uuid4(), datetime.now(UTC))
    assert t.decode_access(raw) == t.decode_access(raw)  # the second from memory
    later = time.time() + 16 * 60
    monkeypatch.setattr("stacklo.auth.tokens.time.time", lambda: later)
    with pytest.raises(InvalidAccessToken):
        t.decode_access(raw)


def test_a_tampered_copy_of_a_verified_token_is_refused() -> None:
    t = tokens()
    raw, _ = t.issue_access(uuid.uuid4(), uuid.uuid4(), datetime.now(UTC))
    t.decode_access(raw)
    head, body, signature = raw.split(".")
    forged = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidAccessToken):
        t.decode_access(forged)


def test_every_token_has_its_own_jti() -> None:
    t = tokens()
    u, s = uuid.uuid4(), uuid.uuid4()
    first, _ = t.issue_access(u, s, datetime.now(UTC))
    second, _ = t.issue_access(u, s, datetime.now(UTC))
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


def _claims() -> dict[str, object]:
    now = int(datetime.now(UTC).timestamp())
    return {
        "iss": "stacklo",
        "aud": "stacklo-api",
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
        "jti": "j",
    }


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "make",
    [
        lambda: _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".",
        lambda: jwt.encode(_claims(), "w" * 48, algorithm="HS256"),
        lambda: jwt.encode({**_claims(), "aud": "other"}, SECRET, algorithm="HS256"),
        lambda: jwt.encode({**_claims(), "iss": "evil"}, SECRET, algorithm="HS256"),
        lambda: jwt.encode({**_claims(), "exp": 1}, SECRET, algorithm="HS256"),
        lambda: jwt.encode(
            {k: v for k, v in _claims().items() if k != "jti"}, SECRET, algorithm="HS256"
        ),
        lambda: jwt.encode({**_claims(), "sub": "not-a-uuid"}, SECRET, algorithm="HS256"),
        lambda: jwt.encode(_claims(), SECRET, algorithm="HS512"),
        lambda: "garbage",
    ],
    ids=[
        "alg-none",
        "wrong-key",
        "wrong-aud",
        "wrong-iss",
        "expired",
        "no-jti",
        "bad-sub",
        "other-alg",
        "garbage",
    ],
)
def test_bad_tokens_are_refused(make: object) -> None:
    with pytest.raises(InvalidAccessToken):
        tokens().decode_access(make())  # type: ignore[operator]


def test_tampered_payload_is_refused() -> None:
    raw, _ = tokens().issue_access(uuid.uuid4(), uuid.uuid4(), datetime.now(UTC))
    header, _payload, signature = raw.split(".")
    forged = header + "." + _b64({**_claims(), "sub": str(uuid.uuid4())}) + "." + signature
    with pytest.raises(InvalidAccessToken):
        tokens().decode_access(forged)


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    t = tokens()
    raw, digest = t.new_refresh()
    assert digest == t.hash_refresh(raw) and raw not in digest and len(digest) == 64
    assert t.new_refresh()[0] != raw


# ------------------------------------------------------------------ remembered viewers


def _user(name: str = "ada") -> User:
    return User(
        id=uuid.uuid4(),
        email=f"{name}@example.com",
        password_hash="x",
        full_name=name.title(),
        phone_number=None,
        kyc_status=KycStatus.PENDING,
        roles=[Role.CUSTOMER],
        created_at=datetime.now(UTC),
    )


def test_a_remembered_viewer_is_served_until_it_is_too_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("stacklo.auth.tokens.time.monotonic", lambda: now[0])
    cache, session, user = ViewerCache(10), uuid.uuid4(), _user()
    cache.put(session, user, cache.generation)
    now[0] += 9.9
    assert cache.get(session) is user
    now[0] += 0.2
    assert cache.get(session) is None


def test_forgetting_a_session_or_a_user_drops_their_viewers() -> None:
    cache, ada, bo = ViewerCache(10), _user("ada"), _user("bo")
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for session, user in ((first, ada), (second, ada), (third, bo)):
        cache.put(session, user, cache.generation)
    cache.forget_changed({first}, set())
    assert (cache.get(first), cache.get(second), cache.get(third)) == (None, ada, bo)
    cache.forget_changed(set(), {ada.id})
    assert (cache.get(second), cache.get(third)) == (None, bo)


def test_a_lookup_in_flight_while_sessions_ended_is_not_remembered() -> None:
    # The row was read just before the session ended; the news came before the answer.
    cache, session, user = ViewerCache(10), uuid.uuid4(), _user()
    started = cache.generation
    cache.forget_changed({uuid.uuid4()}, set())
    cache.put(session, user, started)
    assert cache.get(session) is None


def test_the_cache_is_bounded_and_off_at_zero() -> None:
    cache = ViewerCache(10, size=2)
    sessions = [uuid.uuid4() for _ in range(3)]
    for session in sessions:
        cache.put(session, _user(), cache.generation)
    assert [cache.get(s) is not None for s in sessions] == [False, True, True]
    off = ViewerCache(0)
    off.put(sessions[0], _user(), off.generation)
    assert off.get(sessions[0]) is None
