"""What each fault scenario did, for the README's figures: one JSON line per scenario.

``record`` prints the line (visible with ``pytest -s`` and in the failure output) and, when
``STACKLO_FAULT_REPORT`` names a file, appends it there (``make faults`` sums them up).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def record(scenario: str, **figures: Any) -> None:
    """``figures`` are counts such as faults=3, requests=2100, acknowledged=2000, lost=0,
    duplicated=0; keep the names the same across scenarios where they mean the same thing."""
    line = json.dumps({"scenario": scenario, "at": time.time(), **figures}, default=str)
    print(f"FAULTS {line}")
    target = os.environ.get("STACKLO_FAULT_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")
