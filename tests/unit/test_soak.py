"""The soak's judgement without running it: the trend, each series' rule, the warm-up, the
pacing and the event count by cursor, on made-up samples."""

from __future__ import annotations

import math
import uuid
from array import array

import pytest

from bench import soak
from bench.common import User

MINUTE = 60.0
TIMES = [10.0 * i for i in range(61)]  # a 10-minute run sampled every 10 s


def test_slope_is_the_least_squares_fit() -> None:
    assert soak.slope([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(2.0)
    assert soak.slope([0, 1, 2, 3], [5, 5, 5, 5]) == 0.0
    # noise around a line: the fit, not the end points
    assert soak.slope([0, 1, 2, 3, 4], [0, 2, 1, 3, 2]) == pytest.approx(0.5)
    assert soak.slope([1], [4]) == 0.0
    assert soak.slope([2, 2], [1, 9]) == 0.0


def test_memory_that_climbs_by_5_percent_is_a_leak_and_a_step_in_warmup_is_not() -> None:
    unit, rule = soak.rule_for("rss serve/1")
    assert (unit, rule) == ("MiB", soak.Rule("growth", 0.05))
    # 100 MiB, rising 1 MiB a minute after the warm-up: 8 MiB over the judged 8 minutes
    leaking = [100 + max(0.0, t - 120) / MINUTE for t in TIMES]
    verdict = soak.judge("rss serve/1", unit, TIMES, leaking, rule, warmup=120)
    assert verdict.flat is False
    assert verdict.samples == 49
    assert verdict.slope_per_minute == pytest.approx(1.0)
    assert verdict.growth == pytest.approx(8.0)
    assert (verdict.start, verdict.end) == (pytest.approx(100.0), pytest.approx(108.0))

    # pools and arenas grow 40 MiB in the first two minutes, then nothing: flat
    settling = [140.0 - 40 * max(0.0, 1 - t / 120) for t in TIMES]
    assert soak.judge("rss serve/1", unit, TIMES, settling, rule, warmup=120).flat is True
    # counted from the start the same series would be judged a leak
    assert soak.judge("rss serve/1", unit, TIMES, settling, rule, warmup=0).flat is False

    # a sawtooth (garbage collected every minute) around a level: flat
    sawtooth = [120 + (t % MINUTE) / 10 for t in TIMES]
    assert soak.judge("rss worker", unit, TIMES, sawtooth, rule, warmup=120).flat is True
    # shrinking is never a leak
    shrinking = [150 - t / 60 for t in TIMES]
    assert soak.judge("rss worker", unit, TIMES, shrinking, rule, warmup=120).flat is True


def test_descriptors_and_connections_hold_within_a_bound() -> None:
    assert soak.rule_for("fds serve/2") == ("fds", soak.Rule("rise", soak.FD_BOUND))
    assert soak.rule_for("pg connections (database)")[1] == soak.Rule("rise", soak.PG_BOUND)
    assert soak.rule_for("redis sockets worker")[1] == soak.Rule("rise", soak.REDIS_BOUND)
    rule = soak.Rule("rise", 4)
    steady = [30 + (i % 3) for i in range(len(TIMES))]  # 30, 31, 32, 30...
    assert soak.judge("pg", "conns", TIMES, steady, rule, warmup=120).flat is True
    leaking = [30 + i // 10 for i in range(len(TIMES))]  # one more every 100 s
    verdict = soak.judge("pg", "conns", TIMES, leaking, rule, warmup=120)
    assert verdict.flat is False
    assert (verdict.low, verdict.high) == (31, 36)
    # a pool filling during the warm-up is not counted
    filling = [10 + min(i, 12) for i in range(len(TIMES))]
    assert soak.judge("pg", "conns", TIMES, filling, rule, warmup=120).flat is True
    # one window's reconnections overlapping is a spike, not a leak
    spike = [171.0] * len(TIMES)
    spike[len(TIMES) // 2] = 180.0
    assert soak.judge("fds", "fds", TIMES, spike, soak.Rule("rise", 8), warmup=120).flat is True


def test_p99_compares_the_last_third_with_the_second() -> None:
    unit, rule = soak.rule_for("p99 transfers")
    assert (unit, rule) == ("ms", soak.Rule("thirds", 0.25, 5.0))
    judged = [t for t in TIMES if t >= 120]
    third = len(judged) // 3

    def p99(second: float, last: float) -> list[float]:
        """Warm-up at 500 ms, then 40 ms, the second third at ``second``, the last at ``last``,
        with one outlier window in each (medians ignore it)."""
        values = []
        for t in TIMES:
            if t < 120:
                values.append(500.0)
                continue
            i = judged.index(t)
            if i >= len(judged) - third:
                level = last
            elif i >= len(judged) - 2 * third:
                level = second
            else:
                level = 40.0
            values.append(level * (8 if i % 7 == 3 else 1))
        return values

    assert soak.judge("p99", unit, TIMES, p99(40, 49), rule, warmup=120).flat is True  # +22%
    assert soak.judge("p99", unit, TIMES, p99(40, 52), rule, warmup=120).flat is False  # +30%
    assert soak.judge("p99", unit, TIMES, p99(8, 12), rule, warmup=120).flat is True  # +4 ms
    assert soak.judge("p99", unit, TIMES, p99(60, 30), rule, warmup=120).flat is True  # better
    # the warm-up's 500 ms are left out: without it, the same run is judged on them
    verdict = soak.judge("p99", unit, TIMES, p99(40, 40), rule, warmup=120)
    assert verdict.flat is True
    assert verdict.high == 320.0  # the outliers are in the range, not in the medians


def test_errors_must_be_none_and_info_is_not_judged() -> None:
    unit, rule = soak.rule_for("errors (not completed, socket errors)")
    zeros = [0.0] * len(TIMES)
    assert soak.judge("errors", unit, TIMES, zeros, rule, warmup=120).flat is True
    one = [*zeros[:-1], 1.0]
    assert soak.judge("errors", unit, TIMES, one, rule, warmup=120).flat is False
    unit, rule = soak.rule_for("p50 transfers")
    assert rule.kind == "info"
    climbing = [float(t) for t in TIMES]
    assert soak.judge("p50", unit, TIMES, climbing, rule, warmup=120).flat is None


def test_too_few_samples_fail_a_judged_series_and_missing_values_are_skipped() -> None:
    rule = soak.Rule("growth", 0.05)
    verdict = soak.judge("rss", "MiB", [0, 10, 130], [1, 2, 3], rule, warmup=120)
    assert verdict.flat is False
    assert "too few" in verdict.why
    assert math.isnan(verdict.slope_per_minute)
    # a process that could not be read in one sample leaves a gap, not a zero
    values = [100.0] * len(TIMES)
    values[30] = math.nan
    verdict = soak.judge("rss", "MiB", TIMES, values, rule, warmup=120)
    assert (verdict.flat, verdict.samples) == (True, 48)


def test_verdicts_judge_every_series_of_the_samples() -> None:
    samples = [
        soak.Sample(t, {"rss serve": 80.0, "fds serve": 13.0, "p50 transfers": 9.0}) for t in TIMES
    ]
    samples[0].values.pop("p50 transfers")  # the sample before the load has no latency
    judged = {v.name: v for v in soak.verdicts(samples, warmup=120)}
    assert {n: v.flat for n, v in judged.items()} == {
        "rss serve": True,
        "fds serve": True,
        "p50 transfers": None,
    }
    assert judged["rss serve"].rule == "growth < 5% of mean"


def test_pacing_moves_towards_the_target_rate() -> None:
    # 16 connections at 100/s want a 160 ms cycle; 80/s means 200 ms: 40 ms less pause
    assert soak.next_pause(150.0, 16, 100.0, 80.0) == pytest.approx(110.0)
    assert soak.next_pause(150.0, 16, 100.0, 125.0) == pytest.approx(182.0)
    assert soak.next_pause(10.0, 16, 100.0, 50.0) == 0.0  # saturated: no pause, never negative
    assert soak.next_pause(10.0, 16, 100.0, 0.0) == 5.0  # nothing completed: halved


def test_events_are_counted_by_cursor() -> None:
    assert soak.cursor_position(soak.position_cursor(12345)) == 12345
    with pytest.raises(ValueError, match="not a stream cursor"):
        soak.cursor_position(soak.position_cursor(1).replace("c", "d"))

    alice, bob = uuid.uuid4(), uuid.uuid4()
    user = User("a@example.com", "token", "wallet")
    phone = soak.Socket(0, user, alice, rates=False)
    laptop = soak.Socket(1, user, alice, rates=False)
    other = soak.Socket(2, user, bob, rates=False)
    expected = {
        (alice, "transaction"): {11, 13, 15},
        (alice, "wallet"): {12, 14},
        (bob, "transaction"): {11},
        (bob, "wallet"): {16},
    }
    phone.positions["t"].extend([11, 13, 15])
    phone.positions["w"].extend([12, 14])
    laptop.positions["t"].extend([11, 15, 15])  # 13 missing, 15 twice
    laptop.positions["w"].extend([12, 14, 16])  # 16 was bob's
    other.positions["t"].extend([11])
    other.positions["w"].extend([16])
    check = soak.check_events([phone, laptop, other], expected)
    assert (check.expected, check.received) == (12, 13)
    assert (check.missing, check.duplicates, check.foreign) == (1, 1, 1)
    assert check.sockets_short == 1
    assert check.by_topic == {
        "transaction": {"expected": 7, "received": 7, "missing": 1, "duplicates": 1},
        "wallet": {"expected": 5, "received": 6, "missing": 0, "duplicates": 0},
    }
    assert not check.ok
    laptop.positions = {"t": array("q", [11, 13, 15]), "w": array("q", [12, 14])}
    assert soak.check_events([phone, laptop, other], expected).ok
