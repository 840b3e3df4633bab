"""Forward branches on a flag a module keeps for itself, given once more the other way.

Attention blocks choose their kernel by a flag set in `__init__` (`self.fused_attn =
use_fused_attn()`, `self.flash = hasattr(F, "scaled_dot_product_attention")`): the probe's torch
takes the fused side, so the layers of the other side (`attn = self.attn_drop(attn.softmax(-1))`)
get no shape, though every machine without that kernel runs them. After a clean forward, each
such flag whose other side calls a layer that still has no shape is flipped on every module that
keeps it, and forward runs once more on the same inputs. The flags are put back either way, and
a run that stops or says anything is taken back whole: the other side may need what `__init__`
built only for it (nanoGPT registers its causal mask only when it has no flash kernel), and what
the probe's own flip makes fail is not the file's error. `self.training` is never flipped.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable

from torch import nn

from shapelens.probe.worker.inputs import class_node
from shapelens.probe.worker.state import State, layer_info

Side = tuple[str, bool, frozenset[str]]  # the flag, the value that takes the side, the children it calls


def _self_attr(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


@functools.cache
def _installed(cls: type) -> ast.AST | None:
    """An installed class's source (timm's attention), read once."""
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError, ValueError):
        return None


def _sides(state: State, cls: type) -> tuple[Side, ...]:
    """Each side of an `if self.flag:` / `if not self.flag:` (or `a if self.flag else b`) in the
    class's own source (a workspace file as the probe has it, unsaved edits included), with the
    `self.<child>(...)` calls it makes."""
    tree = class_node(state, cls) or _installed(cls)
    if tree is None:
        return ()
    out: list[Side] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.If | ast.IfExp):
            continue
        test, want = node.test, True
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test, want = test.operand, False
        flag = _self_attr(test)
        if flag is None or flag == "training":
            continue
        body = node.body if isinstance(node.body, list) else [node.body]
        orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
        for value, stmts in ((want, body), (not want, orelse)):
            called = frozenset(name for s in stmts for c in ast.walk(s) if isinstance(c, ast.Call)
                               and (name := _self_attr(c.func)) is not None)
            if called:
                out.append((flag, value, called))
    return tuple(out)


def _unshaped(child: object) -> bool:
    if not isinstance(child, nn.Module):
        return False
    infos = [info for m in child.modules() if (info := layer_info(m)) is not None]
    return any(info.first_in is None for info in infos)


def flips(state: State, instance: nn.Module) -> list[tuple[nn.Module, str, bool]]:
    """(module, flag, its value) for each flag whose other side calls a layer with no shape yet."""
    out: dict[tuple[int, str], tuple[nn.Module, str, bool]] = {}
    sides: dict[type, tuple[Side, ...]] = {}
    for module in instance.modules():
        for cls in type(module).__mro__:
            if cls.__module__.startswith("torch.") or cls is object:
                continue
            if cls not in sides:
                sides[cls] = _sides(state, cls)
            for flag, value, called in sides[cls]:
                now = module.__dict__.get(flag)
                if (isinstance(now, bool) and now != value and (id(module), flag) not in out
                        and any(_unshaped(getattr(module, name, None)) for name in called)):
                    out[(id(module), flag)] = (module, flag, now)
    return list(out.values())


def probe_flags(state: State, instance: nn.Module, run: Callable[[], bool]) -> None:
    """`run()` runs forward on the inputs of the clean run and says whether it stopped."""
    found = flips(state, instance)
    if not found:
        return
    mark = state.mark()
    for module, flag, now in found:
        module.__dict__[flag] = not now
    try:
        aborted = run()
    finally:
        for module, flag, now in found:
            module.__dict__[flag] = now
    if aborted or len(state.findings) > mark[0]:
        state.rollback(mark)
