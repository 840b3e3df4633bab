"""A model with no forward of its own, probed through the first method that feeds its layers.

Reinforcement-learning agents are modules called only by name (cleanrl's `Agent`:
`get_value(self, x)` returns `self.critic(self.network(x / 255.0))`, and
`get_action_and_value(self, x, action=None)`), and so are some encoders (`encode(self, x)`).
Such a class has layers and no `forward`, so nothing probed it. Its first public method whose
input reaches one of its submodules (`self.network(x ...)`) stands in for forward: the class
gets it as `forward` for this probe only (the probe runs in a throwaway process), and the
class's syntax tree gets a copy of that method named `forward`, at the method's own lines, so
that inputs and findings are read from it as from any forward.
"""

from __future__ import annotations

import ast
import copy

from torch import nn

from shapelens.analysis.index import method_def


def _submodules(node: ast.ClassDef) -> set[str]:
    init = method_def(node, "__init__")
    if init is None:
        return set()
    return {t.attr for n in ast.walk(init) if isinstance(n, (ast.Assign, ast.AnnAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}


def _feeds(method: ast.FunctionDef, param: str, submodules: set[str]) -> bool:
    """`self.<submodule>(...)` called with `param` somewhere in its arguments."""
    for n in ast.walk(method):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) \
                and n.func.value.id == "self" and n.func.attr in submodules:
            if any(isinstance(m, ast.Name) and m.id == param for a in n.args for m in ast.walk(a)):
                return True
    return False


_TRAINING = frozenset({"backward", "step", "zero_grad"})


def _trains(method: ast.FunctionDef) -> bool:
    """`loss.backward()`, `self.opt.step()`: a training step, not a model's call."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _TRAINING
               for n in ast.walk(method))


def entry_method(node: ast.ClassDef) -> ast.FunctionDef | None:
    submodules = _submodules(node)
    for stmt in node.body:
        if not isinstance(stmt, ast.FunctionDef) or stmt.name.startswith("_") or stmt.decorator_list \
                or _trains(stmt):
            continue
        params = [a.arg for a in stmt.args.posonlyargs + stmt.args.args][1:]
        if params and _feeds(stmt, params[0], submodules):
            return stmt
    return None


def give_forward(cls: type, node: ast.ClassDef) -> bool:
    """Make `cls` probe-able through its entry method when it has no forward (its own or a base's
    other than nn.Module's); whether it did."""
    if method_def(node, "forward") is not None or any(
            "forward" in vars(base) for base in cls.__mro__ if base not in (nn.Module, object)):
        return False
    method = entry_method(node)
    if method is None or not callable(vars(cls).get(method.name)) or "forward" in vars(cls):
        return False
    cls.forward = vars(cls)[method.name]
    renamed = copy.deepcopy(method)
    renamed.name = "forward"
    node.body.append(renamed)
    return True
