"""Forward inputs no layer tells, read from the parameter's name and annotation: a diffusion
model's `timestep` (a number or a batch of them, fed to a sinusoidal embedding that has no torch
layer to ask), a cross-attention's context (`encoder_hidden_states`, `context`: `[B, T, width]`
with the width the model declares, `cross_attention_dim`), and a parameter annotated as a number
or a tensor (`scale: torch.Tensor | float`). Asked only after the layers the parameter reaches
said nothing."""

from __future__ import annotations

import ast
import inspect
import types
import typing
from typing import Any

from torch import nn

from shapelens.probe.worker.layer_rule import Spec

# Names diffusion and flow models give the noise level / time of each batch item: a [B] tensor.
TIME_NAMES = frozenset({"t", "time", "times", "timestep", "timesteps", "time_step", "time_steps", "sigma",
                        "sigmas", "noise_level", "noise_levels", "log_snr", "noise_labels", "c_noise"})
_NUMBERS = {"int": 0, "float": 1.0}
# What a cross-attention attends to, by the names models give it, and the widths they declare for it.
CONTEXT_NAMES = frozenset({"encoder_hidden_states", "context", "cond", "encoder_out", "encoder_states", "memory",
                           "cross_attn_cond", "text_embeds", "encoder_output", "encoder_outputs"})
CONTEXT_WIDTHS = ("cross_attention_dim", "context_dim", "dim_context", "cross_attn_dim", "encoder_hidden_size",
                  "encoder_dim", "cond_dim", "d_context", "context_size")
MAX_DESCENT = 12  # submodules visited looking for one that declares the context width


def named_spec(name: str, annotation: Any, rank: tuple[int, bool] | None) -> Spec | None:
    """A time-like parameter whose body does not index it as more than a vector: [B] floats."""
    if name.lower() not in TIME_NAMES or _only_number(annotation):
        return None
    if rank is not None and rank[0] > 1:
        return None  # the body reads it as a matrix or more: not a batch of numbers
    return Spec(("B",))


def context_spec(instance: nn.Module, name: str) -> Spec | None:
    """`encoder_hidden_states` of a model that declares `cross_attention_dim` (as an attribute,
    in its `config`, or on the first submodule whose forward takes a parameter of that name):
    `[B, T, width]`."""
    if name not in CONTEXT_NAMES:
        return None
    seen = 0
    for module in [instance, *instance.modules()]:
        if module is not instance and not _takes(module, name):
            continue
        width = _declared_width(module)
        if width is not None:
            return Spec(("B", "T", width))
        seen += 1
        if seen > MAX_DESCENT:
            break
    return None


# The model's own width, as blocks keep it (`self.d_model = d_model`).
OWN_WIDTHS = ("d_model", "n_embd", "hidden_size", "embed_dim", "d_embed", "dim", "hidden_dim", "width")


def own_width_spec(instance: nn.Module, rank: tuple[int, bool] | None) -> Spec | None:
    """`batch, seqlen, dim = hidden_states.shape` where no layer takes the input whole (mamba's
    `self.in_proj.weight @ rearrange(hidden_states, ...)`): `[B, T, self.d_model]`."""
    if rank is None or not rank[1] or rank[0] not in (2, 3):
        return None
    width = next((v for a in OWN_WIDTHS if isinstance(v := instance.__dict__.get(a), int)
                  and not isinstance(v, bool) and v > 0), None)
    if width is None:
        return None
    return Spec(("B", "T", width) if rank[0] == 3 else ("B", width))


def own_width_specs(instance: nn.Module, specs: dict) -> dict | None:
    """`specs` with each float input's width the module's own (`self.dim`), None when that
    changes nothing."""
    width = next((v for a in OWN_WIDTHS if isinstance(v := instance.__dict__.get(a), int)
                  and not isinstance(v, bool) and v > 0), None)
    out = {k: Spec((*s.dims[:-1], width), s.dtype, s.high) if isinstance(s, Spec) and s.dtype.is_floating_point
           and s.dims and isinstance(s.dims[-1], int) else s for k, s in specs.items()}
    return out if width is not None and out != specs else None


def _takes(module: nn.Module, name: str) -> bool:
    try:
        return name in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def _declared_width(module: nn.Module) -> int | None:
    config = module.__dict__.get("_internal_dict") or module.__dict__.get("config")
    for source in (module.__dict__, config if isinstance(config, dict) else getattr(config, "__dict__", {})):
        for attr in CONTEXT_WIDTHS:
            value = source.get(attr) if isinstance(source, dict) else None
            if isinstance(value, (tuple, list)) and value:
                value = value[0]  # one width per block: the first block's
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def union_number(annotation: Any) -> int | float | None:
    """`torch.Tensor | float | int`, `Union[Tensor, float]`: code written to accept a plain number
    takes one (the first number type named)."""
    names = _member_names(annotation)
    return next((_NUMBERS[n] for n in names if n in _NUMBERS), None) if len(names) > 1 else None


def _only_number(annotation: Any) -> bool:
    names = _member_names(annotation)
    return bool(names) and all(n in _NUMBERS for n in names)


def _member_names(annotation: Any) -> list[str]:
    """The last dotted part of each member of a union annotation (one member if not a union)."""
    if annotation is None or annotation is inspect.Parameter.empty:
        return []
    if isinstance(annotation, str):
        try:
            expr = ast.parse(annotation, mode="eval").body
        except SyntaxError:
            return []
        return [_last(m) for m in _union_members(expr)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [n for a in typing.get_args(annotation) for n in _member_names(a)]
    name = getattr(annotation, "__name__", None)
    return [name] if isinstance(name, str) else []


def _union_members(expr: ast.expr) -> list[ast.expr]:
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return _union_members(expr.left) + _union_members(expr.right)
    if isinstance(expr, ast.Subscript) and _last(expr.value) == "Union":
        items = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
        return [m for e in items for m in _union_members(e)]
    return [expr]


def _last(expr: ast.expr) -> str:
    """`torch.Tensor` -> `Tensor`, `Optional[int]` -> `Optional`."""
    while isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return expr.id if isinstance(expr, ast.Name) else ""
