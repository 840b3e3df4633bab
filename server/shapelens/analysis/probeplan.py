"""What a plan is: the statements of each file the probe may run, and what else the worker may
evaluate (call sites, hints). It crosses the process boundary as JSON (`ProbePlan.to_json`)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class FilePlan:
    path: str
    module: str  # the import name the worker gives it
    source: str
    keep: list[str] = field(default_factory=list)  # stmt keys of module-level and class-body statements
    strip_decorators: list[str] = field(default_factory=list)
    # Of those, method decorators of installed packages: applied when the method is first called.
    defer_decorators: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (stmt key, why)
    # stmt key -> the statement the probe runs instead (`opt = parser.parse_args()` -> a Namespace)
    replace: dict[str, str] = field(default_factory=dict)


@dataclass
class ProbePlan:
    target: str
    root: str
    files: list[FilePlan]
    # class name -> spans "l:c:el:ec" of call sites in the target whose arguments the worker may
    # evaluate in the module namespace (pure given module-level names), or "call:<text>", a
    # factory function's call with its locals put in (callsites.py).
    ctor_sites: dict[str, list[str]] = field(default_factory=dict)
    # Untrusted workspaces: calls into torch whose arguments are all literals, checked without
    # running any user code ({"span": "l:c:el:ec", "name": resolved torch name}).
    literal_torch_calls: list[dict] = field(default_factory=list)
    trusted: bool = True
    # Hint comments ([line, call]) and pyproject.toml models ([name, call]) whose constructor
    # arguments are tensor-pure: the worker evaluates only these.
    pure_hints: list[list] = field(default_factory=list)
    pure_models: list[list] = field(default_factory=list)
    # Where planning stopped when its time budget ran out ({"path", "line", "seconds"}): the
    # statements from there on are not run.
    stopped: dict | None = None
    search: list[str] = field(default_factory=list)  # put first on the probe's sys.path (import_search)

    def to_json(self) -> dict:
        return asdict(self)


def source_roots(root: str) -> list[str]:
    """The folders imports of the workspace start from: its root, and `<root>/src` of a src-layout
    project (`src/pkg/...`, where `import pkg` works once the project is installed), as Pyright
    and Pylance add it."""
    src = os.path.join(root, "src")
    return [root, src] if os.path.isdir(src) and not os.path.isfile(os.path.join(src, "__init__.py")) else [root]


def module_name_for(path: str, root: str) -> str:
    """The import name the worker gives a file: relative to the workspace root (or to its `src`
    folder), or for a file of an installed package (in site-packages), its real one, so that its
    relative imports reach the installed package."""
    segments = Path(path).parts
    for i in range(len(segments) - 2, -1, -1):
        if segments[i] in ("site-packages", "dist-packages"):
            root = str(Path(*segments[: i + 1]))
            break
    else:
        root = next((r for r in reversed(source_roots(root))
                     if os.path.realpath(path).startswith(os.path.realpath(r) + os.sep)), root)
    rel = Path(os.path.relpath(path, root)).with_suffix("")
    parts = list(rel.parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    if not parts or any(p.startswith("..") for p in parts):
        return Path(path).stem
    return ".".join(parts)
