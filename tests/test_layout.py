"""The package's two wings stay apart, the learners stay short, and the README's package map matches the disk."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlscratch"
ENTRY_POINTS = {"cli.py", "__main__.py"}  # the command line may run the course (`chapters run`)
LEARNER_LIMITS = {"metanet.py": 250, "base.py": 150}  # every other file in algorithms/: 100


def library_modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if "course" not in p.relative_to(PACKAGE).parts
        and "commands" not in p.relative_to(PACKAGE).parts
        and p.name not in ENTRY_POINTS
    )


def imported_modules(path: Path) -> set[str]:
    """The absolute module paths a file imports (relative imports resolved against its package)."""
    package = ".".join(("mlscratch", *path.relative_to(PACKAGE).with_suffix("").parts))
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def course_imports(path: Path) -> list[str]:
    return sorted(m for m in imported_modules(path) if m == "mlscratch.course" or m.startswith("mlscratch.course."))


def test_the_library_never_imports_the_course() -> None:
    offenders = {str(p.relative_to(ROOT)): course_imports(p) for p in library_modules()}
    offenders = {path: modules for path, modules in offenders.items() if modules}
    assert not offenders, f"library modules import the course (move the shared piece into the library): {offenders}"


@pytest.mark.parametrize(
    "line",
    [
        "from ..course import widgets",
        "from .. import course",
        "from ..course.notebook import report",
        "import mlscratch.course.ch02_maml",
    ],
)
def test_the_import_check_catches_a_course_import(tmp_path: Path, line: str) -> None:
    """The check above would fail: a library module with one import of the course is found."""
    fake = PACKAGE / "algorithms" / "_probe_course_import.py"
    try:
        fake.write_text(f"{line}\n")
        assert course_imports(fake), line
    finally:
        fake.unlink()


def test_importing_the_library_loads_neither_the_course_nor_jupyter() -> None:
    code = "import sys, mlscratch; print(sorted(m for m in sys.modules if m.startswith(('mlscratch.course', 'ipy'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_old_public_names_still_work() -> None:
    import mlscratch as ml

    assert ml.MAML and ml.load_splits and ml.TaskSampler and ml.fit and ml.evaluate and ml.build
    assert "maml-5w1s" in ml.zoo.RECIPES


def code_lines(path: Path) -> int:
    """Lines that are neither blank nor comments (docstrings count), as `grep -cvE '^\\s*(#|$)'` counts them."""
    return sum(1 for line in path.read_text().splitlines() if not re.match(r"^\s*(#|$)", line))


@pytest.mark.parametrize("path", sorted((PACKAGE / "algorithms").glob("*.py")), ids=lambda p: p.name)
def test_learners_stay_short(path: Path) -> None:
    limit = LEARNER_LIMITS.get(path.name, 100)
    assert code_lines(path) <= limit, f"{path.name}: {code_lines(path)} code lines > {limit}; share logic in the core"


def test_the_readme_package_map_lists_exactly_the_modules_on_disk() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Package map", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(mlscratch/[\w/]+\.py)` \|", section, flags=re.M))
    on_disk = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert listed == on_disk, (
        f"missing from the map: {sorted(on_disk - listed)}; not on disk: {sorted(listed - on_disk)}"
    )
