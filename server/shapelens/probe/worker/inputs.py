"""What a model's forward takes, when the file never calls it: follow each parameter through the
forward body to the first layer that receives it and ask that layer's rule (Embedding -> integer
[B, T], Conv2d -> [B, C, H, W], an LSTM's second argument -> its (h0, c0)). Calls into the
model's own methods and submodules are followed, `for block in self.blocks:` reaches the first
block, and shape-keeping methods on the way (`x.view(-1, 784)`, `tokens.long()`) are allowed.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
import typing
from typing import Any

import torch
from torch import nn

from shapelens.analysis.hints import InputSpec
from shapelens.analysis.index import SourceIndex, method_def, source_order_calls
from shapelens.probe.worker import symexpr
from shapelens.probe.worker.bodyrank import fit, rank_of
from shapelens.probe.worker.carrying import (
    aliases,
    before_pattern,
    carries,
    dropped,
    einops_call,
    functional_spec,
    leading_reorder,
    reaches,
    unreordered,
)
from shapelens.probe.worker.patchify import patch_spec
from shapelens.probe.worker.rules import Spec, container_first, rule_for


class Const(typing.NamedTuple):
    """An input that is not a tensor: passed as it is."""

    value: Any


AnySpec = Spec | InputSpec | tuple | dict | Const  # a tuple: several tensors, like an LSTM's (h0, c0); a dict: a batch
DTYPES = {"float": torch.float32, "float32": torch.float32, "double": torch.float64, "float64": torch.float64,
          "half": torch.float16, "float16": torch.float16, "bfloat16": torch.bfloat16, "long": torch.long,
          "int64": torch.long, "int": torch.int32, "int32": torch.int32, "bool": torch.bool, "uint8": torch.uint8}
MAX_DEPTH = 8


def source_path(cls: type) -> str | None:
    try:
        return os.path.realpath(inspect.getsourcefile(cls) or "") or None
    except TypeError:
        return None


def class_node(state, cls: type):
    path = source_path(cls)
    if path is None:
        return None
    index = state.index(path)
    if index is None and cls.__module__.startswith("shapelens.probe.worker."):
        # a stand-in (timm's PatchEmbed): its own forward says what it takes, as a workspace class's does
        # (an index only: `state.sources` are the workspace's files, where sites and fixes go)
        try:
            index = state.indexes[path] = SourceIndex(path, inspect.getsource(sys.modules[cls.__module__]))
        except (OSError, KeyError, TypeError, SyntaxError):
            return None
    return index.class_def(cls.__name__) if index is not None else None


def spec_for(state, module: nn.Module, position: int = 0, depth: int = 0) -> AnySpec | None:
    """What the `position`-th argument of `module`'s forward must look like."""
    if depth > MAX_DEPTH:
        return None
    rule = rule_for(type(module))
    if rule is not None:
        if position == 0:
            return rule.spec(module) if rule.spec is not None else None
        inp = next((i for i in rule.inputs if i.position == position), None)
        return inp.spec(module) if inp is not None and inp.spec is not None else None
    inner = container_first(module)
    if inner is not None and isinstance(module, nn.Sequential) and position == 0:
        if (patches := patch_spec(module)) is not None:  # an einops-style patch embedding leads
            return patches
        for layer in module:  # `Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, 64, 7), ...)`: the conv says
            found = spec_for(state, layer, 0, depth + 1)
            if found is not None or not _keeps_channels(layer):
                return found
        return None
    if inner is not None:
        if position:
            return None
        return patch_spec(module) or spec_for(state, inner, position, depth + 1)
    node = class_node(state, type(module))
    fwd = method_def(node, "forward") if node is not None else None
    if fwd is None:
        return None
    params = [a.arg for a in fwd.args.posonlyargs + fwd.args.args][1:]
    if position >= len(params):
        # `Scale(fn)`, `PreNorm(fn)`: a wrapper whose forward hands `*args` to the module it wraps.
        inner = delegate(fwd, forward_signature(module), module) if fwd.args.vararg else None
        return spec_for(state, inner, position, depth + 1) if inner is not None else None
    found = param_spec(state, fwd, params[position], module, node, depth + 1)
    return found if found is not None or position else own_weight_spec(module)


def forward_signature(module: nn.Module) -> inspect.Signature:
    """`module.forward`'s signature; empty where inspect cannot read it (a C-level forward)."""
    try:
        return inspect.signature(module.forward)
    except (TypeError, ValueError):
        return inspect.Signature()


def delegate(fwd: ast.FunctionDef, sig: inspect.Signature, owner: nn.Module) -> nn.Module | None:
    """The submodule a forward that takes only `*args, **kwargs` hands them to whole
    (`return self.decoder(*args, **kwargs)`), or None."""
    params = list(sig.parameters.values())
    if not params or any(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    star = fwd.args.vararg.arg if fwd.args.vararg else None
    stars = fwd.args.kwarg.arg if fwd.args.kwarg else None
    for call in source_order_calls(fwd):
        passes = any(isinstance(a, ast.Starred) and isinstance(a.value, ast.Name) and a.value.id == star
                     for a in call.args) or any(k.arg is None and isinstance(k.value, ast.Name)
                                                and k.value.id == stars for k in call.keywords)
        target = _callee(call.func, owner, {}) if passes else None
        if isinstance(target, nn.Module) and type(target).forward is not nn.Module.forward:
            return target
    return None


def _keeps_channels(layer: nn.Module) -> bool:
    """A torch layer that takes any input and keeps its channels and rank (padding, an
    activation, dropout, upsampling, pooling): what it takes is what the next layer takes."""
    return isinstance(layer, (nn.Identity, nn.Upsample)) or type(layer).__module__ in (
        "torch.nn.modules.padding", "torch.nn.modules.activation", "torch.nn.modules.dropout",
        "torch.nn.modules.pooling")


def param_spec(state, fn: ast.FunctionDef, param: str | ast.expr, owner: nn.Module, node: ast.ClassDef,
               depth: int = 0) -> AnySpec | None:
    """Follow `param` (a name, or an expression such as `batch["image"]`) through `fn` to the
    first layer that takes it."""
    if depth > MAX_DEPTH:
        return None
    loops = _loop_containers(fn, owner)
    rank = rank_of(fn, param) if isinstance(param, str) else None
    names = aliases(fn, param) if isinstance(param, str) else [param]
    # `x = x.transpose(1, -1)` first (vits' channels-first LayerNorm): what the layers take is the
    # reordered x; the input is that with its dims put back.
    first = leading_reorder(fn, param) if isinstance(param, str) else None
    for call in source_order_calls(fn):
        position = next((i for i, a in enumerate(call.args) if any(reaches(a, n) for n in names)), None)
        target = _callee(call.func, owner, loops)
        arg = call.args[position] if position is not None else None
        if position is None:  # `self.embeddings(input_ids=input_ids)`: the keyword's place in the callee
            keyword = next((k for k in call.keywords if k.arg and any(reaches(k.value, n) for n in names)), None)
            position = _position(target, keyword.arg) if keyword else None
            if position is None and keyword is not None and isinstance(target, str) \
                    and (method := method_def(node, target)) is not None:  # `self.predict(x=x)`
                params = [a.arg for a in method.args.posonlyargs + method.args.args][1:]
                position = params.index(keyword.arg) if keyword.arg in params else None
            arg = keyword.value if keyword else None
        if position is None:
            continue
        if target is None and isinstance(call.func, ast.Subscript) and isinstance(_resolve(call.func.value, owner),
                                                                              nn.Module):
            return None  # an indexed layer the probe cannot tell takes it: what comes after is not the input
        spec = None
        if isinstance(target, nn.Module):
            spec = spec_for(state, target, position, depth + 1)
        elif isinstance(target, str):
            method = method_def(node, target)
            if method is not None:
                params = [a.arg for a in method.args.posonlyargs + method.args.args][1:]
                if position < len(params):
                    spec = param_spec(state, method, params[position], owner, node, depth + 1)
        elif position == 0:  # `F.linear(x, self.wte.weight)`: a tied head takes the weight's width
            spec = functional_spec(call, fn, owner)
        if spec is not None and arg is not None and einops_call(arg):
            spec = before_pattern(spec, arg, fn, owner)  # `rearrange(img, 'b c (h p1) (w p2) -> ...')`
        if spec is not None and arg is not None:
            spec = unreordered(_undo_index(spec, arg, names), arg, names)
        if spec is not None and first is not None:
            spec = unreordered(spec, first, names)
        if spec is not None:
            return fit(spec, rank)
    for stmt in ast.walk(fn):  # `x = rearrange(img, ...)` or `first = x[:, 0]`, then a layer of it
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id not in names):
            continue
        call = einops_call(stmt.value)
        if call is not None and any(carries(call.args[0], n) for n in names) or any(dropped(stmt.value, n)
                                                                                     for n in names):
            after = param_spec(state, fn, stmt.targets[0].id, owner, node, depth + 1)
            spec = before_pattern(after, call, fn, owner) if after is not None and call is not None else after
            spec = _undo_index(spec, stmt.value, names) if spec is not None else None
            if spec is not None and first is not None:
                spec = unreordered(spec, first, names)
            if spec is not None:
                return fit(spec, rank)
    return None


def _undo_index(spec: AnySpec, arg: ast.expr, names: list) -> AnySpec | None:
    """The spec of what `x[:, 0]` indexes, when a layer takes `spec` of it: the dims the index
    took away made up again (None when the spec cannot take them)."""
    k = max((dropped(arg, n) for n in names), default=0)
    if not k or not isinstance(spec, Spec):
        return spec
    wider = fit(spec, (len(spec.dims) + k, True))
    return wider if len(wider.dims) == len(spec.dims) + k else None


def plain_value(annotation: Any) -> Const | None:
    """A forward parameter annotated `int`/`float`/`bool` (a start position, a flag) gets 0/1.0/
    False, one annotated `Optional[...]` None."""
    if annotation in (int, "int"):
        return Const(0)
    if annotation in (float, "float"):
        return Const(1.0)
    if annotation in (bool, "bool"):
        return Const(False)
    if typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(annotation):
        return Const(None)
    if isinstance(annotation, str) and annotation.replace(" ", "").startswith("Optional["):
        return Const(None)
    return None


def own_weight_spec(module: nn.Module) -> Spec | None:
    """A layer of the user's own with no torch layer inside (an RMSNorm): its input's last dim
    is the size of its 1-D weights, when they all have one size."""
    own = list(module.parameters(recurse=False))
    if not own or list(module.children()) or any(p.dim() != 1 for p in own) or len({p.shape[0] for p in own}) > 1:
        return None
    return Spec(("B", "T", int(own[0].shape[0])))


def _position(target, keyword: str) -> int | None:
    """Where the parameter `keyword` is in the callee's signature (a submodule's forward, or a method)."""
    func = getattr(target, "forward", None) if isinstance(target, nn.Module) else None
    try:
        names = list(inspect.signature(func).parameters) if func is not None else []
    except (TypeError, ValueError):
        return None
    return names.index(keyword) if keyword in names else None


def _resolve(expr: ast.expr, owner: nn.Module):
    """`self.a.b[0]["k"]` -> the submodule (or the attribute's value)."""
    if isinstance(expr, ast.Name):
        return owner if expr.id == "self" else None
    if isinstance(expr, ast.Attribute):
        base = _resolve(expr.value, owner)
        return getattr(base, expr.attr, None) if base is not None else None
    if isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Constant):
        base = _resolve(expr.value, owner)
        try:
            return base[expr.slice.value] if base is not None else None
        except Exception:  # noqa: BLE001
            return None
    if isinstance(expr, ast.Subscript) and not isinstance(expr.slice, ast.Slice):
        # `self.blocks[i_level][i_block]` in a loop: the first entry is what the input reaches first
        base = _resolve(expr.value, owner)
        return container_first(base) if isinstance(base, nn.Module) else None
    return None


def _callee(func: ast.expr, owner: nn.Module, loops: dict[str, nn.Module]):
    """A submodule, the name of one of the model's methods, or None."""
    if isinstance(func, ast.Name):
        return loops.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        value = getattr(owner, func.attr, None)
        if isinstance(value, nn.Module):
            return value
        return func.attr if inspect.ismethod(value) else None
    value = _resolve(func, owner)  # `self.downsample_layers[i](x)`: the first one takes the input
    return value if isinstance(value, nn.Module) else None


def _loop_containers(fn: ast.FunctionDef, owner: nn.Module) -> dict[str, nn.Module]:
    """`for block in self.blocks:` (or `enumerate(...)`, `.values()`) -> block: the first block;
    so is `layer = self.layers[i]` with an index the probe cannot tell."""
    out: dict[str, nn.Module] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Subscript) and not isinstance(node.value.slice, ast.Constant):
            first = _resolve(node.value, owner)
            if isinstance(first, nn.Module):
                out.setdefault(node.targets[0].id, first)
            continue
        if not isinstance(node, ast.For):
            continue
        it, target = node.iter, node.target
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate" and it.args:
            it = it.args[0]
            target = target.elts[1] if isinstance(target, ast.Tuple) and len(target.elts) == 2 else None
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "values":
            it = it.func.value
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "zip" \
                and isinstance(target, ast.Tuple) and len(target.elts) == len(it.args):
            # `for c1, c2 in zip(self.convs1, self.convs2):` -> the first of each
            for t, arg in zip(target.elts, it.args):
                zipped = _resolve(arg, owner)
                first = container_first(zipped) if isinstance(zipped, nn.Module) else None
                if first is not None and isinstance(t, ast.Name):
                    out[t.id] = first
            continue
        container = _resolve(it, owner)
        first = container_first(container) if isinstance(container, nn.Module) else None
        if first is not None and isinstance(target, ast.Name):
            out[target.id] = first
        elif isinstance(first, (nn.ModuleList, nn.Sequential)) and isinstance(target, ast.Tuple) \
                and len(target.elts) == len(first):
            # `for attn, ff in self.layers:` over a ModuleList of [attention, feed-forward] pairs
            out.update({t.id: m for t, m in zip(target.elts, first) if isinstance(t, ast.Name)})
    return out


def merge(annotated: InputSpec, inferred: AnySpec | None) -> tuple[InputSpec | Spec, dict[str, str]]:
    """A jaxtyping annotation's dims over what the first layer needs: numbers from either win
    over names, the layer's symbols (B, H, W, ...) are kept so the image-size search still
    applies, and the annotation's names are used to show them."""
    if not isinstance(inferred, Spec) or len(inferred.dims) != len(annotated.dims):
        return annotated, {}
    dims: list[int | str] = []
    labels: dict[str, str] = {}
    for mine, theirs in zip(annotated.dims, inferred.dims):
        if isinstance(mine, int):
            dims.append(mine)
        elif isinstance(theirs, int):
            dims.append(theirs)
        else:
            dims.append(theirs)
            labels[theirs] = mine
    return InputSpec(annotated.dtype, tuple(dims)), labels


def make_input(spec: AnySpec, sizes: dict[str, int], labels: dict[str, str] | None = None):
    """A made-up input; each dim not given as a number is a symbol (shown by its label)."""
    if isinstance(spec, Const):
        return spec.value
    if isinstance(spec, dict):
        return {k: make_input(s, sizes, labels) for k, s in spec.items()}
    if isinstance(spec, tuple):
        return tuple(make_input(s, sizes, labels) for s in spec)
    dims, names = [], []
    for d in spec.dims:
        if isinstance(d, int):
            dims.append(d)
            names.append(None)
        else:
            if d not in sizes:
                sizes[d] = 19 + 2 * len(sizes)  # another size no real width is likely to have
            dims.append(sizes[d])
            names.append((labels or {}).get(d, d))
    dtype = DTYPES.get(spec.dtype, torch.float32) if isinstance(spec, InputSpec) else spec.dtype
    if dtype.is_floating_point:
        t = torch.randn(dims, dtype=dtype)
    else:
        t = torch.randint(0, getattr(spec, "high", None) or 2, dims, dtype=dtype)
    t._sl_madeup = True
    symexpr.seed(t, names)
    return t


def dims_of(spec: AnySpec) -> list:
    if isinstance(spec, Const):
        return []
    if isinstance(spec, dict):
        return [d for s in spec.values() for d in dims_of(s)]
    if isinstance(spec, tuple):
        return [d for s in spec for d in dims_of(s)]
    return list(spec.dims)
