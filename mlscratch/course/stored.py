"""The committed form of a chapter: the outputs of a run at its defaults, so a reader sees the evidence before
running anything (on GitHub too), minus what does not belong in a repository.

Kept: stdout, text/plain, text/markdown, text/html and PNG figures (re-encoded with an optimising PNG writer,
and as a 256-colour palette when that keeps them readable, so a chapter stays well under MAX_BYTES).
Dropped: stderr (progress bars, warnings), error outputs, widget views and widget state (a saved notebook
cannot draw a live panel: a one-line note takes its place), papermill's injected-parameters cell, and all
metadata but cell tags and the python3 kernelspec. Execution counts are the cell's position among the code
cells, so they are the same on every machine (nbval needs one on every compared cell).

    python -m mlscratch chapters run --store        # run every chapter at its defaults and store it here
    python tools/clean_notebooks.py --check chapters/*.ipynb
"""

from __future__ import annotations

import base64
import io

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
KEPT_MIMETYPES = ("text/plain", "text/markdown", "text/html", "image/png")
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
LIVE_PANEL_NOTE = "A live panel: open this chapter in JupyterLab and run it to use the controls."
MAX_BYTES = 1_500_000  # a committed chapter, figures included


def source_text(cell: dict) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def is_checked(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and CHECK_MARK in source_text(cell)


def smaller_png(data: str) -> str:
    """A base64 PNG re-encoded smaller: optimised, and palette-quantised (256 colours) when that is smaller."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data)))
    best = base64.b64decode(data)
    if image.mode == "P":  # already a palette image: stored before, leave it (keeps clean() idempotent)
        return data
    for candidate in (image, image.convert("RGB").quantize(256)):
        buffer = io.BytesIO()
        candidate.save(buffer, format="PNG", optimize=True)
        if len(buffer.getvalue()) < len(best):
            best = buffer.getvalue()
    return base64.b64encode(best).decode("ascii")


def stored_output(output: dict) -> dict | None:
    """The committed copy of one output, or None to drop it."""
    kind = output.get("output_type")
    if kind == "stream":
        return (
            {"name": "stdout", "output_type": "stream", "text": output["text"]} if output["name"] == "stdout" else None
        )
    if kind not in ("display_data", "execute_result"):
        return None  # errors never belong in a committed notebook
    data = output.get("data", {})
    if WIDGET_MIMETYPE in data:
        data = {"text/plain": LIVE_PANEL_NOTE}
    data = {k: v for k, v in data.items() if k in KEPT_MIMETYPES}
    if "image/png" in data:
        png = data["image/png"]
        data["image/png"] = png if png.startswith("iVBOR") and len(png) < 4000 else smaller_png(png)
    if not data:
        return None
    return {
        "data": data,
        "metadata": {},
        "output_type": kind,
        **({"execution_count": None} if kind == "execute_result" else {}),
    }


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
    """The committed form of a notebook (as parsed JSON): see the module docstring. Idempotent."""
    cells, position = [], 0
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
            position += 1
            outputs = merge_streams([o for o in map(stored_output, cell.get("outputs", [])) if o])
            for output in outputs:
                if output["output_type"] == "execute_result":
                    output["execution_count"] = position
            executed = cell.get("execution_count") is not None or bool(outputs)
            new["execution_count"] = position if executed else None
            new["outputs"] = outputs
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


def figures(notebook: dict) -> int:
    """How many PNG figures a notebook holds."""
    return sum("image/png" in o.get("data", {}) for c in notebook["cells"] for o in c.get("outputs", []))
