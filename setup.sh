#!/usr/bin/env bash
# One command to set everything up and run the main job:
#   bash setup.sh            # venv + install + data check + run every chapter (papermill)
#   bash setup.sh --no-run   # venv + install only (what CI does before the tests)
# Data: real Omniglot from $MLSCRATCH_DATA, ../shared/data/omniglot, the cache, or a download;
# if none can be had, the chapters say loudly that they fall back to synthetic glyphs.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/python -m mlscratch data info || true
if [ "${1:-}" != "--no-run" ]; then
  .venv/bin/python -m mlscratch chapters run
fi
