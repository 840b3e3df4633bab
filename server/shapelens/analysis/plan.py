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
from pathlib import Path
from typing import TYPE_CHECKING

from shapelens.analysis import stmtcache
from shapelens.analysis.argparse_ns import namespace_statement
from shapelens.analysis.budget import MAX_STATEMENT_CHARS, BudgetSpent, PlanBudget
from shapelens.analysis.callsites import ctor_sites
from shapelens.analysis.envreads import env_default, env_test
from shapelens.analysis.hints import pure_hint_keys
from shapelens.analysis.imports import import_search, workspace_deps
from shapelens.analysis.planqueue import PlanQueue
from shapelens.analysis.probeplan import FilePlan, ProbePlan, module_name_for
from shapelens.analysis.purity import CLASS_HOOKS, MODULE_HOOKS, PurityRules
from shapelens.analysis.resolve import (
    SAFE_STDLIB_PREFIXES,
    CalleeKind,
    Resolution,
    Resolver,
    import_aliases,
    import_bindings,
    own_classes,
    shadows_library,
    torch_aliases,
)
from shapelens.analysis.source import assigned_names, bound_here, dotted_name, flat_body, parse, stmt_key

if TYPE_CHECKING:
    import jedi


class FilePlanner(PurityRules):
    """Decides the tensor-pure statements of one file (the rules: `analysis.purity`)."""

    def __init__(self, resolver: Resolver, path: str, text: str, tree: ast.Module,
                 cache: stmtcache.StatementCache | None = None, budget: PlanBudget | None = None,
                 is_target: bool = True) -> None:
        self.resolver = resolver
        self.is_target = is_target  # the file being probed: its `__main__` block is planned too
        self._read_elsewhere = False  # the statement's outcome depends on others (argparse)
        self.budget = budget
        self.steps = 0  # expressions looked at (the budget is checked every so many)
        self.at: ast.stmt | None = None  # the top-level statement being planned
        self.cache = cache
        self.path = path
        self.tree = tree
        self.lines = [ln.encode("utf-8") for ln in text.splitlines()] or [b""]
        self.text = text
        # What the whole file binds, read once, past statements too large to analyse.
        self.scan = ast.Module([st for st in tree.body if not self._oversized(st)], [])
        imports = import_bindings(tree)
        big = set().union(*(bound_here(st) for st in tree.body if self._oversized(st)))
        self.rebound = assigned_names(self.scan, imports=False, declared=True).union(big)
        self.own_classes = {k: c for k, c in own_classes(self.scan).items() if k not in big and "*" not in imports}
        self.aliases = import_aliases(tree, imports)
        self.torch_aliases = torch_aliases(tree, imports, self.rebound)
        self._script: jedi.Script | None = None
        self.pure: set[str] = set()  # names bound by statements the probe runs
        self.defined: set[str] = set()  # classes and functions: usable as values, called only if resolved
        self.plan = FilePlan(path, "", text)
        self.resolved: dict[object, Resolution] = {}
        self.star_import = "*" in imports
        self.jedi_answers: set[object] = set()  # keys of `resolved` that Jedi answered
        self._asked_jedi = False  # the statement being planned used a Jedi answer
        self.import_names = frozenset(imports)
        self.bindings: dict[str, ast.expr] = {}  # a pure name's latest value (may it be called?)
        self.def_nodes = {n.name: n for n in flat_body(tree.body)
                          if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}
        self.lazy_annotations = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                                    and any(a.name == "annotations" for a in n.names) for n in tree.body)
        self.properties: set[str] = set()  # in a class body: its @property names (for `.setter`)
        self.methods: set[str] = set()  # in a class body: the methods defined so far

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
            found = self._without_jedi(dotted, head, node)
            if found is None:
                if self.budget is not None:
                    self.budget.check()  # a Jedi question costs tens of ms in a long file
                found = self.resolver.resolve(self.script, self.lines, node, self.aliases)
                self.jedi_answers.add(key)
            self.resolved[key] = found
        self._asked_jedi = self._asked_jedi or key in self.jedi_answers
        return self.resolved[key]

    def _without_jedi(self, dotted: str | None, head: str | None, node: ast.expr) -> Resolution | None:
        """torch's names from the worker's table, builtins and the file's own classes from its
        tree: Jedi's answers, wherever the file cannot mean anything else (`torch_aliases`...)."""
        if not dotted or head is None:
            return None
        if head in self.torch_aliases:
            rest = dotted[len(head):]
            return self.resolver.resolve_torch_path(self.torch_aliases[head] + rest)
        target = self.aliases.get(head) if head not in self.rebound else None
        if target and shadows_library(target):
            # `os.system`, `math.floor`: by name, so that a workspace `os.py` Jedi would follow
            # never makes them torch's (the probe imports the real module).
            full = target + dotted[len(head):]
            safe = any(full.startswith(p) for p in SAFE_STDLIB_PREFIXES) and not full.startswith("builtins.")
            # `import math` binds a module; `from functools import partial` binds `functools.partial`.
            module = full == target and "." not in dotted and "." not in target
            return Resolution(CalleeKind.SAFE if safe else CalleeKind.UNKNOWN, full, type="module" if module else None)
        return self.resolver.bare_name(self.path, dotted, node.lineno, self.own_classes,
                                       dotted in self.rebound or dotted in self.aliases or self.star_import)

    # -- statements -------------------------------------------------------------------------
    def skip(self, stmt: ast.stmt, why: str) -> None:
        self.plan.skipped.append((stmt_key(stmt), why))
        self.pure -= bound_here(stmt)

    def keep(self, stmt: ast.stmt) -> None:
        self.plan.keep.append(stmt_key(stmt))

    def plan_body(self, body: list[ast.stmt], in_class: bool = False) -> None:
        for stmt in flat_body(body, self.is_target) if not in_class else body:
            if self.budget is not None:
                self.budget.check()
            if not in_class:
                self.at = stmt
            if self._oversized(stmt):
                self.plan.skipped.append((stmt_key(stmt), "too large to analyse"))
                self.pure -= bound_here(stmt)
            elif self.cache is not None and not in_class:
                self._plan_cached(stmt)
            else:
                self._plan_one(stmt, in_class)
            self._note_binding(stmt)

    def _oversized(self, stmt: ast.stmt) -> bool:
        """A statement of hundreds of kilobytes (a 2 MB one-line literal): every look at it
        costs seconds, and no model is built from one."""
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            return False  # planned statement by statement (each checks the budget)
        end = stmt.end_lineno or stmt.lineno
        return sum(len(line) for line in self.lines[stmt.lineno - 1:end]) > MAX_STATEMENT_CHARS

    def _note_binding(self, stmt: ast.stmt) -> None:
        """What each pure name holds, for deciding whether calling it is pure."""
        for name in bound_here(stmt):
            self.bindings.pop(name, None)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            if stmt.targets[0].id in self.pure:
                self.bindings[stmt.targets[0].id] = stmt.value

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
        if self._asked_jedi or self._read_elsewhere:  # (argparse: what other statements add)
            return  # its verdict depends on what Jedi sees elsewhere: plan it again next time
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
            self.keep(stmt)  # what it binds is judged where it is used (`import_names`)
            bound = assigned_names(stmt)
            self.pure -= bound  # `x = 3` then `from os import system as x`: x is no longer data
            self.defined -= bound
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not self._define(stmt, self._def_refused(stmt, in_class), in_class):
                return
            self.pure.discard(stmt.name)
            self.defined.add(stmt.name)
            if in_class:
                self.methods.add(stmt.name)
            if in_class and any(dotted_name(d) == "property" or (dotted_name(d) or "").endswith(".setter")
                                for d in stmt.decorator_list):
                self.properties.add(stmt.name)
        elif isinstance(stmt, ast.ClassDef):
            self._plan_class(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            self._plan_assignment(stmt, in_class)
        elif isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant) or (
                isinstance(stmt.value, ast.Call) and self.expr_is_pure(stmt.value)
            ):
                self.keep(stmt)
            else:
                self.skip(stmt, "not tensor-pure")
        elif isinstance(stmt, ast.Pass):
            self.keep(stmt)
        elif isinstance(stmt, ast.If) and not in_class:
            self._plan_if(stmt)
        else:
            self.skip(stmt, f"{type(stmt).__name__.lower()} statements are not run")

    def _plan_if(self, stmt: ast.If) -> None:
        """`if hasattr(nn, 'SiLU'): Swish = nn.SiLU` / `else: class Swish(nn.Module): ...` (a
        compatibility shim): run as Python runs it when its test is tensor-pure and every
        statement of both branches would run on its own. A test that only reads the environment
        (envreads.py) takes the branch an empty environment takes; the other one never runs."""
        env = env_test(stmt.test)
        if env is None and not self.expr_is_pure(stmt.test):
            self.skip(stmt, "not tensor-pure")
            return
        branches = [*stmt.body, *stmt.orelse] if env is None else stmt.body if env else stmt.orelse
        kept, skipped = len(self.plan.keep), len(self.plan.skipped)
        for inner in branches:
            self.plan_statement(inner, False)
        if len(self.plan.skipped) > skipped or not {stmt_key(s) for s in branches} <= set(self.plan.keep[kept:]):
            del self.plan.keep[kept:]
            self.skip(stmt, "a branch is not tensor-pure")
            return
        if env is not None:  # the worker puts the constant in the test (never cached: replace is not)
            self.plan.replace[stmt_key(stmt)], self._read_elsewhere = repr(env), True
        self.keep(stmt)

    def _def_refused(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> str | None:
        if fn.name in (CLASS_HOOKS if in_class else MODULE_HOOKS):
            return f"`{fn.name}` would run at definition or import time, outside the model"
        if not self.signature_is_inert(fn.args, fn.returns, annotations=not self.lazy_annotations):
            return "its default arguments or annotations are not tensor-pure"
        return None

    def _define(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, refused: str | None,
                method: bool = False) -> bool:
        """Keep a def or class statement, or skip it (its name then unknown) when Python would run
        something impure to define it."""
        if refused:
            self.skip(stmt, refused)
            self.defined.discard(stmt.name)
            return False
        self.keep(stmt)
        self._plan_decorators(stmt, method)
        return True

    def _plan_class(self, stmt: ast.ClassDef) -> None:
        if not self._define(stmt, self.class_header_ok(stmt)):
            return
        saved = set(self.pure), set(self.defined), self.properties, self.methods, dict(self.bindings)
        self.properties, self.methods = set(), set()
        self.plan_body(stmt.body, in_class=True)
        self.pure, self.defined, self.properties, self.methods, self.bindings = saved
        self.pure.discard(stmt.name)
        self.defined.add(stmt.name)

    def _plan_assignment(self, stmt: ast.Assign | ast.AnnAssign | ast.AugAssign, in_class: bool) -> None:
        value = stmt.value
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        # In a class body, `forward = _forward_impl` makes another name for one of its methods:
        # nothing is called (a function from outside the class is not taken: the instance would
        # hand it to module-level code).
        alias = in_class and isinstance(value, ast.Name) and value.id in self.methods
        ok = (value is None or alias or self.expr_is_pure(value)) and all(self._target_ok(t) for t in targets)
        if isinstance(stmt, ast.AugAssign):
            ok = ok and self.expr_is_pure(stmt.target)
        if isinstance(stmt, ast.AnnAssign):
            ok = ok and (value is not None or in_class)
            ok = ok and (self.lazy_annotations and not in_class or self.value_is_inert(stmt.annotation))
        # `opt = parser.parse_args()` runs as the Namespace of the file's add_argument defaults.
        replacement = None if ok or in_class else namespace_statement(stmt, self.tree) or env_default(stmt)
        if replacement is not None:
            self._read_elsewhere = True
            self.plan.replace[stmt_key(stmt)] = replacement
        if ok or replacement is not None:
            self.keep(stmt)
            self.pure |= assigned_names(stmt)
        else:
            self.skip(stmt, "not tensor-pure")

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

    def _plan_decorators(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, method: bool) -> None:
        for dec in node.decorator_list:
            if self.decorator_ok(dec):
                continue
            self.plan.strip_decorators.append(stmt_key(dec))
            if method and self.decorator_deferrable(dec):  # runs when the method is first called
                self.plan.defer_decorators.append(stmt_key(dec))

    def call_args_pure(self, call: ast.Call) -> bool:
        """Whether the worker may evaluate a call's arguments in the module namespace: a call
        site of the file, a hint comment, a pyproject.toml `init` string."""
        return all(self.expr_is_pure(a) for a in call.args) and all(self.expr_is_pure(k.value) for k in call.keywords)


def build_plan(resolver: Resolver, path: str, text: str, tree: ast.Module | None = None,
               max_files: int = 64, caches: dict[str, stmtcache.StatementCache] | None = None,
               budget: PlanBudget | None = None) -> ProbePlan:
    """Plan the target file and, transitively, the workspace files it imports. `caches` (by
    path, kept by the caller across edits) lets unchanged statements skip planning. When the
    `budget` runs out, the plan holds what was planned so far and says where it stopped; when
    it is preempted, `budget.Preempted` propagates."""
    path = os.path.realpath(path)
    root = resolver.root
    resolver.overlay = {path: text}
    files: list[FilePlan] = []
    queue = PlanQueue(path)
    trees: dict[str, tuple[str | None, ast.Module | None]] = {path: (text, tree)}
    target_planner: FilePlanner | None = None
    stopped: dict | None = None
    while len(files) < max_files and stopped is None and (fpath := queue.pop()) is not None:
        ftext, tree = trees.pop(fpath, (None, None))
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
        planner = FilePlanner(resolver, fpath, ftext, tree, cache, budget, is_target=fpath == path)
        if cache is not None:
            cache.begin()
        try:
            planner.plan_body(tree.body)
        except BudgetSpent:
            at = planner.at.lineno if planner.at is not None else 1
            stopped = {"path": fpath, "line": at, "seconds": budget.seconds if budget else 0}
            planner.budget = None  # what follows (hints) is small: finish it
        if cache is not None and stopped is None:
            cache.end()
        planner.plan.module = module_name_for(fpath, root)
        files.append(planner.plan)
        if fpath == path:
            target_planner = planner
        queue.planned(fpath, workspace_deps(planner.scan, fpath, resolver, planner.plan.module))
    plan = ProbePlan(target=path, root=root, files=files, stopped=stopped)
    if files and files[0].path == path:
        plan.search = import_search(path, root, files[0].module)
    if target_planner is not None:
        target_planner.budget = None
        classes = {n.name for n in target_planner.tree.body if isinstance(n, ast.ClassDef)}
        if stopped is None:
            plan.ctor_sites = ctor_sites(target_planner, classes)
        plan.pure_hints, plan.pure_models = pure_hint_keys(target_planner.text, root, target_planner.call_args_pure)
    return plan
