"""The test suite's wall-clock time and its slowest tests, written to a JSON file.

    python benchmarks/bench_suite.py                       # the README's full command (target: 10 minutes)
    python benchmarks/bench_suite.py -m "not chapters and not slow"     # the fast tier (target: 2 minutes)

Runs pytest in a subprocess with `--durations`, exactly as the README gives it plus the marker expression, and
records the seconds, the pass/fail counts and the slowest tests with the machine it ran on (cores, CPU, load
average before and after: a busy machine makes every figure slower).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

from mlscratch.io import write_json
from mlscratch.measure import cpu_name

SLOWEST = 15


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--marker", default=None, help='a pytest marker expression, e.g. "not chapters"')
    parser.add_argument("--out", default="runs/bench_suite.json", help="where the JSON goes")
    args = parser.parse_args()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--durations={SLOWEST}"]
    command += ["-m", args.marker] if args.marker else []
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    slowest = re.findall(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)", result.stdout, flags=re.MULTILINE)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    record = {
        "command": " ".join(command[1:]),
        "seconds": round(seconds, 1),
        "returncode": result.returncode,
        "summary": summary,
        "slowest": [{"seconds": float(s), "phase": phase, "test": test} for s, phase, test in slowest],
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },  # fmt: skip
    }
    write_json(record, args.out)
    print(f"{record['command']}: {seconds:.0f} s ({seconds / 60:.1f} min); {summary}")
    for row in record["slowest"]:
        print(f"  {row['seconds']:7.1f} s  {row['phase']:<8} {row['test']}")
    print(f"written to {args.out}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
