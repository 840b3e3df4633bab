"""What a model's forward takes, read from the file: a hint comment, pyproject.toml, a jaxtyping
annotation, or the layers each parameter reaches. An input none of these tells is left None when
another input is known (TSLib's `forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec)`, whose
forecast never reads `x_dec`): forward then shows whether it needs it after all (`attempt`)."""

from __future__ import annotations

import ast
import inspect
import typing
from typing import Any

import torch
from torch import nn

from shapelens.analysis.hints import Hint, InputSpec, ProjectHints, jaxtyping_inputs
from shapelens.analysis.index import method_def
from shapelens.analysis.names import first_undefined
from shapelens.analysis.source import span
from shapelens.probe.worker.bodyrank import fit, one_layout, rank_of, used_as_size
from shapelens.probe.worker.carrying import MASK_NAME, channels_last_spec, leading_reorder, unreordered
from shapelens.probe.worker.catsplit import split_specs
from shapelens.probe.worker.construct import hint_for
from shapelens.probe.worker.inputs import (
    MAX_DEPTH,
    Const,
    class_node,
    delegate,
    forward_signature,
    merge,
    own_weight_spec,
    param_spec,
    plain_value,
    source_path,
    spec_for,
)
from shapelens.probe.worker.named_inputs import context_spec, named_spec, own_width_spec, union_number
from shapelens.probe.worker.rules import Spec
from shapelens.probe.worker.state import State
from shapelens.probe.worker.structured import keyed_specs, keyword_specs
from shapelens.report.codes import PROBE_INCOMPLETE

# Sizes the probe makes up when the file does not give them; picked so they are not mistaken for
# real widths, and shown symbolically (B, T, ...) in hovers.
ASSUMED = {"B": 17, "T": 13}
# The main input of a forward whose inputs are all optional, by the names libraries give it.
MAIN_INPUTS = frozenset({"input_ids", "pixel_values", "input_features", "input_values", "x", "inputs", "input",
                         "hidden_states", "sample", "images", "tokens", "idx", "src", "inputs_embeds"})



class Inputs(typing.NamedTuple):
    specs: dict[str, Any]  # parameter -> Spec / InputSpec / tuple of them
    labels: dict[str, str]  # symbol -> the name the file gives it (jaxtyping)
    unset: tuple[str, ...] = ()  # required parameters nothing told, left None


def forward_inputs(state: State, instance: nn.Module, node: ast.ClassDef, hints: dict[int, Hint],
                   project: ProjectHints, path: str, depth: int = 0) -> Inputs | None:
    """Each forward parameter's input: a hint comment, pyproject.toml, a jaxtyping annotation
    (numbers and names completed from the first layer that takes it), or the first layer alone."""
    fwd = method_def(node, "forward")
    if fwd is None:
        return None
    given: dict[str, InputSpec] = {}
    configured = project.for_class(type(instance).__module__, type(instance).__name__)
    if configured is not None:
        given.update(configured.inputs)
    for hint in hint_for(hints, node.lineno, fwd.lineno):
        given.update(hint.inputs)
    annotated = jaxtyping_inputs(fwd)
    try:
        sig = inspect.signature(instance.forward)
    except (TypeError, ValueError):
        return None
    if not given and (inner := delegate(fwd, sig, instance)) is not None and depth < MAX_DEPTH:
        # `forward(self, *args, **kwargs): return self.decoder(*args, **kwargs)`: what the inner
        # module takes, given by name through the wrapper.
        inner_node = class_node(state, type(inner))
        inner_path = source_path(type(inner))
        if inner_node is not None and inner_path is not None:
            return forward_inputs(state, inner, inner_node, hints if inner_path == path else {}, project,
                                  inner_path, depth + 1)
        # A torch layer wrapped (`Scale(0.5, nn.Linear(d, d))`): its rule says what it takes.
        first = next(iter(forward_signature(inner).parameters), None)
        if first is not None and (spec := spec_for(state, inner, 0)) is not None:
            return Inputs({first: spec}, {})
    specs: dict[str, Any] = {}
    labels: dict[str, str] = {}
    inferred_names: set[str] = set()
    unset: list[str] = []
    required = {p.name for p in sig.parameters.values() if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in given and p.name not in annotated}
    joined = split_specs(fwd, instance, required, lambda e: param_spec(
        state, fwd, e.id if isinstance(e, ast.Name) else e, instance, node)) if required else {}
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:  # `y = kwargs['labels'].float()`: a keyword input each key
            specs.update(keyword_specs(fwd, p.name, lambda e: param_spec(state, fwd, e, instance, node)))
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in given:
            specs[p.name] = given[p.name]
            continue
        if p.default is not inspect.Parameter.empty:
            continue  # an optional input (a mask, targets) keeps its default
        if p.name in joined:  # `torch.cat([x, c], dim=1)` before a layer of `3 + c_dim` channels
            specs[p.name] = joined[p.name]
            inferred_names.add(p.name)
            continue
        # A cross-attention context of a model that declares its width (`cross_attention_dim`):
        # `[B, T, width]`, whose rank the Linear it reaches (`to_k`) would not tell.
        inferred = context_spec(instance, p.name)
        if inferred is None:
            inferred = fit(param_spec(state, fwd, p.name, instance, node), rank_of(fwd, p.name))
        if inferred is None:  # a batch: `batch["image"]`, `x, lengths = inputs`
            inferred = keyed_specs(fwd, p.name, lambda e: param_spec(state, fwd, e, instance, node))
        if inferred is None:
            inferred = _back(fwd, p.name, fit(own_weight_spec(instance), rank_of(fwd, p.name)))
        if inferred is None:
            inferred = plain_value(p.annotation)  # `start_pos: int`, `mask: Optional[Tensor]`
        if inferred is None and used_as_size(fwd, p.name):  # `torch.arange(j - i, j)`: a length
            inferred = Const(ASSUMED["T"])
        if inferred is None:  # `z.permute(0, 2, 3, 1)`, then `z.view(-1, self.dim)`
            inferred = channels_last_spec(fwd, p.name, instance)
        if inferred is None:  # `timestep`: a [B] batch of noise levels
            inferred = named_spec(p.name, p.annotation, rank_of(fwd, p.name))
        if inferred is None and (number := union_number(p.annotation)) is not None:
            inferred = Const(number)  # `scale: torch.Tensor | float`
        if inferred is None:  # `batch, seqlen, dim = x.shape`, then only weights: [B, T, self.d_model]
            inferred = _back(fwd, p.name, own_width_spec(instance, rank_of(fwd, p.name)))
        if p.name in annotated:
            specs[p.name], more = merge(annotated[p.name], inferred)
            labels.update(more)
            continue
        if inferred is None:
            if _said_already(state, path, instance, fwd, node):
                return None
            unset.append(p.name)
            continue
        specs[p.name] = inferred
        inferred_names.add(p.name)
    specs = one_layout(specs, inferred_names)
    if not any(not isinstance(v, Const) for v in specs.values()):
        # Every input optional (`forward(self, input_ids=None, inputs_embeds=None, ...)`): calling
        # it with none is no call at all; feed the main one, the first that reaches a layer.
        optional = sorted((p for p in sig.parameters.values() if p.default is not inspect.Parameter.empty
                           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)),
                          key=lambda p: p.name not in MAIN_INPUTS)
        for p in optional:
            inferred = fit(param_spec(state, fwd, p.name, instance, node), rank_of(fwd, p.name))
            if inferred is not None:
                specs[p.name] = inferred
                # An encoder-decoder takes its decoder's ids beside (T5: `decoder_input_ids`), also
                # when the encoder reads something else (Whisper's `input_features`).
                paired = sig.parameters.get(f"decoder_{p.name}")
                if paired is not None:
                    specs[paired.name] = inferred
                elif p.name != "decoder_input_ids" and "decoder_input_ids" in sig.parameters:
                    ids = fit(param_spec(state, fwd, "decoder_input_ids", instance, node),
                              rank_of(fwd, "decoder_input_ids"))
                    if ids is not None:
                        specs["decoder_input_ids"] = ids
                break
    if not specs and fwd.args.vararg and not _said_already(state, path, instance, fwd, node):
        # Only `*args`, and nothing they reach tells their shape (a wrapped `nn.Identity`): calling
        # forward with nothing would only fail; say so once instead.
        star = fwd.args.vararg
        state.finding(PROBE_INCOMPLETE, path, (star.lineno, star.col_offset, star.lineno, star.col_offset + len(star.arg)),
                      f"cannot tell what `*{star.arg}` of {type(instance).__name__}.forward looks like: it only "
                      f"passes them on, and nothing they reach says; the model that uses "
                      f"{type(instance).__name__} gives it its shapes")
        return None
    if unset:
        if all(isinstance(v, Const) for v in specs.values()):  # nothing to run forward on: say why
            cannot_tell(state, path, instance, node, unset[0])
            return None
        specs.update({name: _mask_beside(fwd, name, specs) or Const(None) for name in unset})
    return Inputs(specs, labels, tuple(unset))


def _mask_beside(fwd: ast.FunctionDef, name: str, specs: dict[str, Any]) -> Spec | None:
    """A mask the forward multiplies another input by (vits' `x * x_mask`, `x` a [B, C, T] the
    conv gave): that input's shape with one channel, which broadcasts over it."""
    if not MASK_NAME.search(name):
        return None
    for n in ast.walk(fwd):
        if not (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult)):
            continue
        sides = {getattr(n.left, "id", None), getattr(n.right, "id", None)}
        other = next((s for s in sides - {name, None} if isinstance(specs.get(s), Spec)), None) \
            if name in sides else None
        if other is not None and len(specs[other].dims) >= 2:
            dims = specs[other].dims
            if isinstance(dims[1], int) and not isinstance(dims[-1], int):  # channels first (a conv's [B, C, T])
                return Spec((dims[0], 1, *dims[2:]), torch.float32)
            return Spec((*dims[:-1], 1), torch.float32)  # channels last: one per position
    return None


def _back(fwd: ast.FunctionDef, name: str, spec: Any) -> Any:
    """A spec the module's own width gave, for the input as it is after a leading `x =
    x.transpose(1, -1)` (vits' channels-first LayerNorm): the input has those dims put back."""
    first = leading_reorder(fwd, name) if spec is not None else None
    return unreordered(spec, first, [name]) if first is not None else spec


def tests_none(node: ast.ClassDef, names: tuple[str, ...]) -> bool:
    """Whether the class tests one of `names` against None (`if x_mark is not None:`)."""
    return any(isinstance(n, ast.Compare) and isinstance(n.left, ast.Name) and n.left.id in names
               and any(isinstance(op, (ast.Is, ast.IsNot)) for op in n.ops) for n in ast.walk(node))


def cannot_tell(state: State, path: str, instance: nn.Module, node: ast.ClassDef, name: str) -> None:
    fwd = method_def(node, "forward")
    arg = next((a for a in fwd.args.args if a.arg == name), None) if fwd is not None else None
    where = (arg.lineno, arg.col_offset, arg.lineno, arg.col_offset + len(name)) if arg else span(node)
    method = getattr(type(instance).forward, "__name__", "forward")  # an entry method (`get_value`) says its own name
    state.finding(PROBE_INCOMPLETE, path, where,
                  f"cannot tell what `{name}` of {type(instance).__name__}.{method} looks like; add a hint "
                  f"on the def line, e.g. `# shapelens: {name}=float[B,3,224,224]`, or annotate it "
                  f"(jaxtyping: `{name}: Float[Tensor, \"batch 3 224 224\"]`)")


def _said_already(state: State, path: str, instance: nn.Module, fwd: ast.FunctionDef, node: ast.ClassDef) -> bool:
    """Whether the reason forward's inputs are unknown was told already, or is a name not defined
    (yet: half-typed): then that is the one note, not a second one on the def line."""
    last = node.end_lineno or node.lineno
    if any(f["path"] == path and node.lineno <= f["span"][0] <= last for f in state.findings):
        return True  # building the class failed inside it, and said where
    func = getattr(instance.forward, "__func__", None)
    namespace = getattr(inspect.unwrap(func) if func is not None else None, "__globals__", {})  # a deferred decorator's wrapper
    missing = first_undefined(fwd, namespace.__contains__)
    if missing is None:
        return False
    state.finding("probe-incomplete", path, span(missing),
                  f"the probe could not run this: NameError: name '{missing.id}' is not defined")
    return True


