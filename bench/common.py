"""What the benchmarks share: a scratch database, a started ``stacklo serve`` on it, process
figures (RSS, CPU) and percentiles. Benchmarks print their figures; nothing here is timed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import string
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class BenchError(Exception):
    """The benchmark could not run (not a slow result: a broken set-up)."""


def plain_dsn(dsn: str) -> str:
    """libpq/asyncpg form: ``postgresql+asyncpg://`` becomes ``postgresql://``."""
    scheme, rest = dsn.split("://", 1)
    return scheme.split("+", 1)[0] + "://" + rest


def with_database(dsn: str, database: str) -> str:
    return urlsplit(plain_dsn(dsn))._replace(path="/" + database).geturl()


def redacted(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    return parts._replace(netloc=parts.netloc.replace(":" + parts.password + "@", ":***@")).geturl()


async def admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(plain_dsn(dsn))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(dsn: str, prefix: str) -> AsyncIterator[str]:
    """A new empty database on the server of ``dsn``; yields its DSN, drops it afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"  # generated identifier, not input
    await admin(dsn, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(dsn, name)
    finally:
        await admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(database_dsn: str, data_dir: str, **settings: str) -> dict[str, str]:
    """The caller's environment without any STACKLO_* (the server runs on its defaults plus
    ``settings``), a scratch database and a random JWT secret."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STACKLO_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    alphabet = string.ascii_letters + string.digits
    env.update(
        STACKLO_DATABASE_URL=database_dsn,
        STACKLO_DATA_DIR=data_dir,
        STACKLO_JWT_SECRET="".join(secrets.choice(alphabet) for _ in range(48)),
        **settings,
    )
    return env


def log_tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the server's own process group (uvicorn workers included), then SIGKILL."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


@dataclass
class Started:
    base: str
    pid: int
    log: Path


@contextlib.asynccontextmanager
async def started_server(dsn: str, workers: int = 1, **settings: str) -> AsyncIterator[Started]:
    """A migrated scratch database and ``stacklo serve`` on it."""
    async with scratch_database(dsn, "stacklo_bench") as database:
        with tempfile.TemporaryDirectory(prefix="stacklo-bench-") as tmp:
            env = base_env(database, tmp, **settings)
            log = Path(tmp) / "server.log"
            with log.open("ab") as out:
                migrate = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "stacklo", "migrate",
                    env=env, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                if await migrate.wait() != 0:
                    raise BenchError(f"stacklo migrate failed:\n{log_tail(log)}")
                port = free_port()
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "stacklo", "serve",
                    "--port", str(port), "--workers", str(workers),
                    env=env, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            try:
                await wait_ready(base, process)
                print(f"started stacklo serve on {base} (database {redacted(database)})")
                yield Started(base, process.pid, log)
            except Exception:
                print(f"server log (tail):\n{log_tail(log)}", file=sys.stderr)
                raise
            finally:
                await stop_process(process)


async def wait_ready(base: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise BenchError(f"server exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(base + "/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchError("server did not become ready within 90 s")


def status_kib(pid: int, field: str) -> int:
    """A figure from /proc/<pid>/status in KiB: VmRSS (now) or VmHWM (peak since start)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"{field} not in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency_line(samples_ms: list[float]) -> str:
    return (
        f"p50 {percentile(samples_ms, 50):.2f} / p99 {percentile(samples_ms, 99):.2f} / "
        f"max {max(samples_ms, default=float('nan')):.2f} ms (n={len(samples_ms)})"
    )
