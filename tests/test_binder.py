"""Binder kept honest: binder/ installs what pyproject.toml requires, postBuild can run on Binder,
and the README's badge is one a fork can point at itself (`python binder/badge.py --write`)."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
BINDER = REPO_ROOT / "binder"
POSTBUILD = BINDER / "postBuild"
# what a Binder build may run: it is the notebook user in the repository root, without root rights
POSTBUILD_COMMANDS = {"python", "mkdir", "cat", "echo", "set"}


def load_badge_module():
    spec = importlib.util.spec_from_file_location("binder_badge", BINDER / "badge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


badge = load_badge_module()


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def requirement_map(lines: list[str]) -> dict[str, str]:
    """name -> specifier, e.g. {"torch": ">=2.1"}, for requirement strings."""
    return {Requirement(line).name.lower(): str(Requirement(line).specifier) for line in lines}


def binder_requirements() -> list[str]:
    """binder/requirements.txt without comments and pip options (such as --extra-index-url)."""
    lines = [line.split("#")[0].strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def test_binder_installs_exactly_what_pyproject_requires() -> None:
    project = pyproject()["project"]
    wanted = requirement_map(project["dependencies"] + project["optional-dependencies"]["notebooks"])
    binder = requirement_map(binder_requirements())
    missing = {name: spec for name, spec in wanted.items() if binder.get(name) != spec}
    extra = {name: spec for name, spec in binder.items() if wanted.get(name) != spec}
    assert not missing and not extra, (
        f"binder/requirements.txt drifted from pyproject.toml (dependencies + notebooks extra): "
        f"should have {missing}, should not have {extra}"
    )


def test_binder_python_satisfies_requires_python() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-\d+\.\d+", runtime), f"runtime.txt should read like python-3.11, not {runtime!r}"
    assert runtime.removeprefix("python-") in SpecifierSet(pyproject()["project"]["requires-python"])


def test_postbuild_is_executable_on_disk_and_in_git() -> None:
    assert os.access(POSTBUILD, os.X_OK), "chmod +x binder/postBuild"
    listed = subprocess.run(["git", "ls-files", "-s", str(POSTBUILD)], cwd=REPO_ROOT, capture_output=True, text=True)
    if listed.returncode != 0 or not listed.stdout:
        pytest.skip("not a git checkout: only the file's mode on disk was checked")
    assert listed.stdout.startswith("100755"), "git update-index --chmod=+x binder/postBuild (a clone gets git's mode)"


def shell_words(line: str) -> list[str]:
    """Words and operators (`&&`, `||`, `;`, `|`, `>`) of one shell line, quotes respected, comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def postbuild_commands(text: str) -> list[list[str]]:
    """The words of each command in a shell script, skipping comments, heredoc bodies and assignments."""
    commands, heredoc_end = [], None
    for line in text.splitlines():
        if heredoc_end is not None:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        marker = re.search(r"<<-?\s*'?(\w+)'?", line)
        heredoc_end = marker[1] if marker else None
        command: list[str] = []
        for word in [*shell_words(line), ";"]:
            if word in ("&&", "||", ";", "|"):
                if command and not re.fullmatch(r"\w+=.*", command[0]):
                    commands.append(command)
                command = []
            else:
                command.append(word)
    return commands


def test_postbuild_only_does_what_a_binder_build_can() -> None:
    text = POSTBUILD.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text, "postBuild must stop at the first failing step"
    assert subprocess.run(["bash", "-n", str(POSTBUILD)]).returncode == 0, "postBuild has a bash syntax error"
    commands = postbuild_commands(text)
    unexpected = [" ".join(words) for words in commands if words[0] not in POSTBUILD_COMMANDS]
    assert unexpected == [], (
        f"postBuild runs what a Binder build cannot (no root; system packages go in apt.txt): {unexpected}"
    )
    installs = [words for words in commands if words[:4] == ["python", "-m", "pip", "install"]]
    assert installs and all("--no-deps" in words for words in installs), "dependencies come from requirements.txt only"


def test_postbuild_parser_sees_through_heredocs_and_chains() -> None:
    script = "set -e\nx=1\ncat > f <<'EOF'\nsudo rm -rf /\nEOF\npython -m a || echo no  # note\n"
    commands = [["set", "-e"], ["cat", ">", "f", "<<", "EOF"], ["python", "-m", "a"], ["echo", "no"]]
    assert postbuild_commands(script) == commands


@pytest.mark.parametrize(
    "remote",
    [
        "https://github.com/someone/mlscratch.git",
        "https://github.com/someone/mlscratch",
        "git@github.com:someone/mlscratch.git",
        "ssh://git@github.com/someone/mlscratch.git\n",
    ],
)
def test_badge_repository_from_a_github_remote(remote: str) -> None:
    assert badge.github_repo(remote) == "someone/mlscratch"


def test_badge_refuses_a_remote_that_binder_cannot_build() -> None:
    with pytest.raises(ValueError, match="OWNER/REPO"):
        badge.github_repo("/srv/git/mlscratch.git")


def test_readme_has_one_badge_of_the_form_badge_py_writes(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    (url,) = badge.BADGE_LINE.findall(readme)
    assert re.fullmatch(r"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/[\w./-]+\?urlpath=lab/tree/chapters", url)
    assert (REPO_ROOT / "chapters").is_dir()
    copy = tmp_path / "README.md"
    copy.write_text(readme)
    badge.write_badge(copy, badge.badge("someone/mlscratch", "v1"))
    assert "https://mybinder.org/v2/gh/someone/mlscratch/v1?urlpath=lab/tree/chapters" in copy.read_text()
    assert copy.read_text().replace(badge.BADGE_LINE.search(copy.read_text())[0], "") == readme.replace(
        badge.BADGE_LINE.search(readme)[0], ""
    )
