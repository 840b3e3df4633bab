"""The static plan: which statements of a file (and of the workspace files it imports) the probe
may run.

The file is never run as a script. The probe runs imports, class and function definitions, and
only the module-level statements that are *tensor-pure*: constants and arithmetic on them, calls
that resolve into torch or into nn.Module / config classes of the workspace, built only from
names such statements define. Everything else is skipped and the names it binds become unknown.
"""

from __future__ import annotations

import ast
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jedi

from shapelens.analysis import stmtcache
from shapelens.analysis.argparse_ns import module_constants, namespace_statement
from shapelens.analysis.callsites import FACTORY_PREFIX, factory_calls
from shapelens.analysis.imports import import_search, module_name_for, workspace_imports
from shapelens.analysis.resolve import (
    SAFE_BUILTINS,
    SAFE_DECORATORS,
    CalleeKind,
    Resolution,
    Resolver,
    import_aliases,
    torch_aliases,
)
from shapelens.analysis.source import assigned_names, dotted_name, flat_body, parse, span_key, stmt_key

# Methods that must not run even on values the plan trusts (they write files or leave torch).
DENIED_METHODS = frozenset(
    {"save", "save_pretrained", "tofile", "numpy", "share_memory_", "pin_memory", "register_hook",
     "load_state_dict", "apply", "to_file", "write", "dump"}
)
CALLABLE_KINDS = {CalleeKind.TORCH, CalleeKind.WORKSPACE_MODULE, CalleeKind.WORKSPACE_CONFIG, CalleeKind.SAFE}


@dataclass
class FilePlan:
    path: str
    module: str  # the import name the worker gives it
    source: str
    keep: list[str] = field(default_factory=list)  # stmt keys of module-level and class-body statements
    strip_decorators: list[str] = field(default_factory=list)
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
    search: list[str] = field(default_factory=list)  # put first on the probe's sys.path (import_search)

    def to_json(self) -> dict:
        return asdict(self)


class FilePlanner:
    """Decides the tensor-pure statements of one file."""

    def __init__(self, resolver: Resolver, path: str, text: str, tree: ast.Module,
                 cache: stmtcache.StatementCache | None = None, is_target: bool = True) -> None:
        self.resolver = resolver
        self.is_target = is_target  # the file being probed: its `__main__` block is planned too
        self.cache = cache
        self.path = path
        self.tree = tree
        self.lines = [ln.encode("utf-8") for ln in text.splitlines()] or [b""]
        self.text = text
        self.aliases = import_aliases(tree)
        self.torch_aliases = torch_aliases(tree)
        self._script: jedi.Script | None = None
        self.pure: set[str] = set()  # names bound by statements the probe runs
        self.defined: set[str] = set()  # classes and functions: usable as values, called only if resolved
        self.plan = FilePlan(path, "", text)
        self.resolved: dict[object, Resolution] = {}
        self.rebound = assigned_names(tree, imports=False, declared=True)
        self.star_import = any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)
                               for n in ast.walk(tree))
        self.jedi_answers: set[object] = set()  # keys of `resolved` that Jedi answered
        self._asked_jedi = False  # the statement being planned used a Jedi answer
        self._read_elsewhere = False  # its outcome depends on other statements (argparse)
        self._constants: dict | None = None

    @property
    def script(self) -> jedi.Script:
        """Made on first use: a file whose callees are all torch's or builtins needs no Jedi."""
        if self._script is None:
            self._script = self.resolver.script(self.path, self.text)
        return self._script

    # -- resolution -------------------------------------------------------------------------
    def resolve(self, node: ast.expr) -> Resolution:
        # `nn.Linear` whose head is bound only by an import means the same thing everywhere in
        # the file: resolve it once (a Jedi goto costs tens of ms in a long file).
        dotted = dotted_name(node)
        head = dotted.split(".")[0] if dotted else None
        if dotted and head in self.aliases and head not in self.rebound:
            key: object = dotted
        else:
            key = (node.lineno, node.col_offset, node.end_lineno or 0, node.end_col_offset or 0)
        if key not in self.resolved:
            found = self._without_jedi(dotted, head)
            if found is None:
                found = self.resolver.resolve(self.script, self.lines, node, self.aliases)
                self.jedi_answers.add(key)
            self.resolved[key] = found
        self._asked_jedi = self._asked_jedi or key in self.jedi_answers
        return self.resolved[key]

    def _without_jedi(self, dotted: str | None, head: str | None) -> Resolution | None:
        """torch's names from the worker's table, builtins by name: the answers Jedi would give,
        wherever the file cannot mean anything else (see `torch_aliases`)."""
        if not dotted or head is None:
            return None
        if head in self.torch_aliases:
            rest = dotted[len(head):]
            return self.resolver.resolve_torch_path(self.torch_aliases[head] + rest)
        if (dotted in SAFE_BUILTINS and dotted not in self.rebound and dotted not in self.aliases
                and not self.star_import):
            return Resolution(CalleeKind.SAFE, f"builtins.{dotted}")
        return None

    # -- expressions ------------------------------------------------------------------------
    def expr_is_pure(self, node: ast.AST, local: frozenset[str] = frozenset()) -> bool:
        if isinstance(node, ast.Name):
            return (node.id in self.pure or node.id in local or node.id in self.defined
                    or node.id in SAFE_BUILTINS or node.id in {"True", "False", "None"})
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Call):
            return self._call_is_pure(node, local)
        if isinstance(node, (ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = set(local)
            for gen in node.generators:
                if not self.expr_is_pure(gen.iter, frozenset(inner)):
                    return False
                inner |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
                if not all(self.expr_is_pure(cond, frozenset(inner)) for cond in gen.ifs):
                    return False
            elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            return all(self.expr_is_pure(e, frozenset(inner)) for e in elts)
        return all(self.expr_is_pure(child, local) for child in ast.iter_child_nodes(node)
                   if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)))

    def _call_is_pure(self, call: ast.Call, local: frozenset[str]) -> bool:
        args_pure = all(self.expr_is_pure(a, local) for a in call.args) and all(
            self.expr_is_pure(k.value, local) for k in call.keywords
        )
        if not args_pure:
            return False
        func = call.func
        # Calling or calling a method of a value the plan already trusts: an nn.Module instance
        # (its forward), a tensor method.
        if isinstance(func, ast.Name) and (func.id in self.pure or func.id in local) and not (
            func.id in self.aliases or func.id in self.defined
        ):
            return True
        if isinstance(func, ast.Attribute) and func.attr in DENIED_METHODS:
            return False
        res = self.resolve(func)
        if res.kind in CALLABLE_KINDS:
            return True
        if res.kind is CalleeKind.TORCH_DENIED:
            return False
        if isinstance(func, ast.Attribute) and self.expr_is_pure(func.value, local):
            base = func.value
            while isinstance(base, ast.Attribute):
                base = base.value
            # A method on a trusted value (tensor, module instance) Jedi could not resolve; a
            # method on an imported module (`os.system`) is never trusted.
            if isinstance(base, ast.Name) and base.id in self.aliases:
                return False
            return res.full_name is None or res.kind is not CalleeKind.UNKNOWN or not res.path
        return False

    # -- statements -------------------------------------------------------------------------
    def skip(self, stmt: ast.stmt, why: str) -> None:
        self.plan.skipped.append((stmt_key(stmt), why))
        self.pure -= assigned_names(stmt)

    def keep(self, stmt: ast.stmt) -> None:
        self.plan.keep.append(stmt_key(stmt))

    def plan_body(self, body: list[ast.stmt], in_class: bool = False) -> None:
        for stmt in flat_body(body, self.is_target) if not in_class else body:
            if self.cache is not None and not in_class:
                self._plan_cached(stmt)
            else:
                self._plan_one(stmt, in_class)

    def _plan_one(self, stmt: ast.stmt, in_class: bool) -> None:
        try:
            self.plan_statement(stmt, in_class)
        except RecursionError:  # an expression nested deeper than this analysis follows
            self.skip(stmt, "too deeply nested to analyse")

    def _plan_cached(self, stmt: ast.stmt) -> None:
        """A top-level statement, from the cache when its text and what it reads are unchanged."""
        assert self.cache is not None
        key = self._cache_key(stmt)
        hit = self.cache.get(key)
        if hit is not None:
            self.plan.keep += stmtcache.absolute(hit.keep, stmt.lineno)
            self.plan.strip_decorators += stmtcache.absolute(hit.strip, stmt.lineno)
            self.plan.skipped += [(f"{dl + stmt.lineno}:{c}", why) for dl, c, why in hit.skipped]
            self.pure = (self.pure - hit.pure_unset) | hit.pure_set
            self.defined |= hit.defined_add
            return
        marks = len(self.plan.keep), len(self.plan.strip_decorators), len(self.plan.skipped)
        defined_before = set(self.defined)
        self._asked_jedi = self._read_elsewhere = False
        self._plan_one(stmt, False)
        self.cache.replanned.append(stmt.lineno)
        if self._asked_jedi or self._read_elsewhere:
            return  # its verdict depends on what Jedi sees or on other statements: plan it again next time
        names = stmtcache.affected(stmt, assigned_names(stmt))
        skipped = [(k.split(":"), why) for k, why in self.plan.skipped[marks[2]:]]
        self.cache.put(key, stmtcache.Outcome(
            keep=stmtcache.relative(self.plan.keep[marks[0]:], stmt.lineno),
            strip=stmtcache.relative(self.plan.strip_decorators[marks[1]:], stmt.lineno),
            skipped=tuple((int(lc[0]) - stmt.lineno, int(lc[1]), why) for lc, why in skipped),
            pure_set=frozenset(names & self.pure), pure_unset=frozenset(names - self.pure),
            defined_add=frozenset(self.defined - defined_before)))

    def _cache_key(self, stmt: ast.stmt) -> tuple:
        end = stmt.end_lineno or stmt.lineno
        text = b"\n".join(self.lines[stmt.lineno - 1:end])
        context = tuple(sorted(
            (n, n in self.pure, n in self.defined, self.aliases.get(n), self.torch_aliases.get(n), n in self.rebound)
            for n in stmtcache.names_read(stmt)))
        return text, stmt.col_offset, self.star_import, context

    def plan_statement(self, stmt: ast.stmt, in_class: bool) -> None:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self.keep(stmt)
            self.pure |= assigned_names(stmt)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.keep(stmt)
            self._plan_decorators(stmt)
            self.pure.discard(stmt.name)
            self.defined.add(stmt.name)
        elif isinstance(stmt, ast.ClassDef):
            self.keep(stmt)
            self._plan_decorators(stmt)
            if all(self.expr_is_pure(b) or self.resolve(b).kind is not CalleeKind.UNKNOWN for b in stmt.bases):
                saved = set(self.pure), set(self.defined)
                self.plan_body(stmt.body, in_class=True)
                self.pure, self.defined = saved
            self.pure.discard(stmt.name)
            self.defined.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = stmt.value
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            ok = (value is None or self.expr_is_pure(value)) and all(self._target_ok(t) for t in targets)
            if isinstance(stmt, ast.AugAssign):
                ok = ok and self.expr_is_pure(stmt.target)
            if isinstance(stmt, ast.AnnAssign) and not in_class:
                ok = ok and value is not None
            if not ok and not in_class and self._parsed_arguments(stmt):
                return
            if ok:
                self.keep(stmt)
                self.pure |= assigned_names(stmt)
            else:
                self.skip(stmt, "not tensor-pure")
        elif isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant) or (
                isinstance(stmt.value, ast.Call) and self.expr_is_pure(stmt.value)
            ):
                self.keep(stmt)
            else:
                self.skip(stmt, "not tensor-pure")
        elif isinstance(stmt, ast.Pass):
            self.keep(stmt)
        else:
            self.skip(stmt, f"{type(stmt).__name__.lower()} statements are not run")

    def _parsed_arguments(self, stmt: ast.stmt) -> bool:
        """`opt = parser.parse_args()`: run as the namespace the file's `add_argument` calls
        describe (argparse_ns), so what reads `opt.latent_dim` is tensor-pure."""
        if self._constants is None:
            self._constants = module_constants(self.tree)
        replacement = namespace_statement(stmt, self.tree, self._constants)
        if replacement is None:
            return False
        self._read_elsewhere = True
        self.keep(stmt)
        self.plan.replace[stmt_key(stmt)] = replacement
        self.pure |= assigned_names(stmt)
        return True

    def _target_ok(self, target: ast.expr) -> bool:
        if isinstance(target, ast.Name):
            return True
        if isinstance(target, (ast.Tuple, ast.List)):
            return all(self._target_ok(t) for t in target.elts)
        if isinstance(target, ast.Starred):
            return self._target_ok(target.value)
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            return self.expr_is_pure(target.value)
        return False

    def _plan_decorators(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            name = dotted_name(target) or ""
            if name in SAFE_DECORATORS or name.split(".")[-1] in {"setter", "getter", "deleter"}:
                continue
            res = self.resolve(target)
            if res.kind in {CalleeKind.TORCH, CalleeKind.SAFE} or (res.full_name or "") in SAFE_DECORATORS:
                if isinstance(dec, ast.Call) and not all(self.expr_is_pure(a) for a in dec.args):
                    self.plan.strip_decorators.append(stmt_key(dec))
                continue
            self.plan.strip_decorators.append(stmt_key(dec))

    def ctor_sites(self, classes: set[str]) -> dict[str, list[str]]:
        """Call sites of the file's own classes whose arguments the worker may evaluate."""
        sites: dict[str, list[str]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes:
                if all(self.expr_is_pure(a) for a in node.args) and all(self.expr_is_pure(k.value) for k in node.keywords):
                    key = span_key(node)
                    sites.setdefault(node.func.id, []).append(key)
        # A factory function's call, with its locals put in (`def build(): d = 256; return
        # Decoder(dim=d)`), written out as the call text the worker evaluates (`call:...`).
        for cls, call in factory_calls(self.tree, classes):
            if self.expr_is_pure(call):
                sites.setdefault(cls, []).append(FACTORY_PREFIX + ast.unparse(call))
        return sites


def build_plan(resolver: Resolver, path: str, text: str, tree: ast.Module | None = None,
               max_files: int = 64, caches: dict[str, stmtcache.StatementCache] | None = None) -> ProbePlan:
    """Plan the target file and, transitively, the workspace files it imports. `caches` (by
    path, kept by the caller across edits) lets unchanged statements skip planning."""
    path = os.path.realpath(path)
    root = resolver.root
    resolver.overlay = {path: text}
    files: list[FilePlan] = []
    queue: list[tuple[str, str | None, ast.Module | None]] = [(path, text, tree)]
    seen: set[str] = set()
    target_planner: FilePlanner | None = None
    while queue and len(files) < max_files:
        fpath, ftext, tree = queue.pop(0)
        if fpath in seen:
            continue
        seen.add(fpath)
        if ftext is None:
            try:
                ftext = Path(fpath).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
        try:
            tree = tree or parse(ftext, fpath)
        except (SyntaxError, ValueError):
            continue  # the importer's probe reports the failed import
        cache = caches.setdefault(fpath, stmtcache.StatementCache()) if caches is not None else None
        planner = FilePlanner(resolver, fpath, ftext, tree, cache, is_target=fpath == path)
        if cache is not None:
            cache.begin()
        planner.plan_body(tree.body)
        if cache is not None:
            cache.end()
        planner.plan.module = module_name_for(fpath, root)
        files.append(planner.plan)
        if fpath == path:
            target_planner = planner
        for dep in workspace_imports(tree, fpath, resolver, planner.plan.module):
            if dep not in seen:
                queue.append((dep, None, None))
    plan = ProbePlan(target=path, root=root, files=files)
    if files and files[0].path == path:
        plan.search = import_search(path, root, files[0].module)
    if target_planner is not None:
        classes = {n.name for n in target_planner.tree.body if isinstance(n, ast.ClassDef)}
        plan.ctor_sites = target_planner.ctor_sites(classes)
    return plan
