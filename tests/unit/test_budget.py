"""The token bucket's rules, on a clock of our choosing."""

from stacklo.domain.budget import Bucket, Level, Taken, take

BUCKET = Bucket("cost", capacity=100, rate=10.0)


def test_a_new_bucket_is_full_and_refills_at_its_rate_up_to_capacity() -> None:
    allowed, level = take(BUCKET, None, now=0.0, cost=100)
    assert allowed and level == Level(0.0, 0.0)
    allowed, level = take(BUCKET, level, now=2.5, cost=20)  # 25 earned
    assert allowed and level.available == 5.0
    allowed, level = take(BUCKET, level, now=1000.0, cost=0)
    assert level.available == 100.0


def test_a_refusal_takes_nothing_and_says_when_to_retry() -> None:
    _, level = take(BUCKET, None, now=0.0, cost=95)
    allowed, after = take(BUCKET, level, now=0.0, cost=30)
    assert not allowed and after.available == 5.0
    refused = Taken(BUCKET, allowed, 30, after.available)
    assert refused.retry_after == 3  # 25 missing at 10 a second: 2.5 s, rounded up
    assert refused.headers() == ('"cost";q=100;w=10', '"cost";r=5;t=10')


def test_a_refund_never_passes_the_capacity() -> None:
    _, level = take(BUCKET, None, now=0.0, cost=10)
    allowed, level = take(BUCKET, level, now=0.0, cost=-50)
    assert allowed and level.available == 100.0
