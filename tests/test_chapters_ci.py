"""Keeping the chapters runnable: every chapter runs once, and its checked outputs do not change on another CPU.

Each chapter, with the `# quick:` values of its parameters cell injected as papermill does, is executed once by
nbval, which compares the cells marked `# NBVAL_CHECK_OUTPUT` against the outputs stored in the committed notebook.
Checked cells print only what is the same on every CPU and torch build (counts, shapes, split sizes, settings,
yes/no verdicts of checks), never a number that training or evaluation produced: those are asserted with
tolerances in tests/test_chapter_results.py.

The stored outputs come from one machine's native kernels; nbval runs here under other SIMD kernels
(OTHER_KERNELS: ATen's default path, oneDNN capped at SSE4.1, MKL at SSE4.2), so every run compares two
"machines" and a checked cell that depends on float rounding fails at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import find_real_omniglot

from mlscratch.commands.chapters import quick_parameters

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = REPO_ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
OTHER_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
NEEDS_OMNIGLOT = {"09_lake_challenge"}  # the other chapters fall back to synthetic glyphs without Omniglot
pytestmark = pytest.mark.chapters


def with_parameters(notebook: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    """Insert `name = value` lines after the cell tagged `parameters`, as papermill does."""
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return notebook


def tail(text: str, chars: int = 4000) -> str:
    return text[-chars:]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_checked_outputs_are_unchanged(path: Path, tmp_path: Path) -> None:
    if path.stem in NEEDS_OMNIGLOT and find_real_omniglot() is None:
        pytest.skip(f"{path.stem} runs Lake's official runs, which are real Omniglot drawings: set MLSCRATCH_DATA to a "
                    "folder with images_background.zip and images_evaluation.zip")  # fmt: skip
    notebook = with_parameters(nbformat.read(path, as_version=4), quick_parameters(path))
    nbformat.write(notebook, tmp_path / path.name)
    shutil.copy(CHAPTERS / "nbval_sanitize.cfg", tmp_path)
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
        "--nbval-sanitize-with", "nbval_sanitize.cfg", path.name,
    ]  # fmt: skip
    env = {**os.environ, **OTHER_KERNELS}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, tail(result.stdout, 8000)
    assert " passed" in result.stdout and " failed" not in result.stdout
