"""Every chapter at its defaults, timed against its 100 s budget; the times go to a JSON file and a table.

    python benchmarks/bench_chapters.py                       # all chapters, real Omniglot when configured
    python benchmarks/bench_chapters.py --only 02 03 --out runs/bench-chapters

A thin wrapper over `python -m mlscratch chapters run` (papermill, the chapter's own parameters): the
benchmark times exactly what a reader runs. Timing is wall-clock and depends on the machine's load; run it
on an idle machine and quote the machine (`nproc`, torch threads) with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from mlscratch.cli import main as mlscratch
from mlscratch.commands.chapters import BUDGET_SECONDS
from mlscratch.io import write_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NN", help="chapters whose name starts with these")
    parser.add_argument("--out", default="runs/bench-chapters", help="executed notebooks and times.json")
    args = parser.parse_args()

    command = ["chapters", "run", "--out", args.out, "--no-progress"] + (["--only", *args.only] if args.only else [])
    code = mlscratch(command)
    chapters = json.loads((Path(args.out) / "summary.json").read_text())["chapters"]
    times = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "budget_seconds": BUDGET_SECONDS,
        "chapters": {c["chapter"]: {"seconds": c["seconds"], "status": c["status"]} for c in chapters},
    }
    path = write_json(times, Path(args.out) / "times.json")
    over = [name for name, c in times["chapters"].items() if c["seconds"] > BUDGET_SECONDS]
    print(
        f"\n{len(chapters)} chapters, {sum(c['seconds'] for c in chapters):.0f} s in all; over budget: {over or 'none'}"
    )
    print(f"times in {path}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
