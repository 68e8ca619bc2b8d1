"""Keep committed notebooks clean and reviewable.

    python tools/clean_notebooks.py chapters/*.ipynb          # clean in place
    python tools/clean_notebooks.py --check chapters/*.ipynb  # exit 1 and list what is not clean

Clean means:
- outputs only on cells whose source contains `# NBVAL_CHECK_OUTPUT` (the ones nbval compares),
  and there only text: stdout and text/plain (no images, widgets, stderr, metadata);
- execution counts only on those cells (nbval skips comparing a cell whose count is empty), numbered
  by the cell's position among the code cells, so they are the same on every machine;
- cell metadata reduced to `tags`; notebook metadata reduced to the python3 kernelspec and language name;
- papermill's `injected-parameters` cell removed, so a notebook executed by papermill at its defaults
  (e.g. by `python -m mlscratch chapters run`) can be cleaned and committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlscratch.io import write_text

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
KEPT_MIMETYPES = ("text/plain",)


def source_text(cell: dict) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def is_checked(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and CHECK_MARK in source_text(cell)


def clean_output(output: dict) -> dict | None:
    """Text-only copy of one output of a checked cell, or None to drop it."""
    kind = output.get("output_type")
    if kind == "stream":
        keep = output["name"] == "stdout"
        return {"name": "stdout", "output_type": "stream", "text": output["text"]} if keep else None
    if kind in ("display_data", "execute_result"):
        data = {k: v for k, v in output.get("data", {}).items() if k in KEPT_MIMETYPES}
        if not data:
            return None
        cleaned = {"data": data, "metadata": {}, "output_type": kind}
        if kind == "execute_result":
            cleaned["execution_count"] = output.get("execution_count")
        return cleaned
    return None  # errors never belong in a committed notebook


def merge_streams(outputs: list[dict]) -> list[dict]:
    """Join consecutive stdout chunks, as Jupyter shows them."""
    merged: list[dict] = []
    for output in outputs:
        if merged and output["output_type"] == "stream" and merged[-1]["output_type"] == "stream":
            merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


def clean(notebook: dict) -> dict:
    """A cleaned copy of a notebook (as parsed JSON)."""
    cells = []
    code_position = 0
    for cell in notebook["cells"]:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue  # papermill's copy of the parameters it was given; the defaults stay in `parameters`
        new = {"cell_type": cell["cell_type"]}
        if "id" in cell:
            new["id"] = cell["id"]
        tags = cell.get("metadata", {}).get("tags")
        new["metadata"] = {"tags": tags} if tags else {}
        new["source"] = cell["source"]
        if cell["cell_type"] == "code":
            code_position += 1
            if is_checked(cell):
                outputs = merge_streams([o for o in map(clean_output, cell.get("outputs", [])) if o])
                for output in outputs:
                    if output["output_type"] == "execute_result":
                        output["execution_count"] = code_position
                new["execution_count"] = code_position
                new["outputs"] = outputs
            else:
                new["execution_count"] = None
                new["outputs"] = []
        elif "attachments" in cell:
            new["attachments"] = cell["attachments"]
        cells.append(new)
    metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": max(notebook["nbformat_minor"], 5)}


def dumps(notebook: dict) -> str:
    """Jupyter's own on-disk layout (nbformat.writes), so saving in JupyterLab changes nothing else."""
    import nbformat

    node = nbformat.from_dict(notebook)
    nbformat.validate(node)
    return nbformat.writes(node) + "\n"


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
