"""Which files of a folder are the workspace's Python files: the CLI checks them, the worker
reads call sites in them. Virtualenvs, build output, caches and hidden folders are skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator

SKIP_DIRS = frozenset({"venv", "env", "node_modules", "site-packages", "__pycache__", "build", "dist"})


def python_files(root: str | os.PathLike[str]) -> Iterator[str]:
    """The .py files below `root`, in sorted order, folder by folder."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(folder, name)
