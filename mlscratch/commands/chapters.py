"""`python -m mlscratch chapters run`: execute the chapters with papermill and summarise them.

Each chapter has one cell tagged `parameters`. Its defaults are the teaching
configuration; a trailing `# quick: VALUE` comment on a line gives the smoke value
that `--quick` injects, so the reader sees both side by side:

    iterations = 240  # quick: 3

Chapters call `mlscratch.course.notebook.report(**metrics)`; the runner reads those
outputs back from the executed notebook and puts them in `summary.json`.
With `--html` each executed chapter is also written as a standalone HTML page
(figures embedded), with an `index.html` listing chapters, times and metrics:
results to look at without a kernel.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
from html import escape
from pathlib import Path

from ..course import stored
from ..course.notebook import METRICS_MIMETYPE
from ..errors import ConfigError
from ..io import write_json, write_text

DEFAULT_OUT = Path("runs/chapters")
QUICK_VALUE = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*=.*#.*\bquick:\s*(?P<value>.+?)\s*$")
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
LIVE_PANEL_NOTE = "<p><i>A live panel: open this chapter in JupyterLab and run it to use the controls.</i></p>"
BUDGET_SECONDS = 100  # every chapter at its defaults within 100 s on an idle 2-core CPU (newcomers' may be 2-3x slower)
# The kernel's "running over TCP without encryption" warning concerns a local kernel that only papermill talks to:
# nothing for the reader to act on, so the kernel logs errors only.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def default_chapters_dir() -> Path:
    """`./chapters` when run from a clone's root, else the chapters next to this package."""
    here = Path("chapters")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "chapters"


def find_chapters(directory: Path, only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks (`01_name.ipynb`) in directory, optionally only those whose name starts with `only`."""
    if not directory.is_dir():
        raise ConfigError(f"chapters folder {directory} not found; run from the repository root or pass --dir")
    notebooks = sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ConfigError(f"no numbered chapters (NN_name.ipynb) in {directory}; pass --dir with the chapters folder")
    if only:
        wanted = [p for p in notebooks if any(p.stem.startswith(prefix) for prefix in only)]
        if not wanted:
            names = ", ".join(p.stem for p in notebooks)
            raise ConfigError(f"--only {' '.join(only)} matches no chapter; choose from: {names}")
        notebooks = wanted
    return notebooks


def parameters_source(notebook: dict, path: Path) -> str:
    """Source of the cell tagged `parameters` (the one papermill injects after)."""
    for cell in notebook["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"]
            return source if isinstance(source, str) else "".join(source)
    raise ConfigError(f"{path} has no cell tagged 'parameters'; tag its settings cell so papermill can inject values")


def quick_parameters(path: Path) -> dict:
    """The `# quick: VALUE` smoke settings of a chapter's parameters cell."""
    source = parameters_source(json.loads(path.read_text(encoding="utf-8")), path)
    quick = {}
    for line in source.splitlines():
        match = QUICK_VALUE.match(line)
        if match:
            try:
                quick[match["name"]] = ast.literal_eval(match["value"])
            except (ValueError, SyntaxError) as error:
                raise ConfigError(
                    f"{path}: quick value for {match['name']!r} is not a Python literal ({match['value']!r}); "
                    "write e.g. `# quick: 3` or `# quick: 'synthetic'`"
                ) from error
    return quick


def collect_metrics(notebook: dict) -> dict:
    """Merge every `report(...)` output of an executed notebook, later calls winning."""
    metrics: dict = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if METRICS_MIMETYPE in data:
                metrics.update(data[METRICS_MIMETYPE])
    return metrics


def run_chapter(path: Path, out_dir: Path, parameters: dict, kernel: str, progress: bool = True) -> dict:
    """Execute one chapter (cwd = its folder) into out_dir; never raises for a failing notebook.

    progress: a bar over the chapter's cells (papermill's, on stderr), so a long chapter shows where it is."""
    import papermill

    output = out_dir / path.name
    start = time.perf_counter()
    status, error = "ok", None
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(path.parent),
            progress_bar={"desc": path.stem, "leave": False} if progress else False,
            extra_arguments=KERNEL_ARGUMENTS,
        )
    except papermill.PapermillExecutionError as failure:
        status, error = "failed", f"cell {failure.exec_count}: {failure.ename}: {failure.evalue}"
    except Exception as failure:  # kernel died, timeout, unreadable notebook: report it, run the rest
        status, error = "failed", f"{type(failure).__name__}: {failure}"
    seconds = time.perf_counter() - start
    metrics = collect_metrics(json.loads(output.read_text(encoding="utf-8"))) if output.exists() else {}
    return {
        "chapter": path.stem,
        "status": status,
        "seconds": round(seconds, 1),
        "metrics": metrics,
        "parameters": parameters,
        "notebook": str(output),
        "html": None,
        "error": error,
    }


def format_metric(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def budget_note(seconds: float, quick: bool) -> str:
    """Time against the budget of a chapter at its defaults ("" for smoke runs, which have none)."""
    if quick:
        return ""
    share = seconds / BUDGET_SECONDS
    return f"{seconds:.0f} of {BUDGET_SECONDS} s ({share:.0%})" + (" OVER" if share > 1 else "")


def format_table(results: list[dict], quick: bool = True) -> str:
    """One line per chapter: status, seconds (against the 5-minute budget at defaults), metrics."""
    width = max([len("chapter")] + [len(r["chapter"]) for r in results])
    lines = [f"{'chapter':<{width}}  status  seconds  {'budget' if not quick else '':<22}  metrics"]
    for r in results:
        metrics = ", ".join(f"{k}={format_metric(v)}" for k, v in r["metrics"].items())
        budget = budget_note(r["seconds"], quick)
        lines.append(f"{r['chapter']:<{width}}  {r['status']:<6}  {r['seconds']:>7.1f}  {budget:<22}  {metrics}")
        if r["error"]:
            lines.append(f"{'':<{width}}  error: {r['error']}")
    return "\n".join(lines)


def without_live_widgets(notebook: dict) -> dict:
    """Widget outputs replaced by a short note: a saved notebook has no widget state to draw them from."""
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            if WIDGET_MIMETYPE in output.get("data", {}):
                output["data"] = {"text/html": LIVE_PANEL_NOTE}
    return notebook


def check_nbconvert() -> None:
    """--html needs nbconvert (installed with JupyterLab); say so before running anything."""
    try:
        import nbconvert  # noqa: F401
    except ImportError as error:
        raise ConfigError("--html needs nbconvert: pip install nbconvert (or pip install -e '.[notebooks]')") from error


def export_html(notebook_path: Path) -> Path:
    """Write an executed notebook as a standalone HTML page beside it, figures embedded."""
    import nbconvert
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    body, _ = nbconvert.HTMLExporter(embed_images=True).from_notebook_node(without_live_widgets(notebook))
    return write_text(body, notebook_path.with_suffix(".html"))


def index_row(result: dict) -> str:
    """One table row of index.html: chapter (linked to its page), status, seconds, metrics."""
    name = escape(result["chapter"])
    link = f'<a href="{escape(Path(result["html"]).name)}">{name}</a>' if result["html"] else name
    metrics = "<br>".join(f"{escape(k)} = {escape(format_metric(v))}" for k, v in result["metrics"].items())
    error = f'<br><span class="error">{escape(result["error"])}</span>' if result["error"] else ""
    notebook = escape(Path(result["notebook"]).name)
    return (
        f'<tr><td>{link}<br><a class="small" href="{notebook}">{notebook}</a></td>'
        f'<td class="{escape(result["status"])}">{escape(result["status"])}{error}</td>'
        f'<td class="num">{result["seconds"]:.1f}</td><td>{metrics}</td></tr>'
    )


INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mlscratch chapters</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.4em 0.8em; text-align: left; vertical-align: top; }}
.num {{ text-align: right; }} .ok {{ color: #176b2c; }} .failed, .error {{ color: #b00020; }}
.small {{ font-size: 80%; }}
</style></head><body>
<h1>mlscratch chapters</h1>
<p>{settings}. Each chapter's page shows its text, code, printed results and figures; no kernel needed.</p>
<table><tr><th>chapter</th><th>status</th><th>seconds</th><th>reported metrics</th></tr>
{rows}
</table></body></html>
"""


def index_html(results: list[dict], quick: bool) -> str:
    """The index page: one row per chapter."""
    settings = "Smoke settings (<code>--quick</code>)" if quick else "Teaching defaults"
    return INDEX_PAGE.format(settings=settings, rows="\n".join(index_row(r) for r in results))


def parse_assignments(pairs: list[str]) -> dict:
    """`-p iterations=20 -p dataset=synthetic` -> {"iterations": 20, "dataset": "synthetic"}."""
    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ConfigError(f"-p expects NAME=VALUE, got {pair!r}; e.g. -p iterations=20")
        try:
            parameters[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parameters[name] = value  # a bare word such as synthetic is a string
    return parameters


def store(result: dict, chapter: Path) -> None:
    """Write an executed chapter back over the committed one, in its stored form (`mlscratch.course.stored`)."""
    notebook = stored.clean(json.loads(Path(result["notebook"]).read_text(encoding="utf-8")))
    text = stored.dumps(notebook)
    if len(text.encode()) > stored.MAX_BYTES:
        print(f"  note: {chapter.name} is {len(text.encode()) / 1e6:.1f} MB with its outputs (limit 1.5 MB)")
    write_text(text, chapter)


def run(args: argparse.Namespace) -> int:
    chapters = find_chapters(Path(args.dir) if args.dir else default_chapters_dir(), args.only)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    overrides = parse_assignments(args.param)
    if args.store and (args.quick or overrides):
        raise ConfigError("--store keeps the outputs of a run at the defaults; drop --quick and -p to store")
    if args.html:
        check_nbconvert()
    results = []
    for path in chapters:
        parameters = {**(quick_parameters(path) if args.quick else {}), **overrides}
        shown = " ".join(f"{k}={v!r}" for k, v in parameters.items()) or "defaults"
        print(f"running {path.stem} ({shown}) ...", flush=True)
        result = run_chapter(path, out_dir, parameters, args.kernel, progress=not args.no_progress)
        result["budget_seconds"] = None if args.quick else BUDGET_SECONDS
        if args.html and Path(result["notebook"]).exists():
            result["html"] = str(export_html(Path(result["notebook"])))
        if args.store and result["status"] == "ok":
            store(result, path)
        budget = budget_note(result["seconds"], args.quick)
        print(f"  {result['status']} in {result['seconds']:.1f} s" + (f" ({budget})" if budget else ""), flush=True)
        results.append(result)
    summary = {"quick": args.quick, "python": sys.executable, "chapters": results}
    write_json(summary, out_dir / "summary.json")
    print()
    print(format_table(results, args.quick))
    print(f"\nexecuted notebooks and summary.json in {out_dir}")
    if args.html:
        index = write_text(index_html(results, args.quick), out_dir / "index.html")
        print(f"HTML pages: open {index} in a browser")
    return 0 if all(r["status"] == "ok" for r in results) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("chapters", help="run the notebook chapters")
    actions = group.add_subparsers(dest="chapters_command", required=True, metavar="ACTION")
    runner = actions.add_parser(
        "run",
        help="execute chapters with papermill and write a summary",
        description="Execute the chapters with papermill (kernel python3 of this environment, working directory = "
        "the chapters folder) and write the executed notebooks plus summary.json (with --html: HTML pages and "
        "index.html too). Exit code 1 if any chapter fails.",
    )
    runner.add_argument("--quick", action="store_true", help="inject each chapter's `# quick:` smoke parameters")
    runner.add_argument(
        "--html",
        action="store_true",
        help="also write each executed chapter as a standalone HTML page and an index.html listing them",
    )
    runner.add_argument("--only", nargs="+", metavar="NN", help="run only chapters whose name starts with these")
    runner.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default: {DEFAULT_OUT})")
    runner.add_argument("--dir", default=None, help="chapters folder (default: ./chapters)")
    runner.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter in every chapter run, e.g. -p dataset=synthetic",
    )
    runner.add_argument(
        "--store",
        action="store_true",
        help="write each chapter that ran at its defaults back into chapters/, outputs kept",
    )
    runner.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    runner.add_argument("--no-progress", action="store_true", help="no progress bar over each chapter's cells")
    runner.set_defaults(func=run)
