"""The JupyterLab walkthrough in a real browser, as a reader meets the chapters.

JupyterLab starts from this environment on a free local port (no token; a fresh profile: no
workspace, default settings, as on the first open after install, except that the first-run "Jupyter
news?" question is answered) and headless Chromium, driven by Playwright, uses it like a reader would:

- chapter 01: Run All Cells, no error output; move the task explorer's first slider, the picture changes;
- chapter 02 at smoke settings (its `# quick:` values injected as papermill does): Run All Cells,
  no error output; click the training panel's button, a figure and a summary appear.

Panels are found by widget class and role (slider, button, image), never by a chapter's wording.
Screenshots, the executed notebooks and JupyterLab's log land in `runs/browser/`.

Chromium is Debian's `chromium` package (`apt-get install chromium`); Playwright's own browser
download is not needed. Without Chromium or the `playwright` package the tests skip with one line,
unless MLSCRATCH_REQUIRE_BROWSER=1 (set by `.ci/run`), where they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import nbformat
import pytest

from mlscratch.commands.chapters import quick_parameters

pytestmark = pytest.mark.chapters
REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = REPO_ROOT / "chapters"
RUNS = REPO_ROOT / "runs" / "browser"
CHROMIUM_FLAGS = [  # the machine may have no network: nothing that phones home or waits on a connection
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NEWS_OFF = {"fetchNews": "false", "checkForUpdates": False}  # the first-run "Jupyter news?" toast
BROWSER_SETTINGS: dict[str, dict] = {}  # extra values on top of the quick ones (the quick ones suffice today)
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show
# the status bar's kernel item, e.g. "Python 3 (ipykernel) | Idle"; "No Kernel | Idle" comes before it starts
KERNEL_IDLE = (
    "() => [...document.querySelectorAll('.jp-StatusBar-Item')]"
    ".some(e => /^(?!No Kernel).+ \\| Idle$/.test(e.textContent.trim()))"
)
PROMPTS = f"[...document.querySelectorAll('{NOTEBOOK} .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent)"
RUN_STARTED = f"() => {{ const p = {PROMPTS}; return p.some(t => t.includes('*')) || p.every(t => /\\d/.test(t)) }}"
RUN_FINISHED = f"() => {{ const p = {PROMPTS}; return p.length > 0 && !p.some(t => t.includes('*')) }}"


def chromium_executable() -> str | None:
    """$MLSCRATCH_CHROMIUM, else Debian's `chromium` (or Ubuntu's `chromium-browser`) on PATH."""
    return os.environ.get("MLSCRATCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip on a reader's machine; fail in CI, where the browser test must run."""
    if os.environ.get("MLSCRATCH_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chapter_path(prefix: str) -> Path:
    (path,) = CHAPTERS.glob(f"{prefix}_*.ipynb")
    return path


def smoke_path(folder: Path, prefix: str) -> Path:
    return folder / chapter_path(prefix).name


def smoke_copy(prefix: str, folder: Path) -> Path:
    """The chapter with its quick values (and BROWSER_SETTINGS) injected after its parameters cell."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    path = chapter_path(prefix)
    parameters = {**quick_parameters(path), **BROWSER_SETTINGS.get(prefix, {})}
    notebook = parameterize_notebook(load_notebook_node(str(path)), parameters)
    nbformat.write(notebook, smoke_path(folder, prefix))
    return smoke_path(folder, prefix)


def fresh_profile(home: Path) -> dict[str, str]:
    """Environment for a JupyterLab that has never run: empty config, settings and workspaces."""
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps(NEWS_OFF))
    return {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_PREFER_ENV_PATH": "1",  # this environment's kernels first
    }


def wait_until_serving(url: str, server: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium (a fresh user profile) driven by Playwright."""
    executable = chromium_executable()
    if executable is None:
        skip_or_fail("Chromium not found; to run the browser test: sudo apt-get install chromium (Debian/Ubuntu)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright not installed: .venv/bin/pip install playwright (or -e '.[dev]') for the browser test")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium_profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1100},
        )
        context.set_default_timeout(60_000)
        yield context
        context.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """JupyterLab from this environment serving smoke copies of chapters 01 and 02: (url, their folder)."""
    folder = tmp_path_factory.mktemp("chapters")
    for prefix in ("01", "02"):
        smoke_copy(prefix, folder)
    RUNS.mkdir(parents=True, exist_ok=True)
    log = RUNS / "jupyterlab.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", f"--ServerApp.root_dir={folder}",
    ]  # fmt: skip
    env = fresh_profile(tmp_path_factory.mktemp("jupyter_home"))
    with log.open("w") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(url, server, log)
        yield url, folder
    finally:
        server.terminate()  # the server shuts its kernels down
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    page = browser.new_page()
    yield page
    page.close()


def wait_for_kernel(page: object, timeout_s: float = 120) -> None:
    """Until the status bar shows the notebook's kernel started and idle."""
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_s * 1000, polling=250)


def open_notebook(page: object, url: str, name: str) -> None:
    """Open a notebook as `jupyter lab NAME` does (nothing else open) and wait until its kernel is idle.

    Running a cell before that (status bar: Initializing, Connecting) makes JupyterLab ask "Select Kernel".
    """
    page.goto(f"{url}/lab/tree/{name}?reset")
    page.wait_for_function(f"() => ({KERNEL_IDLE})() || document.querySelector('.jp-Dialog')", timeout=120_000)
    if page.locator(".jp-Dialog").count():
        screenshot = RUNS / f"{Path(name).stem}-dialog.png"
        page.screenshot(path=screenshot)
        title = page.locator(".jp-Dialog-header").inner_text()
        warnings.warn(f"JupyterLab asked {title!r} on opening {name} (see {screenshot}); accepting", stacklevel=2)
        page.locator(".jp-Dialog .jp-mod-accept").click()
        wait_for_kernel(page)


def run_all_cells(page: object, timeout_s: float) -> None:
    """Run > Run All Cells, then wait until no cell is queued or running (an error stops the run)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(RUN_STARTED, timeout=30_000)
    page.wait_for_function(RUN_FINISHED, timeout=timeout_s * 1000, polling=500)
    assert page.locator(".jp-Dialog").count() == 0, page.locator(".jp-Dialog").inner_text()
    wait_for_kernel(page)


def save_and_read(page: object, path: Path) -> nbformat.NotebookNode:
    """Save the notebook from the browser (Ctrl+S) and read what JupyterLab wrote."""
    before = path.stat().st_mtime_ns
    page.locator(NOTEBOOK).locator(".jp-Notebook").click(position={"x": 5, "y": 5})
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    notebook = nbformat.read(path, as_version=4)
    shutil.copy(path, RUNS / path.name)
    return notebook


def error_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    """`cell N: Name: message` for every error output."""
    return [
        f"cell {index}: {output.ename}: {output.evalue}"
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]


def assert_ran_without_errors(page: object, path: Path) -> None:
    notebook = save_and_read(page, path)
    assert error_outputs(notebook) == [], f"error outputs in {path.name} (saved to {RUNS / path.name})"
    unexecuted = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.execution_count is None]
    assert unexecuted == [], f"cells never ran in {path.name}: {unexecuted}"
    assert page.get_by_text("Error displaying widget").count() == 0


def panel_with(page: object, selector: str) -> object:
    """The last output area holding a widget that matches selector (a chapter's live panel)."""
    return page.locator(f"{NOTEBOOK} .jp-OutputArea-output").filter(has=page.locator(selector)).last


def screenshot_panel(page: object, panel: object, name: str) -> None:
    """The page, scrolled so the panel's top is at the top of the notebook (saved as runs/browser/NAME)."""
    panel.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.screenshot(path=RUNS / name)


def image_source(panel: object) -> str:
    return panel.locator("img.widget-image").first.get_attribute("src") or ""


def wait_for_new_image(panel: object, before: str, timeout_s: float, settle_s: float = 1.5) -> None:
    """Until the panel shows a picture other than `before` that stays put for settle_s (the last redraw)."""
    deadline = time.monotonic() + timeout_s
    shown, since = image_source(panel), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = image_source(panel)
        if now != shown:
            shown, since = now, time.monotonic()
        elif shown not in ("", before) and time.monotonic() - since >= settle_s:
            return
    pytest.fail("the panel's picture did not change")


def test_chapter_01_runs_and_the_task_explorer_redraws(page: object, lab: tuple[str, Path]) -> None:
    url, folder = lab
    path = smoke_path(folder, "01")
    open_notebook(page, url, path.name)
    run_all_cells(page, timeout_s=600)
    page.screenshot(path=RUNS / "01-ran.png")
    assert_ran_without_errors(page, path)
    assert page.locator(f"{NOTEBOOK} .jupyter-widgets").count() > 0, "no widget view rendered"

    panel = panel_with(page, ".widget-slider")
    slider = panel.get_by_role("slider").first
    value, picture = float(slider.get_attribute("aria-valuenow")), image_source(panel)
    screenshot_panel(page, panel, "01-panel-before.png")
    slider.focus()
    slider.press("ArrowRight")
    slider.press("ArrowRight")
    assert float(slider.get_attribute("aria-valuenow")) > value
    wait_for_new_image(panel, picture, timeout_s=60)
    wait_for_kernel(page)
    screenshot_panel(page, panel, "01-panel-after.png")


def test_chapter_02_runs_at_smoke_settings_and_its_panel_trains(page: object, lab: tuple[str, Path]) -> None:
    url, folder = lab
    path = smoke_path(folder, "02")
    open_notebook(page, url, path.name)
    run_all_cells(page, timeout_s=900)
    page.screenshot(path=RUNS / "02-ran.png")
    assert_ran_without_errors(page, path)

    panel = panel_with(page, ".widget-button")
    picture = image_source(panel)
    panel.locator(".widget-button").first.click()
    result = panel.locator(".widget-html-content pre").or_(panel.locator('.widget-html-content [style*="b00020"]'))
    result.first.wait_for(timeout=600_000)
    wait_for_kernel(page)
    screenshot_panel(page, panel, "02-panel-trained.png")
    assert panel.locator(".widget-html-content pre").count(), panel.inner_text()
    wait_for_new_image(panel, picture, timeout_s=10)
