"""Keep committed notebooks in their stored form (see `mlscratch.course.stored`): results and figures of a run at
the defaults, no widget state, stderr, errors or machine metadata.

    python tools/clean_notebooks.py chapters/*.ipynb          # clean in place
    python tools/clean_notebooks.py --check chapters/*.ipynb  # exit 1 and list what is not clean

`python -m mlscratch chapters run --store` runs the chapters at their defaults and stores them this way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlscratch.course.stored import clean, dumps
from mlscratch.io import write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not clean")
    args = parser.parse_args(argv)
    dirty = []
    for path in args.notebooks:
        original = path.read_text(encoding="utf-8")
        cleaned = dumps(clean(json.loads(original)))
        if cleaned != original:
            dirty.append(path)
            if not args.check:
                write_text(cleaned, path)  # atomically: an interrupted run never truncates a notebook
    verb = "not clean" if args.check else "cleaned"
    for path in dirty:
        print(f"{verb}: {path}")
    if args.check and dirty:
        print(f"run: python tools/clean_notebooks.py {' '.join(map(str, dirty))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
