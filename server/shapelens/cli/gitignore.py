"""Which files git ignores: `git ls-files` where git and a repository are there, else the
.gitignore files read here (the rules of gitignore(5) that matter for a walk: `#` comments, `!`
negation, a trailing `/` for folders, a `/` inside anchoring to the file's folder, `*`, `?`,
`**`). The fallback does not read git's global excludes file or .git/info/exclude."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from shapelens.config import glob_regex


def git_visible_files(folder: str) -> list[str] | None:
    """Every file under `folder` git does not ignore (tracked, or untracked and not ignored), as
    absolute paths; None without git or outside a work tree."""
    if shutil.which("git") is None:
        return None
    try:
        done = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
                              cwd=folder, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    if not done.stdout and _ignored_itself(folder):
        return None  # `check data/` of an ignored data/: the reader walks below the named folder
    names = {n for n in done.stdout.decode("utf-8", "surrogateescape").split("\0") if n}
    return sorted(os.path.join(folder, n) for n in names)


def _git_check_ignore(path: str) -> bool | None:
    """git's verdict on one path; None without git or outside a work tree."""
    if shutil.which("git") is None:
        return None
    path = os.path.abspath(path)
    folder, name = (path, ".") if os.path.isdir(path) else os.path.split(path)
    try:
        code = subprocess.run(["git", "check-ignore", "-q", "--", name], cwd=folder, capture_output=True,
                              timeout=60).returncode
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {0: True, 1: False}.get(code)


def _ignored_itself(folder: str) -> bool:
    return bool(_git_check_ignore(folder))


def path_ignored(path: str) -> bool:
    """Whether git ignores one file (a file named on the command line, with --force-exclude)."""
    verdict = _git_check_ignore(path)
    if verdict is not None:
        return verdict
    path = os.path.abspath(path)
    top = cur = os.path.dirname(path)
    while not os.path.exists(os.path.join(top, ".git")) and os.path.dirname(top) != top:
        top = os.path.dirname(top)
    top = top if os.path.exists(os.path.join(top, ".git")) else cur
    ignore = GitIgnore(top)
    rel = os.path.relpath(cur, top)
    cur = top
    for part in [] if rel == "." else rel.split(os.sep):  # an ignored folder hides all below it
        cur = os.path.join(cur, part)
        if ignore.ignored(cur, True):
            return True
    return ignore.ignored(path, False)


@dataclass(frozen=True)
class _Rule:
    base: str  # the folder of the .gitignore
    regex: re.Pattern
    negate: bool
    dir_only: bool
    anchored: bool


def _rules(folder: str) -> list[_Rule]:
    try:
        with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        line = line.rstrip() if not line.endswith("\\ ") else line
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line.removeprefix("\\")
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        out.append(_Rule(folder, glob_regex(line.lstrip("/")), negate, dir_only, anchored))
    return out


class GitIgnore:
    """The .gitignore rules that apply while walking down from a folder."""

    def __init__(self, start: str) -> None:
        self.start = start = os.path.abspath(start)
        above, cur = [], start
        while True:  # the .gitignore files from the repository root down to `start`
            above.append(cur)
            if os.path.exists(os.path.join(cur, ".git")) or os.path.dirname(cur) == cur:
                break
            cur = os.path.dirname(cur)
        if not os.path.exists(os.path.join(above[-1], ".git")):
            above = [start]  # not in a repository: only the walked folder's own files count
        self._by_folder: dict[str, list[_Rule]] = {}
        self._chain = [r for folder in reversed(above) for r in self._load(folder)]

    def _load(self, folder: str) -> list[_Rule]:
        if folder not in self._by_folder:
            self._by_folder[folder] = _rules(folder)
        return self._by_folder[folder]

    def ignored(self, path: str, is_dir: bool) -> bool:
        """Whether `path`, below the walked folder (its own folders already walked, so not
        ignored), is ignored. The last rule that matches decides, as in git."""
        path = os.path.abspath(path)
        rules = list(self._chain)
        cur = self.start
        rel_parent = os.path.relpath(os.path.dirname(path), self.start)
        for part in [] if rel_parent == "." else rel_parent.split(os.sep):
            cur = os.path.join(cur, part)
            rules += self._load(cur)
        verdict = False
        for rule in rules:
            if rule.dir_only and not is_dir:
                continue
            rel = os.path.relpath(path, rule.base).replace(os.sep, "/")
            target = rel if rule.anchored else rel.rsplit("/", 1)[-1]
            if rule.regex.match(target):
                verdict = not rule.negate
        return verdict
