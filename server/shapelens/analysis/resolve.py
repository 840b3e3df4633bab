"""Resolving callees with Jedi: which calls go into torch, which into nn.Module classes of the
workspace, which are safe builtins, and which are unknown (never run)."""

from __future__ import annotations

import ast
import builtins
import collections
import os
import sys
import threading
import types
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shapelens.analysis.allowlist import torch_allowed
from shapelens.analysis.probeplan import module_name_for, source_roots
from shapelens.analysis.source import assigned_names, dotted_name, parse, walk_statements

if TYPE_CHECKING:
    import jedi


class CalleeKind(StrEnum):
    TORCH = "torch"
    TORCH_DENIED = "torch-denied"  # torch names off the allow-list (analysis.allowlist)
    WORKSPACE_MODULE = "workspace-module"  # an nn.Module subclass defined in the workspace
    WORKSPACE_CONFIG = "workspace-config"  # a dataclass / NamedTuple / plain config class
    SAFE = "safe"  # side-effect-free builtins and stdlib helpers
    UNKNOWN = "unknown"


SAFE_BUILTINS = frozenset(
    "int float bool str complex len range tuple list dict set frozenset min max abs round sum any "
    "all enumerate zip reversed sorted isinstance issubclass hasattr getattr slice divmod pow "
    "repr format hash iter next bytes map filter dir".split()
)
SAFE_STDLIB_PREFIXES = (
    "math.", "operator.", "dataclasses.field", "dataclasses.replace", "dataclasses.asdict",
    "collections.namedtuple", "typing.NamedTuple", "typing.cast", "functools.reduce",
    # `LinearNoBias = partial(nn.Linear, bias=False)`: its arguments must be pure values, and a
    # partial object is never called at module level (`_holds_callable`)
    "functools.partial",
    "itertools.", "builtins.",  # builtins.* is further filtered by SAFE_BUILTINS
)
# numpy's arithmetic and array constructors from values (cleanrl's `def layer_init(layer,
# std=np.sqrt(2))`, `nn.Linear(np.prod(shape), 64)`); never a reader (`load`, `fromfile`, `memmap`).
SAFE_NUMPY = frozenset(f"numpy.{n}" for n in (
    "sqrt pi e prod array asarray log log2 exp floor ceil float32 float64 int64 int32 arange linspace "
    "ones zeros full sum mean maximum minimum abs power".split()))
SAFE_DECORATORS = frozenset(
    {"builtins.staticmethod", "builtins.classmethod", "builtins.property", "dataclasses.dataclass",
     "functools.cached_property", "functools.lru_cache", "functools.cache", "typing.final",
     "abc.abstractmethod", "torch.no_grad", "torch.inference_mode", "torch.jit.ignore",
     "torch.jit.unused", "torch.jit.export", "torch.compiler.disable"}
)
MODULE_BASE = "torch.nn.modules.module.Module"


@dataclass(frozen=True)
class Resolution:
    kind: CalleeKind
    full_name: str | None = None
    path: str | None = None
    type: str | None = None  # what the name is: module, class, function, value/statement/instance


def classify_torch(full_name: str, public: str | None = None, kind: str | None = None) -> CalleeKind:
    return CalleeKind.TORCH if torch_allowed(public, full_name, kind=kind) else CalleeKind.TORCH_DENIED


def _char_col(line_bytes: bytes, byte_col: int) -> int:
    return len(line_bytes[:byte_col].decode("utf-8", "replace"))


def import_bindings(tree: ast.Module) -> dict[str, list[str]]:
    """Local name -> every dotted path the file's imports bind it to, in source order."""
    bindings: dict[str, list[str]] = {}
    for node in walk_statements(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                local, target = (a.asname, a.name) if a.asname else (a.name.split(".")[0],) * 2
                bindings.setdefault(local, []).append(target)
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                # A relative import binds the name too, to something of the workspace.
                target = f"{node.module}.{a.name}" if node.module and node.level == 0 else f".{a.name}"
                bindings.setdefault(a.asname or a.name, []).append(target)
    return bindings


def import_aliases(tree: ast.Module, bindings: dict[str, list[str]] | None = None) -> dict[str, str]:
    """Local name -> dotted module path, from the file's imports (the fallback when Jedi cannot
    see an installed package). `bindings`: the tree's `import_bindings`, when known."""
    bindings = import_bindings(tree) if bindings is None else bindings
    return {name: targets[-1] for name, targets in bindings.items() if not targets[-1].startswith(".")}


def torch_aliases(tree: ast.Module, bindings: dict[str, list[str]] | None = None,
                  rebound: set[str] | None = None) -> dict[str, str]:
    """The names that mean one thing in torch everywhere in the file: bound only by imports, all
    of them to the same torch path. A name also bound otherwise (`Linear = MyLinear`, a local
    `class Linear`, a parameter) or imported from two places is left to Jedi."""
    rebound = assigned_names(tree, imports=False, declared=True) if rebound is None else rebound
    bindings = import_bindings(tree) if bindings is None else bindings
    return {name: targets[0] for name, targets in bindings.items()
            if name not in rebound and len(set(targets)) == 1 and _in_torch(targets[0])}


def own_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """The file's top-level classes that its name can only mean, wherever it is read after the
    class statement: nothing else in the file binds the name (no other statement, import,
    parameter, or anything inside the class itself), and the class is plain or a dataclass. Jedi
    would only find that class statement (tens of ms per question in a long file)."""
    bound: collections.Counter[str] = collections.Counter()
    for stmt in tree.body:
        inner = [*stmt.body, *stmt.bases, *stmt.keywords, *stmt.decorator_list] \
            if isinstance(stmt, ast.ClassDef) else [stmt]
        bound.update(n for part in inner for n in assigned_names(part, declared=True))
        if isinstance(stmt, ast.ClassDef):
            bound[stmt.name] += 1
    aliases = import_aliases(tree)
    return {s.name: s for s in tree.body if isinstance(s, ast.ClassDef) and bound[s.name] == 1
            and all(_imported_as(dotted_name(d.func if isinstance(d, ast.Call) else d), "dataclasses.dataclass",
                                 aliases, tree) for d in s.decorator_list)}


def builtin_resolution(name: str) -> Resolution | None:
    """What Jedi answers for a builtin callable read by its bare name (the caller knows the file
    binds that name nowhere); None for anything else."""
    value = getattr(builtins, name, None) if not name.startswith("_") else None
    if value is None or not callable(value):
        return None
    kind = CalleeKind.SAFE if name in SAFE_BUILTINS else CalleeKind.UNKNOWN
    # typeshed's view, as Jedi reads it: an alias (`IOError = OSError`) or what site adds (`exit`)
    # is a statement there.
    what = "statement"
    if getattr(value, "__name__", None) == name:
        what = "class" if isinstance(value, type) else "function" if isinstance(value, types.BuiltinFunctionType) \
            else what
    return Resolution(kind, f"builtins.{name}", type=what)


def _in_torch(dotted: str) -> bool:
    return dotted == "torch" or dotted.startswith("torch.")


def shadows_library(dotted: str) -> bool:
    """A name under torch or a standard-library module: a workspace file of that name is never
    the module the probe imports."""
    return _in_torch(dotted) or dotted.split(".")[0] in sys.stdlib_module_names


class TorchNameTable(Protocol):
    def lookup(self, dotted: str) -> tuple[str, str] | None:
        """`torch.nn.Linear` -> (`torch.nn.modules.linear.Linear`, "class"), None if unknown."""


class Resolver:
    """Jedi over one workspace, in the interpreter that will run the probe."""

    def __init__(self, root: str, python: str | None = None, torch_names: TorchNameTable | None = None) -> None:
        self.root = os.path.realpath(root)
        self.torch_names = torch_names
        self.jedi_calls = 0  # gotos asked of Jedi (tests check torch names need none)
        self.python = python
        self._jedi: tuple[jedi.Project, object] | None = None  # made for the first question to Jedi
        self._lock = threading.Lock()  # Jedi's caches are not thread-safe
        self._class_kinds: dict[tuple[str, int], CalleeKind] = {}
        self._file_cache: dict[str, tuple[float, str, ast.Module]] = {}
        self.overlay: dict[str, str] = {}  # unsaved editor buffers, by real path

    # -- files ------------------------------------------------------------------------------
    def in_workspace(self, path: str | os.PathLike | None) -> bool:
        if not path:
            return False
        real = os.path.realpath(str(path))
        if not real.startswith(self.root + os.sep):
            return False
        rel = real[len(self.root) + 1 :]
        return not any(part in {"site-packages", "dist-packages", ".venv", "venv", "node_modules"}
                       for part in Path(rel).parts)

    def _read(self, path: str) -> tuple[str, ast.Module] | None:
        if path in self.overlay:
            try:
                return self.overlay[path], parse(self.overlay[path], path)
            except (SyntaxError, ValueError):
                return None
        try:
            mtime = os.path.getmtime(path)
            cached = self._file_cache.get(path)
            if cached and cached[0] == mtime:
                return cached[1], cached[2]
            text = Path(path).read_text(encoding="utf-8")
            tree = parse(text, path)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            return None
        self._file_cache[path] = (mtime, text, tree)
        return text, tree

    # -- callees ----------------------------------------------------------------------------
    def _project(self) -> tuple[jedi.Project, object]:
        """Jedi's project and environment, made (and Jedi imported: ~50 ms of a CLI run's CPU, as
        its planner's own) only when a file needs Jedi at all."""
        if self._jedi is None:
            import jedi

            environment = None
            if self.python:
                try:
                    environment = jedi.create_environment(self.python, safe=False)
                except Exception:  # noqa: BLE001 — a bad interpreter falls back to Jedi's default
                    environment = None
            self._jedi = (jedi.Project(self.root, environment_path=self.python if environment else None,
                                       added_sys_path=source_roots(self.root)[1:]), environment)
        return self._jedi

    def script(self, path: str, text: str) -> jedi.Script:
        import jedi

        project, environment = self._project()
        return jedi.Script(text, path=path, project=project, environment=environment)

    def resolve_torch_path(self, public: str) -> Resolution | None:
        """A dotted path into torch, already expanded through the file's imports, from the torch
        name table; None when the table does not know it (Jedi is asked then)."""
        if self.torch_names is None:
            return None
        parts = public.split(".")
        for i in range(len(parts), 0, -1):
            hit = self.torch_names.lookup(".".join(parts[:i]))
            if hit is None:
                continue
            canonical, kind = hit
            if i < len(parts) and kind == "module":
                return None  # a typo, or a submodule the table does not cover
            full = ".".join([canonical, *parts[i:]])
            what = kind if i == len(parts) else None
            return Resolution(classify_torch(full, public, what), full, type=what)
        return None

    def bare_name(self, path: str, name: str, line: int, own: dict[str, ast.ClassDef],
                  bound: bool) -> Resolution | None:
        """A bare name read on `line` of `path`, without Jedi where the file's tree settles it:
        one of its `own_classes` read after the class statement, or a builtin when the file
        binds the name nowhere (`bound` is false; no star import). None: ask Jedi."""
        cls = own.get(name)
        if cls is not None and line > (cls.end_lineno or cls.lineno):
            return Resolution(self.class_kind(path, cls.lineno), f"{module_name_for(path, self.root)}.{name}", path,
                              "class")
        return None if bound or cls is not None else builtin_resolution(name)

    def goto(self, script: jedi.Script, line: int, col: int) -> list:
        self.jedi_calls += 1
        try:
            with self._lock:
                return script.goto(line, max(col - 1, 0), follow_imports=True)
        except Exception:  # noqa: BLE001 — Jedi errors on odd code; callers fall back to imports
            return []

    def resolve(self, script: jedi.Script, text_lines: list[bytes], node: ast.expr,
                aliases: dict[str, str]) -> Resolution:
        line = node.end_lineno or node.lineno
        col = _char_col(text_lines[line - 1], node.end_col_offset or 0)
        for name in self.goto(script, line, col):
            res = self._classify_name(name)
            if res is not None:
                return res
        # Jedi sees nothing (no torch in its environment, or dynamic code): read the imports.
        dotted = dotted_name(node)
        if dotted:
            head, _, rest = dotted.partition(".")
            full = aliases.get(head)
            if full:
                full = f"{full}.{rest}" if rest else full
                if full == "torch" or full.startswith("torch."):
                    return Resolution(classify_torch(full), full)
            if dotted in SAFE_BUILTINS and head not in aliases:
                return Resolution(CalleeKind.SAFE, f"builtins.{dotted}")
        return Resolution(CalleeKind.UNKNOWN, dotted)

    def _classify_name(self, name) -> Resolution | None:
        full = name.full_name or ""
        path = str(name.module_path) if name.module_path else None
        what = name.type
        mine = path is not None and self.in_workspace(path)
        if mine and shadows_library(full):
            # A workspace `os.py` or `torch/` that Jedi follows: the probe's interpreter imports the
            # real module, so this answer describes code that will not run.
            return Resolution(CalleeKind.UNKNOWN, full, path, what)
        if full.startswith("torch.") or full == "torch":
            return Resolution(classify_torch(full, kind=what), full, path, what)
        if full.startswith("builtins."):
            short = full.removeprefix("builtins.")
            return Resolution(CalleeKind.SAFE if short in SAFE_BUILTINS else CalleeKind.UNKNOWN, full, type=what)
        if full in SAFE_NUMPY and not mine:  # Jedi calls numpy's ufuncs modules; they are functions
            return Resolution(CalleeKind.SAFE, full, path, "function" if what == "module" else what)
        if any(full.startswith(p) for p in SAFE_STDLIB_PREFIXES):
            return Resolution(CalleeKind.SAFE, full, path, what)
        if what == "class" and mine and path is not None:
            return Resolution(self.class_kind(path, name.line), full, path, what)
        if full:
            return Resolution(CalleeKind.UNKNOWN, full, path, what)
        return None

    # -- workspace classes --------------------------------------------------------------------
    def class_kind(self, path: str, line: int, _seen: frozenset = frozenset()) -> CalleeKind:
        key = (os.path.realpath(path), line)
        if key in self._class_kinds and key[0] not in self.overlay:
            return self._class_kinds[key]
        if key in _seen:
            return CalleeKind.UNKNOWN
        kind = CalleeKind.UNKNOWN
        read = self._read(key[0])
        if read:
            text, tree = read
            cls = next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.lineno == line), None)
            if cls is not None:
                kind = self._kind_of_classdef(key[0], text, tree, cls, _seen | {key})
        self._class_kinds[key] = kind
        return kind

    def _kind_of_classdef(self, path: str, text: str, tree: ast.Module, cls: ast.ClassDef,
                          seen: frozenset) -> CalleeKind:
        aliases, in_torch = import_aliases(tree), torch_aliases(tree)
        for dec in cls.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            if _imported_as(dotted_name(target), "dataclasses.dataclass", aliases, tree):
                return CalleeKind.WORKSPACE_CONFIG
        script: jedi.Script | None = None  # made only if a base is not plainly torch's
        lines = [ln.encode() for ln in text.splitlines()]
        for base in cls.bases:
            if _imported_as(dotted_name(base), "typing.NamedTuple", aliases, tree):
                return CalleeKind.WORKSPACE_CONFIG
            dotted = dotted_name(base) or ""
            head, _, rest = dotted.partition(".")
            if head in in_torch and ".".join(filter(None, (in_torch[head], rest))).startswith("torch.nn."):
                return CalleeKind.WORKSPACE_MODULE  # `nn.Module`, `nn.Sequential`: no need to ask Jedi
            line = base.end_lineno or base.lineno
            col = _char_col(lines[line - 1], base.end_col_offset or 0)
            script = script or self.script(path, text)
            for name in self.goto(script, line, col):
                full = name.full_name or ""
                if full.startswith("torch.nn.modules.") or full.startswith("torch.nn.Module"):
                    return CalleeKind.WORKSPACE_MODULE
                if name.type == "class" and self.in_workspace(name.module_path):
                    inner = self.class_kind(str(name.module_path), name.line, seen)
                    if inner is not CalleeKind.UNKNOWN:
                        return inner
            full = aliases.get(head, "")
            full = f"{full}.{rest}" if rest else full
            if full.startswith("torch.nn"):
                return CalleeKind.WORKSPACE_MODULE
        # A plain class whose body only holds constants and methods that set attributes works as
        # a config object (`class Config: n_embd = 768`).
        if not cls.bases and all(_is_config_member(s) for s in cls.body):
            return CalleeKind.WORKSPACE_CONFIG
        return CalleeKind.UNKNOWN


def _imported_as(dotted: str | None, full: str, aliases: dict[str, str], tree: ast.Module) -> bool:
    """`dotted` names `full` through the file's imports (`dataclass` from `dataclasses`), and the
    file does not define that name itself (its own `def dataclass` is not the real one)."""
    if not dotted:
        return False
    head, _, rest = dotted.partition(".")
    own = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == head
              or isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == head for t in n.targets)
              for n in tree.body)
    return not own and head in aliases and ".".join(filter(None, (aliases[head], rest))) == full


def _is_config_member(stmt: ast.stmt) -> bool:
    """Constants, annotations, and an `__init__` that only stores attributes without calling
    anything: constructing such a class cannot have side effects."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if stmt.name != "__init__" or stmt.decorator_list:
            return False
        return all(
            isinstance(s, (ast.Assign, ast.AnnAssign, ast.Pass, ast.Expr))
            and not any(isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.Lambda)) for n in ast.walk(s))
            for s in stmt.body
        )
    return isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Pass, ast.Expr)) and not any(
        isinstance(n, (ast.Call, ast.Await, ast.Lambda)) for n in ast.walk(stmt)
    )
