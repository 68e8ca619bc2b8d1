"""Committed chapters are stored with their results and figures, clean, parameterised and complete; the cleaning
tool does what it says."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
from pathlib import Path

import pytest

from mlscratch.course import stored

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
SECTIONS = ("Goal", "Intuition", "The math", "What to observe", "Exercises", "References")
PARAMETERS = ("dataset", "protocol", "seed", "device")

spec = importlib.util.spec_from_file_location("clean_notebooks", ROOT / "tools" / "clean_notebooks.py")
clean_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clean_notebooks)
# a top-level call that draws (indented calls are inside functions a panel may run later)
DRAWS = re.compile(r"^(?![\s#]).*\b(plot_\w+|show_\w+|draw_\w+|plt\.(subplots|plot|hist|imshow))\(", re.MULTILINE)


def source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_chapters():
    assert len(CHAPTERS) >= 3, "expected chapters/01_*.ipynb, 02_*, 03_*"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    text = path.read_text(encoding="utf-8")
    assert stored.dumps(stored.clean(json.loads(text))) == text, (
        f"{path.name} is not clean: run python tools/clean_notebooks.py {path.relative_to(ROOT)}"
    )
    notebook = load(path)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert len(text.encode()) <= stored.MAX_BYTES, f"{path.name}: {len(text.encode()):,} bytes with its outputs"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and stored.is_checked(cell):
            assert cell["outputs"], f"{path.name}: a NBVAL_CHECK_OUTPUT cell has no stored output to compare"
            assert cell["execution_count"] is not None, "nbval skips cells without an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_chapter_shows_its_results_and_figures(path):
    """The evidence is on the page: every code cell ran (a run at the defaults, `chapters run --store`), and every
    cell that draws a figure holds it as a PNG."""
    notebook = load(path)
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    unrun = [i for i, c in enumerate(code, 1) if c["execution_count"] is None]
    assert not unrun, f"{path.name}: code cells {unrun} have no stored run; python -m mlscratch chapters run --store"
    missing = [
        i
        for i, c in enumerate(code, 1)
        if DRAWS.search(source(c)) and not any("image/png" in o.get("data", {}) for o in c["outputs"])
    ]
    assert not missing, f"{path.name}: code cells {missing} draw a figure but store none (chapters run --store)"
    assert stored.figures(notebook) >= 1, f"{path.name} stores no figure"


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
    checked = [c for c in notebook["cells"] if stored.is_checked(c)]
    assert checked, f"{path.name}: mark at least one deterministic cell with # NBVAL_CHECK_OUTPUT"
    assert any("report(" in source(c) for c in notebook["cells"]), f"{path.name}: call report(...) with key metrics"


def tiny_png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PNG = tiny_png()


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
                        "data": {"text/plain": "2", "image/png": PNG},
                    },
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "VBox"},
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


def test_clean_keeps_results_and_figures_drops_noise_and_normalises_metadata():
    cleaned = stored.clean(dirty_notebook())
    markdown, settings, checked = cleaned["cells"]  # papermill's injected-parameters cell is gone
    assert markdown["metadata"] == {}
    assert settings["metadata"] == {"tags": ["parameters"]}
    assert settings["outputs"] == [{"name": "stdout", "output_type": "stream", "text": "x\n"}]
    assert settings["execution_count"] == 1
    assert checked["execution_count"] == 2  # second code cell
    stdout, result, widget = checked["outputs"]  # stderr dropped
    assert stdout == {"name": "stdout", "output_type": "stream", "text": "1\n"}
    assert result["data"]["text/plain"] == "2" and result["execution_count"] == 2
    assert result["data"]["image/png"].startswith("iVBOR")  # the figure is kept (re-encoded smaller when it can be)
    assert widget["data"] == {"text/plain": stored.LIVE_PANEL_NOTE}  # no widget state in a repository
    assert cleaned["metadata"] == {"kernelspec": stored.KERNELSPEC, "language_info": {"name": "python"}}
    assert stored.clean(cleaned) == cleaned  # idempotent


def test_check_mode_reports_dirty_and_accepts_clean(tmp_path, capsys):
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps(dirty_notebook()), encoding="utf-8")
    assert clean_notebooks.main(["--check", str(path)]) == 1
    assert "not clean" in capsys.readouterr().out
    assert json.loads(path.read_text())["cells"][2]["execution_count"] == 7  # --check changes nothing
    assert clean_notebooks.main([str(path)]) == 0
    assert clean_notebooks.main(["--check", str(path)]) == 0
