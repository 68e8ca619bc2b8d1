"""The Binder badge for this project, from the one setting it needs: the GitHub repository.

Binder builds a public GitHub repository, so the README's badge must name the one holding this
clone (yours, for a fork). By default it is read from `git remote get-url origin`.

    python binder/badge.py                          # print the badge for origin's repository
    python binder/badge.py OWNER/REPO --ref main    # or name it
    python binder/badge.py --write                  # and put it into README.md
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
URL = "https://mybinder.org/v2/gh/{repo}/{ref}?urlpath=lab/tree/chapters"
BADGE = "[![Binder](https://mybinder.org/badge_logo.svg)]({url})"
BADGE_LINE = re.compile(r"^\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]\((?P<url>[^)]*)\)$", re.M)
GITHUB_REMOTE = re.compile(r"github\.com[:/](?P<repo>[\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def github_repo(remote: str) -> str:
    """`https://github.com/owner/name.git` or `git@github.com:owner/name` -> `owner/name`."""
    match = GITHUB_REMOTE.search(remote.strip())
    if match is None:
        raise ValueError(f"{remote!r} is not a GitHub repository; Binder needs one: pass OWNER/REPO")
    return match["repo"]


def origin_repo() -> str:
    """The GitHub repository of this clone's `origin` remote."""
    found = subprocess.run(["git", "remote", "get-url", "origin"], capture_output=True, text=True, cwd=README.parent)
    if found.returncode != 0:
        raise ValueError("this clone has no `origin` remote; pass OWNER/REPO")
    return github_repo(found.stdout)


def badge(repo: str, ref: str = "main") -> str:
    """The README's badge line for `owner/name` at branch or tag `ref`."""
    return BADGE.format(url=URL.format(repo=repo, ref=ref))


def write_badge(readme: Path, line: str) -> None:
    """Replace README's one Binder badge line."""
    text = readme.read_text(encoding="utf-8")
    if len(BADGE_LINE.findall(text)) != 1:
        raise ValueError(f"{readme} must have exactly one Binder badge line to replace")
    readme.write_text(BADGE_LINE.sub(line, text), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", help="OWNER/REPO on GitHub (default: from the origin remote)")
    parser.add_argument("--ref", default="main", help="branch or tag Binder builds (default: main)")
    parser.add_argument("--write", action="store_true", help="put the badge into README.md")
    args = parser.parse_args(argv)
    try:
        line = badge(args.repo or origin_repo(), args.ref)
        if args.write:
            write_badge(README, line)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
