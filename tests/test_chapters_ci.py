"""Keeping the chapters runnable: every chapter runs, and its checked outputs do not change.

1. papermill smoke run: `python -m mlscratch chapters run --quick` executes every chapter with the
   `# quick:` values of its parameters cell, exactly as a user would.
2. nbval regression: each chapter, with the same smoke values injected by papermill, is executed by
   nbval, which compares the cells marked `# NBVAL_CHECK_OUTPUT` (data counts, task shapes, gradient
   checks, fixed-seed accuracies on synthetic data) against the outputs stored in the committed notebook.
   Checked cells never depend on the run-length parameters, so the smoke values keep CI short.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mlscratch.commands.chapters import quick_parameters

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = REPO_ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))


def with_parameters(notebook: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    """Insert `name = value` lines after the cell tagged `parameters`, as papermill does."""
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return notebook


def tail(text: str, chars: int = 4000) -> str:
    return text[-chars:]


def test_every_chapter_runs_with_papermill_at_smoke_settings(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mlscratch", "chapters", "run", "--quick", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, tail(result.stdout) + tail(result.stderr)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [c["chapter"] for c in summary["chapters"]] == [p.stem for p in NOTEBOOKS]
    assert all(c["status"] == "ok" for c in summary["chapters"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_checked_outputs_are_unchanged(path: Path, tmp_path: Path) -> None:
    notebook = with_parameters(nbformat.read(path, as_version=4), quick_parameters(path))
    nbformat.write(notebook, tmp_path / path.name)
    shutil.copy(CHAPTERS / "nbval_sanitize.cfg", tmp_path)
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
        "--nbval-sanitize-with", "nbval_sanitize.cfg", path.name,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, tail(result.stdout, 8000)
    assert " passed" in result.stdout and " failed" not in result.stdout
