"""Real clients from npm (Apollo Client, graphql-http, graphql-ws, Chromium via playwright-core),
driven by small Node scripts in this folder. ``make install`` runs ``npm ci`` here.

Each script prints one JSON document on stdout; :func:`run_node` returns it parsed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
)


def _require_installed() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is not installed: the test clients need Node.js 20 or newer")
    if not (HERE / "node_modules" / ".package-lock.json").is_file():
        pytest.fail("test clients are not installed: `make test` runs npm ci in tests/clients")


def chromium() -> str:
    """The browser binary the page tests drive (Debian's chromium package)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium found: `make test` installs the chromium package")


async def run_node(script: str, *args: str, seconds: float = 120) -> Any:
    """Run ``tests/clients/<script>`` with ``args``; fail the test on a non-zero exit."""
    _require_installed()
    process = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / script),
        *args,
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        raise
    if process.returncode != 0:
        pytest.fail(f"{script} exited {process.returncode}:\n{err.decode()[-4000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])
