"""Which files a `shapelens check` run covers: folders are walked for `*.py` and `*.ipynb`,
skipping what the config excludes and what .gitignore ignores; a file named on the command line is always checked
(unless --force-exclude), as in ruff."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from shapelens.cli.gitignore import GitIgnore, git_visible_files, path_ignored
from shapelens.config import Config

SUFFIXES = (".py", ".ipynb")  # what a folder walk picks up


@dataclass(frozen=True)
class WalkOptions:
    respect_gitignore: bool = True
    force_exclude: bool = False


def collect_files(paths: list[str], config_for: Callable[[str], Config], options: WalkOptions) -> list[str]:
    files: list[str] = []
    for raw in paths:
        if os.path.isdir(raw):
            files += walk(raw, config_for, options)
        elif not (options.force_exclude and _skipped_file(raw, config_for, options)):
            files.append(raw)
    seen, out = set(), []
    for f in files:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            out.append(f)
    return out


def walk(folder: str, config_for: Callable[[str], Config], options: WalkOptions) -> list[str]:
    config = config_for(folder)
    respect = options.respect_gitignore and config.respect_gitignore
    listed = git_visible_files(folder) if respect else None
    if listed is not None:
        found = [p for p in listed if p.endswith(SUFFIXES) and os.path.isfile(p)]
        return [_as_given(folder, p) for p in found
                if not config_for(p).excluded(p, inside=folder)]
    ignore = GitIgnore(folder) if respect else None
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            d for d in dirnames
            if not config_for(os.path.join(dirpath, d)).excluded(os.path.join(dirpath, d), inside=folder)
            and not (ignore and ignore.ignored(os.path.join(dirpath, d), True)))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name.endswith(SUFFIXES) and not config.excluded(path, inside=folder) \
                    and not (ignore and ignore.ignored(path, False)):
                out.append(path)
    return out


def _as_given(folder: str, path: str) -> str:
    """`path` spelled under `folder` as the user spelled it (samples/x.py, not /abs/samples/x.py)."""
    return os.path.join(folder, os.path.relpath(path, folder))


def _skipped_file(path: str, config_for: Callable[[str], Config], options: WalkOptions) -> bool:
    config = config_for(path)
    if config.excluded(path):
        return True
    return options.respect_gitignore and config.respect_gitignore and path_ignored(path)
