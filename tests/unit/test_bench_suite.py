"""`make bench`'s plumbing without running a benchmark: what record() writes, the results
file the suite makes of it, and its chart."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import suite
from bench.common import RECORD_ENV, record


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_record_prints_always_and_writes_only_under_the_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "records.jsonl"
    monkeypatch.delenv(RECORD_ENV, raising=False)
    record("demo", {"p50_ms": 1.0}, baseline="the other way", ratio=0.5, target="< 1")
    assert not path.exists()
    assert "ratio to the other way: 0.50 (target < 1)" in capsys.readouterr().out

    monkeypatch.setenv(RECORD_ENV, str(path))
    record("demo", {"p50_ms": 1.0, "case": "first"})
    record("demo", {"p50_ms": 2.0}, baseline="the other way", ratio=2.0)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"bench": "demo", "figures": {"p50_ms": 1.0, "case": "first"}},
        {
            "bench": "demo",
            "figures": {"p50_ms": 2.0},
            "baseline": "the other way",
            "ratio": 2.0,
            "target": None,
        },
    ]


def fake_results(tmp_path: Path) -> Path:
    """The suite's writer over two record lines, as a benchmark's record() calls leave them."""
    records = tmp_path / "credit.jsonl"
    records.write_text(
        json.dumps({"bench": "credit", "figures": {"case": "decide", "p50_ms": 0.02}})
        + "\n"
        + json.dumps(
            {
                "bench": "credit",
                "figures": {"case": "apply", "p50_ms": 9.1, "p99_ms": 15.3},
                "baseline": "the 50 ms target (p99)",
                "ratio": 0.306,
                "target": "< 1",
            }
        )
        + "\n"
    )
    runs = [
        suite.Run("credit", "bench/credit.py", ["python", "bench/credit.py"], 0, 12.5),
        suite.Run("reads", "bench/reads.py", ["python", "bench/reads.py"], note="not found"),
        suite.Run("uploads", "bench/uploads.py", ["python", "bench/uploads.py"], 1, 3.0),
    ]
    machine = suite.machine_facts(
        dsn=f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres",
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
    )
    return suite.write_results(
        tmp_path / "results",
        started=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        runs=runs,
        entries=suite.read_records(records, "credit"),
        machine=machine,
        git={"commit": "abc1234", "dirty": False},
        quick=True,
        command=["bench/suite.py", "--quick"],
        wall_seconds=15.5,
    )


def test_results_file_has_the_machine_the_runs_and_every_record(tmp_path: Path) -> None:
    path = fake_results(tmp_path)
    assert path.name == "20250102T030405Z-abc1234.json"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    results = json.loads(path.read_text())
    machine = results["machine"]
    for fact in ("cpu_model", "cpu_count", "memory_gib", "os", "kernel", "python"):
        assert machine[fact], fact
    assert machine["postgresql"] is None and machine["redis"] is None  # nothing listening
    assert results["date"] == "2025-01-02T03:04:05Z"
    assert results["git"] == {"commit": "abc1234", "dirty": False}
    assert results["quick"] is True
    assert [(r["name"], r["status"]) for r in results["runs"]] == [
        ("credit", 0),
        ("reads", None),
        ("uploads", 1),
    ]
    assert [e["figures"]["case"] for e in results["entries"]] == ["decide", "apply"]
    assert all(e["run"] == "credit" for e in results["entries"])


def test_chart_is_a_png(tmp_path: Path) -> None:
    results = json.loads(fake_results(tmp_path).read_text())
    chart = suite.render_chart(results, tmp_path / "latest.png")
    data = chart.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000


def test_chart_rows_read_targets_and_latencies() -> None:
    rows = suite.chart_rows(
        [
            {"run": "a", "figures": {"p50_ms": 1}},  # no ratio: not charted
            {
                "run": "b",
                "figures": {"x_p50_ms": 2, "x_p99_ms": 5},
                "ratio": 0.3,
                "target": ">= 0.5",
            },
            {"run": "c", "figures": {"case": "one"}, "ratio": 0.4, "target": "< 1"},
            {"run": "d", "figures": {}, "ratio": 2.0, "baseline": "e"},
            {"run": "t", "bench": "t.hot", "figures": {}, "ratio": 0.6, "target": ">= 0.5"},
        ]
    )
    assert [(r.label, r.met, r.p50, r.p99) for r in rows] == [
        ("b", False, 2.0, 5.0),
        ("c: one", True, None, None),
        ("d", None, None, None),
        ("t.hot", True, None, None),
    ]
    assert suite.parse_target("≤ 0.25") == ("<=", 0.25)
    assert suite.parse_target("0.5") == (None, 0.5)
    assert suite.parse_target(None) is None


def test_only_selects_rows_by_name_or_script() -> None:
    assert [b.name for b in suite.selected(["transfers", "credit,uploads"])] == [
        "transfers",
        "credit",
        "uploads",
    ]
    assert [b.name for b in suite.selected([])] == [b.name for b in suite.BENCHMARKS]
    with pytest.raises(SystemExit):
        suite.selected(["nope"])
