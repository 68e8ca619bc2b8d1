"""Committed chapters are clean, parameterised and complete; the cleaning tool does what it says."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
SECTIONS = ("Goal", "Intuition", "The math", "What to observe", "Exercises", "References")
PARAMETERS = ("dataset", "protocol", "seed", "device")

spec = importlib.util.spec_from_file_location("clean_notebooks", ROOT / "tools" / "clean_notebooks.py")
clean_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clean_notebooks)


def source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_chapters():
    assert len(CHAPTERS) >= 3, "expected chapters/01_*.ipynb, 02_*, 03_*"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    text = path.read_text(encoding="utf-8")
    assert clean_notebooks.dumps(clean_notebooks.clean(json.loads(text))) == text, (
        f"{path.name} is not clean: run python tools/clean_notebooks.py {path.relative_to(ROOT)}"
    )
    notebook = load(path)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        if clean_notebooks.is_checked(cell):
            assert cell["outputs"], f"{path.name}: a NBVAL_CHECK_OUTPUT cell has no stored output to compare"
            assert cell["execution_count"] is not None, "nbval skips cells without an execution count"
        else:
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_parameters_sections_and_checked_cells(path):
    notebook = load(path)
    tagged = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    names = set(re.findall(r"^(\w+)\s*=", source(tagged[0]), flags=re.MULTILINE))
    assert set(PARAMETERS) <= names, f"{path.name}: parameters cell lacks {set(PARAMETERS) - names}"
    assert "# quick:" in source(tagged[0]), f"{path.name}: give smoke values as `# quick: VALUE` comments"
    headings = "\n".join(
        line
        for c in notebook["cells"]
        if c["cell_type"] == "markdown"
        for line in source(c).splitlines()
        if line.startswith("#")
    )
    for section in SECTIONS:
        assert re.search(rf"^#+ .*{section}", headings, flags=re.MULTILINE), f"{path.name} lacks a '{section}' section"
    markdown = "\n".join(source(c) for c in notebook["cells"] if c["cell_type"] == "markdown")
    assert "$$" in markdown, f"{path.name}: the math section should have display LaTeX"
    checked = [c for c in notebook["cells"] if clean_notebooks.is_checked(c)]
    assert checked, f"{path.name}: mark at least one deterministic cell with # NBVAL_CHECK_OUTPUT"
    assert any("report(" in source(c) for c in notebook["cells"]), f"{path.name}: call report(...) with key metrics"


def dirty_notebook() -> dict:
    return {
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {"collapsed": True}, "source": "# Title"},
            {
                "cell_type": "code",
                "id": "p",
                "execution_count": 1,
                "metadata": {"tags": ["injected-parameters"]},
                "source": "seed = 1",
                "outputs": [],
            },
            {
                "cell_type": "code",
                "id": "b",
                "execution_count": 7,
                "metadata": {"tags": ["parameters"], "scrolled": 1},
                "source": "seed = 0",
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "x\n"}],
            },
            {
                "cell_type": "code",
                "id": "c",
                "execution_count": 8,
                "metadata": {},
                "source": "# NBVAL_CHECK_OUTPUT\nprint(1); 2",
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": "1\n"},
                    {"output_type": "stream", "name": "stderr", "text": "warning\n"},
                    {
                        "output_type": "execute_result",
                        "execution_count": 8,
                        "metadata": {"x": 1},
                        "data": {"text/plain": "2", "image/png": "AAAA"},
                    },
                ],
            },
        ],
        "metadata": {
            "kernelspec": {"name": "my-env", "display_name": "mine", "language": "python"},
            "language_info": {"name": "python", "version": "3.11.4"},
            "widgets": {"state": {}},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_clean_keeps_only_checked_text_outputs_and_normalises_metadata():
    cleaned = clean_notebooks.clean(dirty_notebook())
    markdown, settings, checked = cleaned["cells"]  # papermill's injected-parameters cell is gone
    assert markdown["metadata"] == {}
    assert settings["metadata"] == {"tags": ["parameters"]}
    assert settings["outputs"] == [] and settings["execution_count"] is None
    assert checked["execution_count"] == 2  # second code cell
    assert checked["outputs"] == [
        {"name": "stdout", "output_type": "stream", "text": "1\n"},
        {"data": {"text/plain": "2"}, "execution_count": 2, "metadata": {}, "output_type": "execute_result"},
    ]
    assert cleaned["metadata"] == {"kernelspec": clean_notebooks.KERNELSPEC, "language_info": {"name": "python"}}


def test_check_mode_reports_dirty_and_accepts_clean(tmp_path, capsys):
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps(dirty_notebook()), encoding="utf-8")
    assert clean_notebooks.main(["--check", str(path)]) == 1
    assert "not clean" in capsys.readouterr().out
    assert json.loads(path.read_text())["cells"][2]["execution_count"] == 7  # --check changes nothing
    assert clean_notebooks.main([str(path)]) == 0
    assert clean_notebooks.main(["--check", str(path)]) == 0
