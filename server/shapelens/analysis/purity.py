"""The one purity check: whether evaluating an expression at module level can only build and
shape tensors and modules. The planner (module-level statements, class bodies, signatures,
decorators), call sites, hint comments and pyproject.toml `init` strings all go through it, and
so must anything else that wants to evaluate the file's expressions (a `__main__` block).

The rule is an allow-list on *values*, not a deny-list on calls: a module object, a function of
a non-torch module (`os.system`), a function the file defines, a torch name off the allow-list,
or a dunder attribute never enters a pure expression, so no higher-order helper (`map`,
`sorted(key=)`, `functools.reduce`) can be handed one, and a name is called only when it holds a
torch callable or a model instance.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from shapelens.analysis.resolve import SAFE_DECORATORS, CalleeKind, Resolution
from shapelens.analysis.source import dotted_name

if TYPE_CHECKING:
    from shapelens.analysis.budget import PlanBudget
    from shapelens.analysis.resolve import Resolver

# Methods that must not run even on values the plan trusts (they write files, load, or leave torch).
DENIED_METHODS = frozenset(
    {"save", "save_pretrained", "tofile", "numpy", "share_memory_", "pin_memory", "register_hook",
     "load_state_dict", "apply", "apply_", "map_", "map2_", "to_file", "write", "dump", "dumps", "load",
     "from_file", "storage", "untyped_storage", "from_pretrained", "system", "popen", "exec", "eval",
     # training, not shapes: a script's `__main__` block calls it, and under the probe's no_grad
     # it could only fail
     "backward"}
)
CALLABLE_KINDS = {CalleeKind.TORCH, CalleeKind.WORKSPACE_MODULE, CalleeKind.WORKSPACE_CONFIG, CalleeKind.SAFE}
# Builtins that may be passed around as values (to `map`, `sorted(key=)`): none of them can reach
# an attribute by a computed name or call a zero-argument callable.
VALUE_BUILTINS = frozenset(
    "int float bool str complex len tuple list dict set frozenset min max abs round sum any all "
    "reversed sorted divmod pow".split()
)
# Methods Python calls on its own when a class is defined, subscripted or collected: stripped
# from every class body, since they would run at definition time rather than in the model.
CLASS_HOOKS = frozenset({"__init_subclass__", "__set_name__", "__class_getitem__", "__mro_entries__",
                         "__prepare__", "__instancecheck__", "__subclasscheck__", "__del__"})
MODULE_HOOKS = frozenset({"__getattr__", "__dir__"})  # PEP 562: run by another module's import
SAFE_METACLASSES = frozenset({"abc.ABCMeta", "enum.EnumMeta", "enum.EnumType"})
METACLASS_BASES = frozenset({"builtins.type", "type", *SAFE_METACLASSES})
_RETURNS_SELF = frozenset({"to", "eval", "train", "cpu", "cuda", "float", "half", "double", "bfloat16",
                           "requires_grad_", "to_empty", "type"})
_VALUE_TYPES = frozenset({"class", "function", "value", "instance", "statement", "property"})


class PurityRules:
    """Mixed into the planner, which supplies the file's state: `pure` (names bound by statements
    the probe runs), `defined` (its classes and functions), `import_names`, `bindings` (a pure
    name's latest value expression), `def_nodes`, `rebound`, `star_import`, `aliases`, `properties`
    (in a class body, its @property names), `path`, `resolver`, `resolve`, and the planning
    `budget` (checked every so many expressions) with its `steps` count."""

    pure: set[str]
    defined: set[str]
    import_names: frozenset[str]
    bindings: dict[str, ast.expr]
    def_nodes: dict[str, ast.stmt]
    rebound: set[str]
    star_import: bool
    aliases: dict[str, str]
    properties: set[str]
    budget: PlanBudget | None
    steps: int
    path: str
    resolver: Resolver

    def resolve(self, node: ast.expr) -> Resolution:
        raise NotImplementedError

    # -- values -------------------------------------------------------------------------------
    def expr_is_pure(self, node: ast.AST, local: frozenset[str] = frozenset()) -> bool:
        """Evaluating `node` in the module namespace (names in `local` bound by an enclosing
        comprehension) can only compute with constants, torch and the workspace's models."""
        self.steps += 1
        if self.budget is not None and not self.steps % 2048:
            self.budget.check()
        if isinstance(node, ast.Name):
            return self._name_is_pure(node, local)
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Call):
            return self._call_is_pure(node, local)
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_") or node.attr in DENIED_METHODS:
                return False  # `().__class__.__base__.__subclasses__()`, `f.__globals__`, `t.untyped_storage`
            if self._import_headed(node):
                return self._imported_value_ok(node)
            return self.expr_is_pure(node.value, local)
        if isinstance(node, (ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = set(local)
            for gen in node.generators:
                if gen.is_async or not self.expr_is_pure(gen.iter, frozenset(inner)):
                    return False
                inner |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
                if not all(self.expr_is_pure(cond, frozenset(inner)) for cond in gen.ifs):
                    return False
            elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            return all(self.expr_is_pure(e, frozenset(inner)) for e in elts)
        return all(self.expr_is_pure(child, local) for child in ast.iter_child_nodes(node)
                   if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)))

    def _name_is_pure(self, node: ast.Name, local: frozenset[str]) -> bool:
        name = node.id
        if name in local or (name in self.pure and name not in self.defined):
            return True
        if name in self.defined:
            return self._defined_value_ok(name)
        if name in self.import_names:
            return self._imported_value_ok(node)
        if name in {"True", "False", "None"}:
            return True
        return name in VALUE_BUILTINS and self._plain_builtin(name)

    def _plain_builtin(self, name: str) -> bool:
        return name not in self.rebound and name not in self.import_names and not self.star_import

    def _defined_value_ok(self, name: str) -> bool:
        """A class of the file is a value when it is a model or a config (calling it is allowed
        anyway); a function of the file is not (it would run when `map` or a hook calls it)."""
        node = self.def_nodes.get(name)
        if not isinstance(node, ast.ClassDef) or name in self.import_names:
            return False  # (an import that rebinds the class's name: not the class any more)
        return self.resolver.class_kind(self.path, node.lineno) in (CalleeKind.WORKSPACE_MODULE,
                                                                    CalleeKind.WORKSPACE_CONFIG)

    def _import_headed(self, node: ast.expr) -> bool:
        dotted = dotted_name(node)
        head = dotted.split(".")[0] if dotted else None
        return head is not None and head in self.import_names and head not in self.pure

    def _imported_value_ok(self, node: ast.expr) -> bool:
        """A name an import binds (or an attribute chain on one), used as a value: allowed torch
        names, safe stdlib helpers, the workspace's model and config classes, and constants of
        other workspace files (whose own plans ran them); never a module object, nor a value of
        an installed package or the standard library (`sys.modules`, a library's callable
        object: module-level code would hand them to `map`)."""
        res = self.resolve(node)
        if res.type == "module":
            return False
        if res.kind in CALLABLE_KINDS:
            return res.type is None or res.type in _VALUE_TYPES
        return (res.kind is CalleeKind.UNKNOWN and res.type in ("statement", "instance") and res.path is not None
                and res.path != self.path and self.resolver.in_workspace(res.path))

    # -- calls --------------------------------------------------------------------------------
    def _call_is_pure(self, call: ast.Call, local: frozenset[str]) -> bool:
        func = call.func
        res: Resolution | None = None
        if isinstance(func, ast.Name):
            if func.id in local or (func.id in self.pure and func.id not in self.defined):
                # A name the plan bound: callable when it holds a torch callable or a model.
                if func.id not in local and not self._holds_callable(func.id, 0):
                    return False
            else:
                res = self.resolve(func)
                if res.kind not in CALLABLE_KINDS or res.type == "module":
                    return False
                if not self._builtin_args_ok(res, call):
                    return False
                if (res.full_name or "").removeprefix("builtins.") == "dir":
                    # `'silu' in dir(torch.nn.functional)` (timm): the names of a torch module
                    arg = self.resolve(call.args[0])
                    return dotted_name(call.args[0]) is not None and arg.type == "module" \
                        and (arg.full_name or "").split(".")[0] == "torch"
                if (res.full_name or "").removeprefix("builtins.") in ("getattr", "hasattr"):
                    # `hasattr(nn, 'SiLU')` reads what `nn.SiLU` reads, and is as pure
                    read = ast.copy_location(ast.Attribute(call.args[0], call.args[1].value,  # type: ignore[attr-defined]
                                                           ast.Load()), call)
                    return self.expr_is_pure(read, local) and all(self.expr_is_pure(a, local) for a in call.args[2:])
        elif isinstance(func, ast.Attribute):
            if func.attr.startswith("_") or func.attr in DENIED_METHODS:
                return False
            if self._import_headed(func):
                res = self.resolve(func)
                if res.kind not in CALLABLE_KINDS or res.type == "module":
                    return False
            elif not self._method_ok(func, local):
                return False
        else:
            if not self.expr_is_pure(func, local):
                return False
            res = self.resolve(func)
            if res.kind not in CALLABLE_KINDS:
                return False
        return all(self.expr_is_pure(a, local) for a in call.args) and all(
            self.expr_is_pure(k.value, local) for k in call.keywords)

    def _builtin_args_ok(self, res: Resolution, call: ast.Call) -> bool:
        """`getattr`/`hasattr` only with a constant public attribute name (it is then just an
        attribute read); `iter` only in its one-argument form (two arguments call a callable)."""
        name = (res.full_name or "").removeprefix("builtins.")
        if name in ("getattr", "hasattr"):
            attr = call.args[1] if len(call.args) > 1 else None
            return (isinstance(attr, ast.Constant) and isinstance(attr.value, str)
                    and not attr.value.startswith("_") and not call.keywords)
        if name in ("iter", "dir"):
            return len(call.args) == 1 and not call.keywords
        return True

    def _method_ok(self, func: ast.Attribute, local: frozenset[str]) -> bool:
        """A method of a value the plan trusts (a tensor, a model, a config, a builtin value)."""
        if not self.expr_is_pure(func.value, local):
            return False
        res = self.resolve(func)
        if res.kind in CALLABLE_KINDS:
            return True
        if res.kind is CalleeKind.TORCH_DENIED:
            return False
        # Jedi found a function it cannot vouch for (the file's own method, a library's): no.
        return res.full_name is None or not res.path

    def _holds_callable(self, name: str, depth: int) -> bool:
        """Whether a pure name's value may be called: a torch callable, a model (its forward),
        a model or config class, or another such name."""
        value = self.bindings.get(name)
        if value is None or depth > 8:
            return False
        if isinstance(value, ast.Name):
            if value.id in self.pure and value.id not in self.defined:
                return self._holds_callable(value.id, depth + 1)
            return self.expr_is_pure(value) and self.resolve(value).kind in (
                CalleeKind.TORCH, CalleeKind.WORKSPACE_MODULE, CalleeKind.WORKSPACE_CONFIG)
        if isinstance(value, ast.Attribute) and self._import_headed(value):
            res = self.resolve(value)
            return res.kind is CalleeKind.TORCH and res.type != "module"
        if isinstance(value, (ast.Attribute, ast.Subscript)):
            return True  # a submodule of a model, an element of a list of layers: pure values
        if isinstance(value, ast.Call):
            func = value.func
            if isinstance(func, ast.Attribute) and func.attr in _RETURNS_SELF:
                inner = func.value
                if isinstance(inner, ast.Name) and inner.id in self.pure:
                    return self._holds_callable(inner.id, depth + 1)
                if isinstance(inner, ast.Call):
                    return self.resolve(inner.func).kind in (CalleeKind.TORCH, CalleeKind.WORKSPACE_MODULE)
            if isinstance(func, ast.Name) and func.id in self.pure and func.id not in self.defined:
                return False  # what a model returns (a tensor) is not called
            return self.resolve(func).kind in (CalleeKind.TORCH, CalleeKind.WORKSPACE_MODULE)
        return False

    # -- what Python evaluates when it defines a function or class ----------------------------------
    def value_is_inert(self, node: ast.AST | None) -> bool:
        """A default, an annotation, a base or a class keyword: stored, not called, so it may
        name anything; but every call in it must be pure, and it may bind nothing."""
        if node is None:
            return True
        if isinstance(node, (ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)):
            return False
        if isinstance(node, (ast.Call, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            return self.expr_is_pure(node)
        if isinstance(node, ast.Lambda):
            return self.signature_is_inert(node.args, None, annotations=False)
        return all(self.value_is_inert(child) for child in ast.iter_child_nodes(node)
                   if isinstance(child, ast.AST) and not isinstance(
                       child, (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)))

    def signature_is_inert(self, args: ast.arguments, returns: ast.expr | None, annotations: bool) -> bool:
        """Defaults (and, unless `from __future__ import annotations`, annotations) run when the
        `def` runs."""
        if not all(self.value_is_inert(d) for d in [*args.defaults, *args.kw_defaults]):
            return False
        if not annotations:
            return True
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        return all(self.value_is_inert(p.annotation) for p in params if p is not None) and self.value_is_inert(returns)

    def decorator_ok(self, dec: ast.expr) -> bool:
        """A decorator runs when the `def` runs: only the standard ones (by where they resolve, so
        a `dataclass` the file defines is not taken for the real one) and torch's allowed ones,
        with pure arguments; a `.setter` only of a property of the same class."""
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(dec, ast.Call) and not (all(self.expr_is_pure(a) for a in dec.args)
                                              and all(self.expr_is_pure(k.value) for k in dec.keywords)):
            return False
        name = dotted_name(target) or ""
        head, _, rest = name.partition(".")
        if rest in ("setter", "getter", "deleter"):
            return head in self.properties
        if name in ("staticmethod", "classmethod", "property") and self._plain_builtin(name):
            return True
        if head in self.aliases and head not in self.rebound:
            full = self.aliases[head] + (f".{rest}" if rest else "")
            if full in SAFE_DECORATORS and not full.startswith("torch"):
                return True
        res = self.resolve(target)
        if res.path and self.resolver.in_workspace(res.path):
            return False
        return res.kind is CalleeKind.TORCH or (res.full_name or "") in SAFE_DECORATORS

    def decorator_deferrable(self, dec: ast.expr) -> bool:
        """A decorator of a method that resolves into an installed package (not the workspace,
        not the standard library), with pure arguments: library code like the model's base
        class's, so it may run where the model's own code does, when the method is called."""
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(dec, ast.Call) and not (all(self.expr_is_pure(a) for a in dec.args)
                                              and all(self.expr_is_pure(k.value) for k in dec.keywords)):
            return False
        if dotted_name(target) is None:
            return False
        res = self.resolve(target)
        if not res.path or self.resolver.in_workspace(res.path) or res.type not in (None, "function", "class"):
            return False
        return any(part in ("site-packages", "dist-packages") for part in Path(res.path).parts)

    def class_header_ok(self, cls: ast.ClassDef) -> str | None:
        """Why the class statement itself must not run (None when it may): a metaclass other than
        the standard ones, a base or keyword that calls something, a class that is a metaclass."""
        for kw in cls.keywords:
            if kw.arg == "metaclass":
                res = self.resolve(kw.value)
                if res.full_name not in SAFE_METACLASSES or (res.path and self.resolver.in_workspace(res.path)):
                    return "its metaclass is not one the probe knows to be inert"
            elif not self.value_is_inert(kw.value):
                return "its class keywords are not tensor-pure"
        for base in cls.bases:
            if not self.value_is_inert(base):
                return "its bases are not tensor-pure"
            name = dotted_name(base)
            if name == "type" and self._plain_builtin("type") or (
                    name and self.resolve(base).full_name in METACLASS_BASES):
                return "metaclasses are not run"
        return None
