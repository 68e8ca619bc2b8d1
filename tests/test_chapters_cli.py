"""`python -m mlscratch chapters run` on tiny throwaway notebooks (a real kernel, a few seconds each)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("papermill")
nbformat = pytest.importorskip("nbformat")

from mlscratch.cli import main  # noqa: E402
from mlscratch.commands.chapters import budget_note, find_chapters, parse_assignments, quick_parameters  # noqa: E402
from mlscratch.errors import ConfigError  # noqa: E402


def write_chapter(folder, name, body, parameters="steps = 10  # quick: 2\nlabel = 'full'  # quick: 'smoke'\n"):
    notebook = nbformat.v4.new_notebook()
    settings = nbformat.v4.new_code_cell(parameters)
    settings.metadata["tags"] = ["parameters"]
    notebook.cells = [nbformat.v4.new_markdown_cell("# A tiny chapter"), settings, nbformat.v4.new_code_cell(body)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / name
    nbformat.write(notebook, path)
    return path


REPORT = (
    "from pathlib import Path\n"
    "from mlscratch.course.notebook import report\n"
    "report(steps=steps, label=label, cwd_is_chapters=Path.cwd().name == 'book', accuracy=0.5 + steps / 100)\n"
)


def test_quick_parameters_are_read_from_the_parameters_cell(tmp_path):
    path = write_chapter(tmp_path, "01_demo.ipynb", "pass")
    assert quick_parameters(path) == {"steps": 2, "label": "smoke"}


def test_chapter_without_parameters_cell_is_a_config_error(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(notebook, tmp_path / "01_bare.ipynb")
    with pytest.raises(ConfigError, match="tagged 'parameters'"):
        quick_parameters(tmp_path / "01_bare.ipynb")


def test_only_selects_by_prefix_and_unknown_prefix_names_the_choices(tmp_path):
    for name in ("01_a.ipynb", "02_b.ipynb", "notes.ipynb"):
        write_chapter(tmp_path, name, "pass")
    assert [p.name for p in find_chapters(tmp_path)] == ["01_a.ipynb", "02_b.ipynb"]
    assert [p.name for p in find_chapters(tmp_path, ["02"])] == ["02_b.ipynb"]
    with pytest.raises(ConfigError, match="01_a, 02_b"):
        find_chapters(tmp_path, ["07"])


def test_parse_assignments():
    assert parse_assignments(["iterations=20", "dataset=synthetic", "lr=0.5"]) == {
        "iterations": 20,
        "dataset": "synthetic",
        "lr": 0.5,
    }
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_assignments(["iterations"])


def test_run_quick_writes_notebooks_and_summary_with_metrics(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    write_chapter(book, "01_demo.ipynb", REPORT)
    out = tmp_path / "out"
    code = main(["chapters", "run", "--quick", "--dir", str(book), "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    (result,) = summary["chapters"]
    assert result["status"] == "ok" and result["error"] is None
    assert result["parameters"] == {"steps": 2, "label": "smoke"}
    assert result["metrics"] == {"steps": 2, "label": "smoke", "cwd_is_chapters": True, "accuracy": 0.52}
    assert (out / "01_demo.ipynb").exists()
    table = capsys.readouterr().out
    assert "01_demo" in table and "ok" in table and "accuracy=0.52" in table


def test_defaults_without_quick_and_overrides_with_p(tmp_path, capfd):
    book = tmp_path / "book"
    book.mkdir()
    write_chapter(book, "01_demo.ipynb", REPORT)
    out = tmp_path / "out"
    assert main(["chapters", "run", "--dir", str(book), "--out", str(out), "-p", "label=custom"]) == 0
    (result,) = json.loads((out / "summary.json").read_text())["chapters"]
    assert result["metrics"]["steps"] == 10 and result["metrics"]["label"] == "custom"
    assert result["budget_seconds"] == 100
    printed = capfd.readouterr()
    assert "of 100 s" in printed.out  # the time against the budget, per chapter and in the table
    assert "01_demo:" in printed.err and "cell" in printed.err  # a progress bar over the chapter's cells
    assert "without encryption" not in printed.out + printed.err  # the kernel's warning nobody can act on


def test_budget_note_flags_a_chapter_over_its_budget():
    assert budget_note(50, quick=False) == "50 of 100 s (50%)"
    assert budget_note(110, quick=False) == "110 of 100 s (110%) OVER"
    assert budget_note(330, quick=True) == ""


def test_a_failing_chapter_gives_exit_code_1_and_the_rest_still_runs(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    write_chapter(book, "01_broken.ipynb", "raise ValueError('deliberately broken')")
    write_chapter(book, "02_fine.ipynb", REPORT)
    out = tmp_path / "out"
    assert main(["chapters", "run", "--quick", "--dir", str(book), "--out", str(out)]) == 1
    results = json.loads((out / "summary.json").read_text())["chapters"]
    assert [r["status"] for r in results] == ["failed", "ok"]
    assert "ValueError" in results[0]["error"] and "deliberately broken" in results[0]["error"]
    assert "error: " in capsys.readouterr().out


def test_missing_chapters_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["chapters", "run", "--dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "chapters folder" in capsys.readouterr().err


FIGURE_AND_WIDGET = (
    "import matplotlib\n"
    "matplotlib.use('module://matplotlib_inline.backend_inline')\n"
    "import ipywidgets\n"
    "import matplotlib.pyplot as plt\n"
    "from mlscratch.course.notebook import report\n"
    "plt.plot([0, steps], [0, 1])\n"
    "plt.show()\n"
    "display(ipywidgets.IntSlider(value=steps))\n"
    "report(steps=steps, accuracy=0.75)\n"
)


def test_html_writes_a_page_per_chapter_with_figures_and_an_index(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    write_chapter(book, "01_demo.ipynb", FIGURE_AND_WIDGET)
    write_chapter(book, "02_broken.ipynb", "raise ValueError('deliberately broken')")
    out = tmp_path / "out"
    assert main(["chapters", "run", "--quick", "--html", "--dir", str(book), "--out", str(out)]) == 1
    page = (out / "01_demo.html").read_text()
    assert "data:image/png;base64," in page  # the figure is inside the page, no side files
    assert "live panel" in page and "IntSlider(" not in page  # widgets become a note, not their repr
    assert "deliberately broken" in (out / "02_broken.html").read_text()  # a failed chapter shows its error
    results = json.loads((out / "summary.json").read_text())["chapters"]
    assert [r["html"] for r in results] == [str(out / "01_demo.html"), str(out / "02_broken.html")]
    index = (out / "index.html").read_text()
    assert '<a href="01_demo.html">01_demo</a>' in index and '<a href="02_broken.html">02_broken</a>' in index
    assert "accuracy = 0.75" in index and "failed" in index and f"{results[0]['seconds']:.1f}" in index


def test_without_html_no_pages_are_written(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    write_chapter(book, "01_demo.ipynb", REPORT)
    out = tmp_path / "out"
    assert main(["chapters", "run", "--quick", "--dir", str(book), "--out", str(out)]) == 0
    assert not list(out.glob("*.html"))
    assert json.loads((out / "summary.json").read_text())["chapters"][0]["html"] is None


FIGURE = (
    "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
    "import matplotlib.pyplot as plt\nimport sys\nprint('result', steps)\nprint('noise', file=sys.stderr)\n"
    "plt.plot([0, 1], [1, steps]); plt.show()\n"
)


def test_store_writes_the_run_at_defaults_back_with_its_figures_and_refuses_overrides(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    chapter = write_chapter(book, "01_demo.ipynb", FIGURE)
    assert main(["chapters", "run", "--dir", str(book), "--out", str(tmp_path / "out"), "--store"]) == 0
    stored = json.loads(chapter.read_text())
    outputs = [o for c in stored["cells"] for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure is on the page
    assert any("".join(o.get("text", "")) == "result 10\n" for o in outputs)  # the defaults, not the quick run
    assert not any(o.get("name") == "stderr" for o in outputs)  # progress and warnings stay out
    assert [c["execution_count"] for c in stored["cells"] if c["cell_type"] == "code"] == [1, 2]
    for bad in (["--quick"], ["-p", "steps=3"]):
        assert main(["chapters", "run", "--dir", str(book), "--out", str(tmp_path / "o2"), "--store", *bad]) == 2
        assert "--store keeps the outputs of a run at the defaults" in capsys.readouterr().err
