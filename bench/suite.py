"""Every benchmark in one run (`make bench`), its figures kept with the machine they came from.

Each benchmark runs as a process of its own, so a crash or a hang is reported and the next one
still runs. STACKLO_BENCH_RECORD names a temporary file that its ``record()`` calls append to;
the suite collects those lines, the machine's facts and what ran (command, wall time, exit
status) into ``bench/results/<UTC time>-<commit>.json`` and charts the run in
``bench/results/latest.png``. It exits non-zero when any benchmark failed.

    .venv/bin/python bench/suite.py [--quick] [--only NAME ...] [--list]
    .venv/bin/python bench/suite.py --chart bench/results/<file>.json   # redraw latest.png

The chart reads two conventions from what benchmarks record: ``target`` is stated on the
ratio (``"< 1"``, ``">= 0.5"``), and figures named ``p50_ms`` and ``p99_ms`` (or
``<prefix>_p50_ms``) are the latencies of what the ratio measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import redis
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_DSN, RECORD_ENV, fetchval, redacted

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHART = "latest.png"
REDIS_URL = "redis://127.0.0.1:6379/0"  # where the benchmarks' Redis is, for its version
TAIL_LINES = 25  # of a failed benchmark's output, kept in the results
TAIL_WIDTH = 400  # characters of each (a server log line can be a whole SQL statement)
GRACE_SECONDS = 60  # after SIGINT, for a benchmark to stop its servers and drop its databases


@dataclass(frozen=True)
class Benchmark:
    """One row of the suite: a script and its arguments for a full and a ``--quick`` run."""

    name: str  # what --only selects and the chart shows
    script: str  # from the repository's root
    args: tuple[str, ...]  # the full run: all rows together take about 10 minutes on 2 cores
    quick: tuple[str, ...]  # --quick: a smoke run of the same code paths
    timeout: float = 600  # seconds; then it is interrupted and counted as failed


# The suite's benchmarks, in the order they run. Edit here to add one or size it.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        # One server and scratch database for every pattern, then the raw baseline and pgbench.
        "transfers",
        "bench/transfers.py",
        ("--patterns", "uniform,merchant,deposits", "--seconds", "20"),
        ("--patterns", "uniform,merchant,deposits", "--seconds", "3", "--deposits", "3000"),
    ),
    Benchmark(
        "fanout",
        "bench/fanout.py",
        ("--subscribers", "5000", "--seconds", "20"),
        ("--subscribers", "50", "--seconds", "3"),
        timeout=1200,
    ),
    Benchmark(
        "reads",
        "bench/reads.py",
        ("--seconds", "5", "--clients", "4"),
        ("--seconds", "1", "--clients", "2"),
    ),
    Benchmark(
        "operation_limits",
        "bench/operation_limits.py",
        ("--seconds", "5", "--rounds", "200"),
        ("--seconds", "1", "--rounds", "20"),
    ),
    Benchmark(
        "cost_budget",
        "bench/cost_budget.py",
        ("--seconds", "5", "--rounds", "5000"),
        ("--seconds", "1", "--rounds", "200"),
    ),
    Benchmark(
        "credit",
        "bench/credit.py",
        ("--applicants", "100000", "--applications", "2000", "--clients", "4"),
        ("--applicants", "5000", "--applications", "200", "--clients", "4"),
    ),
    Benchmark(
        "uploads",
        "bench/uploads.py",
        ("--uploads", "20", "--clients", "4", "--megabytes", "10"),
        ("--uploads", "4", "--clients", "2", "--megabytes", "2"),
    ),
    Benchmark(
        "parse_cache",
        "bench/parse_cache.py",
        ("--iterations", "2000"),
        ("--iterations", "200"),
    ),
)


@dataclass
class Run:
    """What happened to one benchmark; ``status`` is None when it did not run."""

    name: str
    script: str
    command: list[str]
    status: int | None = None
    wall_seconds: float = 0.0
    note: str | None = None
    tail: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status not in (0, None)


# -------------------------------------------------------------------------- running ----


def selected(only: Sequence[str]) -> list[Benchmark]:
    """``--only`` names: a row's name, or a script's stem for all its rows."""
    if not only:
        return list(BENCHMARKS)
    wanted = {name.strip() for names in only for name in names.split(",") if name.strip()}
    known = {b.name for b in BENCHMARKS} | {Path(b.script).stem for b in BENCHMARKS}
    if unknown := wanted - known:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; known: {sorted(known)}")
    return [b for b in BENCHMARKS if b.name in wanted or Path(b.script).stem in wanted]


def scrubbed(text: str) -> str:
    """``text`` without this machine's paths: results are committed, the paths mean nothing
    elsewhere."""
    return text.replace(str(ROOT) + os.sep, "").replace(str(Path.home()), "~")


def shortened(line: str) -> str:
    return line if len(line) <= TAIL_WIDTH else line[: TAIL_WIDTH - 1] + "…"


def shown_command(script: str, args: Sequence[str]) -> list[str]:
    """The command as someone would type it in the repository (interpreter relative)."""
    python = Path(sys.executable)
    interpreter = str(python.relative_to(ROOT)) if python.is_relative_to(ROOT) else "python"
    return [interpreter, script, *(redacted(a) if "://" in a else a for a in args)]


def stop(process: subprocess.Popen[str]) -> None:
    """SIGINT first, as Ctrl-C would: a benchmark then stops its servers and drops its scratch
    databases. SIGTERM, then SIGKILL to its process group, if it does not end in time."""
    for sig, grace in ((signal.SIGINT, GRACE_SECONDS), (signal.SIGTERM, 20.0)):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_benchmark(bench: Benchmark, quick: bool, record_path: Path) -> Run:
    """Run one benchmark, its output passed through as it comes, its records to
    ``record_path``. Ctrl-C stops it cleanly and is raised again afterwards."""
    args = bench.quick if quick else bench.args
    run = Run(bench.name, bench.script, shown_command(bench.script, args))
    if not (ROOT / bench.script).is_file():
        run.note = f"{bench.script} not found: skipped"
        print(f"-- {bench.name}: {run.note}", flush=True)
        return run
    print(f"\n== {bench.name}: {' '.join(run.command)}", flush=True)
    env = {**os.environ, RECORD_ENV: str(record_path), "PYTHONUNBUFFERED": "1"}
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    interrupted: KeyboardInterrupt | None = None
    # A session of its own: a signal reaches it once, from here, never twice from a terminal.
    with subprocess.Popen(
        [sys.executable, bench.script, *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", bufsize=1, start_new_session=True,
    ) as process:  # fmt: skip
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            stop(process)

        watchdog = threading.Timer(bench.timeout, on_timeout)
        watchdog.daemon = True
        watchdog.start()
        assert process.stdout is not None
        while True:
            try:
                for line in process.stdout:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                    tail.append(shortened(scrubbed(line.rstrip("\n"))))
                break
            except KeyboardInterrupt as e:  # keep reading while it winds down
                if interrupted is None:
                    interrupted = e
                    threading.Thread(target=stop, args=(process,), daemon=True).start()
        run.status = process.wait()
        watchdog.cancel()
    run.wall_seconds = round(time.monotonic() - started, 2)
    if timed_out.is_set():
        run.note = f"timed out after {bench.timeout:g} s"
    if run.failed:
        run.tail = list(tail)
    if interrupted is not None:
        raise interrupted
    return run


def read_records(path: Path, run: str) -> list[dict[str, Any]]:
    """The JSON lines a benchmark's ``record()`` calls wrote, each tagged with its run's name
    (several runs share one script and so one ``bench`` name)."""
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            print(f"-- {run}: record line {number} is not JSON, left out", file=sys.stderr)
            continue
        entries.append({"run": run, **entry})
    return entries


# ------------------------------------------------------------------------- the machine ----


def _command_output(*command: str) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def _proc_field(path: str, name: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    return None


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def _postgresql_version(dsn: str) -> str | None:
    try:
        return str(asyncio.run(asyncio.wait_for(fetchval(dsn, "SHOW server_version"), 10)))
    except Exception:  # a fact to report, not a reason to fail
        return None


def _redis_version(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        with client:
            info: Mapping[str, Any] = client.info("server")  # type: ignore[assignment]
            return str(info["redis_version"])
    except Exception:  # a fact to report, not a reason to fail
        return None


def machine_facts(dsn: str = DEFAULT_DSN, redis_url: str = REDIS_URL) -> dict[str, Any]:
    """What the figures depend on besides the code: on another machine they differ."""
    memory_kib = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(int(memory_kib.split()[0]) / 1024**2, 1) if memory_kib else None,
        "os": _os_name(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgresql": _postgresql_version(dsn),
        "redis": _redis_version(redis_url),
        "pgbench": _command_output("pgbench", "--version"),
        "wrk": _command_output("wrk", "-v"),
    }


def git_facts() -> dict[str, Any]:
    """The commit measured; ``dirty`` when the working tree had changes on top of it."""
    commit = _command_output("git", "rev-parse", "--short", "HEAD")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    return {"commit": commit, "dirty": bool(status.stdout.strip()) if commit else None}


# -------------------------------------------------------------------------- results ----


def write_results(
    directory: Path,
    *,
    started: datetime,
    runs: Sequence[Run],
    entries: Sequence[Mapping[str, Any]],
    machine: Mapping[str, Any],
    git: Mapping[str, Any],
    quick: bool,
    command: Sequence[str],
    wall_seconds: float,
) -> Path:
    """``<directory>/<UTC time>-<commit>.json``, written whole or not at all."""
    results = {
        "date": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "quick": quick,
        "command": list(command),
        "wall_seconds": round(wall_seconds, 1),
        "machine": dict(machine),
        "git": dict(git),
        "runs": [asdict(run) for run in runs],
        "entries": [dict(entry) for entry in entries],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{started:%Y%m%dT%H%M%SZ}-{git.get('commit') or 'unknown'}.json"
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


# ---------------------------------------------------------------------------- chart ----

TARGET = re.compile(r"(<=|>=|≤|≥|<|>)?\s*(\d+(?:\.\d+)?|\.\d+)")
MET, MISSED, NO_TARGET = "#2e7d32", "#c62828", "#5c7c99"


def parse_target(target: object) -> tuple[str | None, float] | None:
    """``"< 1"`` -> ("<", 1.0); a bare number has no direction; None when there is none."""
    if target is None:
        return None
    found = TARGET.search(str(target))
    if not found:
        return None
    sign = {"≤": "<=", "≥": ">="}.get(found.group(1) or "", found.group(1))
    return sign, float(found.group(2))


def target_met(ratio: float, target: object) -> bool | None:
    sign, value = parse_target(target) or (None, 0.0)
    if sign is None:
        return None
    return {
        "<": ratio < value,
        "<=": ratio <= value,
        ">": ratio > value,
        ">=": ratio >= value,
    }[sign]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def latencies(figures: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(p50, p99) in ms: ``p50_ms``/``p99_ms``, else the first ``<prefix>_p50_ms`` pair."""
    for key in figures:
        match = re.fullmatch(r"(.*?)p50_ms", key)
        if match:
            p50 = _number(figures[key])
            p99 = _number(figures.get(match.group(1) + "p99_ms"))
            if p50 is not None and p50 > 0:
                return p50, p99 if p99 and p99 > 0 else None
    return None, None


@dataclass
class Row:
    label: str
    baseline: str
    ratio: float
    target: str | None
    met: bool | None
    p50: float | None
    p99: float | None


def chart_rows(entries: Iterable[Mapping[str, Any]]) -> list[Row]:
    """One row per recorded ratio, in the order the benchmarks ran."""
    rows = []
    for entry in entries:
        ratio = _number(entry.get("ratio"))
        if ratio is None:
            continue
        figures = entry.get("figures") or {}
        case = figures.get("case")
        run, bench = str(entry.get("run") or ""), str(entry.get("bench") or "")
        # The more specific of the two: "transfers.merchant" from a run named "transfers".
        label = (bench if run in bench else run) or "?"
        if case:
            label += f": {case}"
        target = str(entry["target"]) if entry.get("target") is not None else None
        p50, p99 = latencies(figures)
        rows.append(
            Row(
                label if len(label) <= 60 else label[:59] + "…",
                str(entry.get("baseline") or ""),
                ratio,
                target,
                target_met(ratio, target),
                p50,
                p99,
            )
        )
    return rows


def _log_limits(values: Iterable[float], room: float = 4) -> tuple[float, float]:
    """Log-axis limits around ``values``, with ``room`` (a factor) on the right for labels."""
    positive = [v for v in values if v > 0] or [1.0]
    return min(positive) / 3, max(positive) * room


def _ratio_panel(ax: Axes, rows: Sequence[Row]) -> None:
    marks = [parse_target(r.target) for r in rows]
    low, high = _log_limits([r.ratio for r in rows] + [m[1] for m in marks if m] + [1.0])
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    for y, (row, mark) in enumerate(zip(rows, marks, strict=True)):
        color = {True: MET, False: MISSED, None: NO_TARGET}[row.met]
        value = max(row.ratio, low)
        ax.barh(y, value - low, left=low, height=0.6, color=color)
        if mark:
            ax.plot([mark[1]] * 2, [y - 0.42, y + 0.42], color="black", linewidth=2.2)
        text = f"{row.ratio:.3g}" + (f"  (target {row.target})" if row.target else "")
        ax.text(max(value, mark[1] if mark else 0) * 1.1, y, text, va="center", fontsize=8.5)
    ax.axvline(1.0, color="#999999", linestyle="--", linewidth=0.8)
    ax.set_yticks(
        range(len(rows)),
        [f"{r.label}\nvs {r.baseline}" if r.baseline else r.label for r in rows],
        fontsize=8.5,
    )
    ax.invert_yaxis()
    ax.set_xlabel("ratio to baseline (log; | = target; green met, red missed, blue none)")
    ax.grid(axis="x", which="major", alpha=0.3)


def _latency_panel(ax: Axes, rows: Sequence[Row]) -> None:
    values = [v for r in rows for v in (r.p50, r.p99) if v]
    low, high = _log_limits(values, room=20)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    for y, row in enumerate(rows):
        if row.p50 is None:
            continue
        if row.p99 is not None:
            ax.plot([row.p50, row.p99], [y, y], color="#888888", linewidth=1.5)
            ax.plot(row.p99, y, marker="D", color="#e65100", markersize=5)
        ax.plot(row.p50, y, marker="o", color="#1565c0", markersize=5)
        shown = f"{row.p50:.3g}" + (f" / {row.p99:.3g}" if row.p99 is not None else "")
        ax.text(max(row.p99 or row.p50, row.p50) * 1.15, y, shown, va="center", fontsize=8)
    ax.set_xlabel("latency ms (log): ● p50  ◆ p99")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.tick_params(axis="y", left=False)


def render_chart(results: Mapping[str, Any], path: Path) -> Path:
    """A PNG of one run: each ratio to its baseline with its target, and beside it the p50 and
    p99 of what was measured; failed and skipped benchmarks are named underneath."""
    rows = chart_rows(results.get("entries", []))
    with_latency = any(r.p50 is not None for r in rows)
    height = 2.4 + 0.55 * max(len(rows), 1)
    figure = Figure(figsize=(15 if with_latency else 10, height), layout="constrained")
    FigureCanvasAgg(figure)
    machine = results.get("machine", {})
    git = results.get("git", {})
    title = (
        f"Stacklo benchmarks, {str(results.get('date', '?'))[:10]}, "
        f"commit {git.get('commit') or '?'}{' (uncommitted changes)' if git.get('dirty') else ''}"
        f"{', quick run' if results.get('quick') else ''}"
    )
    about = (
        f"{machine.get('cpu_count', '?')} x {machine.get('cpu_model', '?')}, "
        f"{machine.get('memory_gib', '?')} GiB; {machine.get('python', '?')}; "
        f"PostgreSQL {machine.get('postgresql') or '?'}; Redis {machine.get('redis') or '?'}"
    )
    figure.suptitle(f"{title}\n{about}", fontsize=10.5)
    if not rows:
        ax = figure.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no ratios recorded in this run", ha="center", va="center")
    elif with_latency:
        left, right = figure.subplots(1, 2, sharey=True, width_ratios=[3, 2])
        _ratio_panel(left, rows)
        _latency_panel(right, rows)
    else:
        _ratio_panel(figure.add_subplot(), rows)
    runs = results.get("runs", [])
    failed = [
        f"{r['name']} (exit {r['status']}{'; ' + r['note'] if r.get('note') else ''})"
        for r in runs
        if r.get("status") not in (0, None)
    ]
    skipped = [f"{r['name']} ({r.get('note')})" for r in runs if r.get("status") is None]
    problems = [f"failed: {', '.join(failed)}"] if failed else []
    problems += [f"skipped: {', '.join(skipped)}"] if skipped else []
    if problems:
        figure.supxlabel("; ".join(problems), fontsize=8.5, wrap=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, format="png", dpi=110)
    temporary.replace(path)
    return path


# ----------------------------------------------------------------------------- main ----


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m {seconds % 60:04.1f}s"


def summary(runs: Sequence[Run], entries: Sequence[Mapping[str, Any]]) -> None:
    print("\n== suite ==")
    for run in runs:
        if run.status is None:
            print(f"{run.name:22s} {run.note}")
        else:
            outcome = "ok" if run.status == 0 else f"FAILED (exit {run.status})"
            extra = f"; {run.note}" if run.note else ""
            print(f"{run.name:22s} {outcome:18s} {minutes(run.wall_seconds)}{extra}")
    for run in runs:
        if run.failed:
            print(f"\n-- {run.name} exited {run.status}; its last lines:")
            print("\n".join("   " + line for line in run.tail))
    rows = chart_rows(entries)
    if rows:
        print("\nratios to baseline:")
    for row in rows:
        verdict = {True: "met", False: "NOT met", None: ""}[row.met]
        target = f" (target {row.target}{': ' + verdict if verdict else ''})" if row.target else ""
        print(f"  {row.label:60s} {row.ratio:8.3g} vs {row.baseline}{target}")


def _terminate(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # SIGTERM stops the running benchmark as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run of each")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run these only (a row's name or a script's stem; repeat or comma-separate)",
    )
    parser.add_argument("--list", action="store_true", help="show the benchmarks and exit")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    parser.add_argument(
        "--chart", type=Path, metavar="RESULTS_JSON", help="only redraw the chart from a file"
    )
    args = parser.parse_args(argv)
    benches = selected(args.only)
    if args.list:
        for bench in benches:
            print(f"{bench.name:22s} {' '.join(shown_command(bench.script, bench.args))}")
        return 0
    if args.chart:
        results = json.loads(args.chart.read_text(encoding="utf-8"))
        print(f"chart: {render_chart(results, args.results / CHART)}")
        return 0

    signal.signal(signal.SIGTERM, _terminate)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    runs: list[Run] = []
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stacklo_bench_") as tmp:
        for bench in benches:
            record_path = Path(tmp) / f"{bench.name}.jsonl"
            try:
                runs.append(run_benchmark(bench, args.quick, record_path))
            except KeyboardInterrupt:
                print(f"\n-- interrupted during {bench.name}: no results written", flush=True)
                return 130
            entries += read_records(record_path, bench.name)
    wall = time.monotonic() - started
    summary(runs, entries)
    path = write_results(
        args.results,
        started=started_at,
        runs=runs,
        entries=entries,
        machine=machine_facts(),
        git=git_facts(),
        quick=args.quick,
        command=["bench/suite.py", *map(scrubbed, argv if argv is not None else sys.argv[1:])],
        wall_seconds=wall,
    )
    results = json.loads(path.read_text(encoding="utf-8"))
    chart = render_chart(results, args.results / CHART)
    print(f"\nresults: {scrubbed(str(path))}\nchart:   {scrubbed(str(chart))}")
    print(f"suite wall time {minutes(wall)}")
    return 1 if any(run.failed for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
