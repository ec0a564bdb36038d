"""Sum up a fault-suite run: ``python -m tests.faults.summary FILE`` (``make faults`` does).

FILE holds the JSON lines ``tests/faults/report.record`` wrote, one per scenario run.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

TOTALLED = ("faults", "requests", "acknowledged", "lost", "duplicated")


def main(path: str) -> int:
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        print("no fault scenario recorded figures")
        return 1
    totals: Counter[str] = Counter()
    for line in lines:
        figures = {k: v for k, v in line.items() if k not in ("scenario", "at")}
        print(f"{line['scenario']:>20}  " + ", ".join(f"{k}={v}" for k, v in figures.items()))
        for name in TOTALLED:
            value = figures.get(name)
            if isinstance(value, int):
                totals[name] += value
    print(
        f"{'all':>20}  scenarios={len(lines)}, " + ", ".join(f"{k}={totals[k]}" for k in TOTALLED)
    )
    return 1 if totals["lost"] or totals["duplicated"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
