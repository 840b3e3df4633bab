"""Probing a model class on made-up inputs: what each forward parameter takes, and the search
for an image size under which every declared width agrees."""

from __future__ import annotations

import ast
from typing import Any

import torch
from torch import nn

from shapelens.analysis.hints import Hint, InputSpec, ProjectHints
from shapelens.analysis.index import method_def
from shapelens.analysis.source import span
from shapelens.probe.worker import symexpr
from shapelens.probe.worker.bodyrank import aligned, fit, rank_of, widened
from shapelens.probe.worker.failures import report_exception
from shapelens.probe.worker.flags import probe_flags
from shapelens.probe.worker.forward_inputs import ASSUMED, Inputs, cannot_tell, forward_inputs, tests_none
from shapelens.probe.worker.hooks import first_output
from shapelens.probe.worker.inputs import dims_of, make_input, param_spec
from shapelens.probe.worker.madeup import batch_of_one, hinted, made_up_only, tell_made_up
from shapelens.probe.worker.named_inputs import own_width_specs
from shapelens.probe.worker.needed import none_used
from shapelens.probe.worker.rejections import refitted, rejected_by_model, sizes_asked, solved_sides, table_lengths
from shapelens.probe.worker.rules import Spec
from shapelens.probe.worker.state import ProbeTimeout, State
from shapelens.probe.worker.targets import probe_targets
from shapelens.report.codes import is_error

SPATIAL_CANDIDATES = (28, 32, 64, 96, 128, 224, 256, 299, 512)  # images: square sides
SIGNAL_CANDIDATES = (64, 128, 256, 512, 1024, 2048, 4096, 8000, 16000)  # 1-D signals: lengths
SPATIAL = ("H", "W", "D", "L")
MAX_SIZES = 12  # tries of the size search, the sizes a rejection asks for included
MAX_SIZE = 1 << 14  # the largest made-up side or length taken from a rejection's message
MAX_NEEDED = 3  # optional inputs made up when forward turns out to need them


def probe_class(state: State, instance: nn.Module, node: ast.ClassDef, hints: dict[int, Hint],
                project: ProjectHints, path: str) -> str | None:
    """Run forward on made-up inputs. Returns the assumption made, for hovers."""
    found = forward_inputs(state, instance, node, hints, project, path)
    if found is None:
        return None
    dims = {d for s in found.specs.values() for d in dims_of(s)}
    if not dims & set(SPATIAL):
        return _rank_search(state, instance, found, project, path, node, hints)
    # The input size is not in the file: take the first plausible size under which every
    # declared width is consistent. If none is, report what the best size gives (one where
    # forward ran to the end, with the fewest errors) and say that it was assumed.
    candidates = list(project.image_sizes or (SIGNAL_CANDIDATES if dims & set(SPATIAL) == {"L"}
                                              else SPATIAL_CANDIDATES))
    best: tuple[tuple, int] | None = None
    for i, size in enumerate(candidates):
        if i >= MAX_SIZES:
            break
        mark = state.mark()
        exprs = len(state.size_exprs)
        used, aborted = attempt(state, instance, found, size, project, path, node)
        errors = [f for f in state.findings[mark[0]:] if is_error(f["code"])]
        solved = solved_sides(state.size_exprs[exprs:], candidates[:i + 1], MAX_SIZE // 16) if errors else []
        if solved:  # a flattened width that fits one side (cleanrl's 84x84 frames): that side goes next
            candidates[i + 1:] = solved + [c for c in candidates[i + 1:] if c not in solved]
        asked = sizes_asked(state.findings[mark[0]:], size, min(SPATIAL_CANDIDATES), MAX_SIZE) if aborted else []
        if aborted and (fitted := refitted(found.specs, state.findings[mark[0]:])) is not None:
            # `Expected 3 but got 6` channels: the model's own check says what its input has, so
            # the layer declared otherwise is the one to blame; the same size again with that.
            found = found._replace(specs=fitted)
            candidates.insert(i + 1, size)
        elif asked:  # `expects ... of length 3000, but found 64`: the size forward asks for goes next
            candidates[i + 1:] = asked + [c for c in candidates[i + 1:] if c not in asked]
        elif aborted and dims & set(SPATIAL) == {"L"} and rejected_by_model(state.findings[mark[0]:]):
            # A token count the model keeps (`assert L == H * W` for its own input_resolution)
            tables = [n for n in table_lengths(instance) if n not in candidates[:i + 1]]
            candidates[i + 1:] = tables + [c for c in candidates[i + 1:] if c not in tables]
        # A size the model's own check rejects (`28` for patches of 8): try the next.
        if not errors and not (aborted and rejected_by_model(state.findings[mark[0]:])):
            if not aborted:
                _targets(state, instance, found, size, project, path, node)
            return used
        # A size the model's own check rejected ran nothing: one that ran into errors says more;
        # of two with as many errors, the one that got further (ran more layers: a position
        # table too short for a large side stops forward early).
        ran = sum(li.first_in is not None for li in state.layers)
        rank = (aborted and rejected_by_model(state.findings[mark[0]:]), aborted, len(errors), -ran, i)
        if best is None or rank < best[0]:
            best = (rank, size)
        # These widths disagree at every size: no other size can help, unless forward stopped on
        # something else after them (a size too small for a later layer), which another size may pass.
        stopped_on_them = not aborted or bool(errors) and state.findings[-1] is errors[-1]
        state.rollback(mark)
        if errors and all(f.get("fixed_size") for f in errors) and stopped_on_them:
            break
    size = best[1] if best else candidates[0]
    if (labels := _ids_as_labels(found)) is not None:  # DiT's `y`: class labels beside the image
        mark = state.mark()
        used, aborted = attempt(state, instance, labels, size, project, path, node)
        if not aborted and not state.errors_since(mark):
            return used
        state.rollback(mark)
    mark = state.mark()
    used = attempt(state, instance, found, size, project, path, node)[0]
    listed = ", ".join(map(str, candidates))
    side = f"{size}x{size}" if dims & {"H", "W"} else str(size)
    for f in state.findings[mark[0]:]:
        if not is_error(f["code"]):
            continue
        if f.get("fixed_size"):
            f["message"] += f" (probed with an assumed {side} input)"
        elif made_up_only(f, ASSUMED) and not hinted(node, hints, project, type(instance)):
            tell_made_up(state, f, path, node, ASSUMED)
        else:
            f["message"] += (f" (with an assumed {side} input: no plausible input size ({listed}) makes every "
                             f"declared width agree; hint the real size on the def line)")
            # A number this width takes at one assumed size is right only there: the title says so.
            for fix in [*f["fixes"], *(x for a in f.get("alts", []) for x in a["fixes"])]:
                if any(e["new_text"].strip().isdigit() for e in fix["edits"]) and "assumed" not in fix["title"]:
                    fix["title"] += f" (right for the assumed {side} input)"
    return used


def _ids_as_labels(found: Inputs) -> Inputs | None:
    """An Embedding's [B, T] ids as class labels, [B] (DiT's `torch.rand(labels.shape[0])`)."""
    ids = {k: Spec(("B",), s.dtype, s.high) for k, s in found.specs.items()
           if isinstance(s, Spec) and s.dims == ("B", "T") and not s.dtype.is_floating_point}
    return found._replace(specs={**found.specs, **ids}) if ids else None


def _rank_search(state: State, instance: nn.Module, found: Inputs, project: ProjectHints, path: str,
                 node: ast.ClassDef, hints: dict[int, Hint]) -> str:
    """Run forward; when that gives errors, try what the first layer cannot say: one more
    made-up dim when an input's rank came only from it (`[B, 64]` before an nn.Linear may be
    `[B, T, 64]`), and a sequence as long as a learned position table (`nn.Parameter(torch.zeros(1,
    num_patches, dim))`) instead of the made-up T. The first try without errors that runs to the
    end is kept, else the one with the fewest (the file's own rank first on a tie)."""
    tries: list[tuple[Inputs, dict[str, int]]] = [(found, {})]
    if same := aligned(found.specs):
        tries.append((found._replace(specs={**found.specs, **same}), {}))
    wider = {k: w for k, s in found.specs.items() if (w := widened(s)) is not None}
    if wider:
        tries.append((found._replace(specs={**found.specs, **wider}), {}))
    if (labels := _ids_as_labels(found)) is not None:
        tries.append((labels, {}))
    best: tuple[tuple, int] | None = None
    tabled = False
    for i, (inputs, extra) in enumerate(tries):
        mark = state.mark()
        used, aborted = attempt(state, instance, inputs, None, project, path, node, extra)
        errors = state.errors_since(mark)
        rejected = aborted and rejected_by_model(state.findings[mark[0]:])
        if not errors and not (rejected and i == 0) and (not aborted or len(tries) == 1):
            if not aborted:
                _targets(state, instance, inputs, None, project, path, node, extra)
            return used
        if not errors and i == 0 and not rejected:
            # An abort without errors (`'b n h -> b h n'` fed a [B, 64]): a wider rank is kept only
            # if it runs to the end without errors; errors it gives may be the guess's own.
            best = ((False, -1), 0)
        if rejected and i == 0:  # `Cannot handle batch sizes > 1 if no padding token is defined`
            tries.insert(1, (inputs, {"B": 1}))
        elif i == 0 and any(batch_of_one(f["message"]) for f in state.findings[mark[0]:]):
            tries.insert(1, (inputs, {"B": 1, "T": 1}))  # one sample, one step: `x.view(1, 1, -1)`
        if i == len(tries) - 1 and not tabled:  # the other tries spent: a table's length for T
            tabled = True
            tries += [(t, {"T": n}) for n in table_lengths(instance) for t, _ in tries
                      if "T" in {d for s in t.specs.values() for d in dims_of(s)}]
            own = own_width_specs(instance, found.specs)  # a width from behind a reshape (Swin's PatchMerging)
            tries += [(found._replace(specs=own), extra) for _, extra in tries[:4]] if own is not None else []
        if best is None or (aborted, errors) < best[0]:
            best = ((aborted, errors), i)
        state.rollback(mark)
    assert best is not None
    inputs, extra = tries[best[1]]
    mark = state.mark()
    used = attempt(state, instance, inputs, None, project, path, node, extra)[0]
    if not hinted(node, hints, project, type(instance)):
        for f in [f for f in state.findings[mark[0]:] if is_error(f["code"]) and made_up_only(f, ASSUMED)]:
            tell_made_up(state, f, path, node, ASSUMED)
    return used


def _targets(state: State, instance: nn.Module, found: Inputs, size: int | None, project: ProjectHints, path: str,
             node: ast.ClassDef, lengths: dict[str, int] | None = None) -> None:
    """Forward once more with `labels` made up, so that the loss it computes gets shapes too; and
    once more with the flags that choose a kernel the other way (flags.py)."""
    def run(specs: dict[str, Any]) -> bool:
        return attempt(state, instance, found._replace(specs=specs), size, project, path, node, lengths)[1]

    probe_targets(state, instance, found.specs, run)
    probe_flags(state, instance, lambda: run(found.specs))


def _needed_input(state: State, exc: BaseException, instance: nn.Module, found: Inputs,
                  node: ast.ClassDef) -> tuple[str, Any] | None:
    """An optional input forward used as a tensor although the probe left it None, with the
    input it takes (from the first layer it reaches, as for a required one)."""
    name = none_used(exc, instance, set(found.specs))
    fwd = method_def(node, "forward")
    if name is None or fwd is None:
        return None
    rank = rank_of(fwd, name)
    if rank is None:  # `encoder_hidden_states.shape[:-1]` says nothing: a sequence like the main input
        ranks = [len(s.dims) for s in found.specs.values() if isinstance(s, (Spec, InputSpec))]
        rank = (max(ranks), False) if ranks else None
    spec = fit(param_spec(state, fwd, name, instance, node), rank)
    return (name, spec) if spec is not None else None


def attempt(state: State, instance: nn.Module, found: Inputs, size: int | None, project: ProjectHints, path: str,
            node: ast.ClassDef, lengths: dict[str, int] | None = None) -> tuple[str, bool]:
    """Run forward once; the assumption made, and whether forward stopped on an error.
    `lengths`: made-up sizes taken from the model (a position table's length), searched like
    the spatial ones, so not matched back by value either."""
    sizes = {**ASSUMED, **project.sizes, **(lengths or {})}
    if size is not None:
        sizes.update(H=size, W=size, D=size, L=size)
    searched = set(SPATIAL) | set(lengths or {})
    with torch.no_grad():
        made = {name: make_input(spec, sizes, found.labels) for name, spec in found.specs.items()}
    dims = {d for s in found.specs.values() for d in dims_of(s)}
    used = {k: v for k, v in sizes.items() if k in dims}
    state.assumed = {v: found.labels.get(k, k) for k, v in used.items() if k not in searched}
    # Spatial sides are searched among common sizes (32, 64, ...) that real widths have too:
    # only batch, sequence and the other made-up sizes are rare enough to match back by value.
    symexpr.begin({found.labels.get(k, k): v for k, v in used.items()},
                  {found.labels.get(k, k) for k in used if k not in searched})
    aborted = False
    state.made_up_inputs = True
    start = state.mark()
    failed_on_none = False
    try:
        for _ in range(MAX_NEEDED + 1):
            mark = state.mark()
            try:
                with torch.no_grad():
                    output = instance(**made)
            except ProbeTimeout:
                raise
            except BaseException as exc:  # noqa: BLE001
                failed_on_none = "NoneType" in str(exc)
                if found.unset and (name := none_used(exc, instance, set(found.specs), set(found.unset))) in found.unset:
                    aborted = True  # an input no layer told, left None, that forward needs after all
                    cannot_tell(state, path, instance, node, name)
                    break
                needed = _needed_input(state, exc, instance, found, node)
                if needed is None:
                    aborted = True
                    report_exception(state, exc, path, span(node), set(), what=f"`{type(instance).__name__}`")
                    break
                state.rollback(mark)  # forward needs an input the probe left None: run it again with one
                found.specs[needed[0]] = needed[1]
                with torch.no_grad():
                    made[needed[0]] = make_input(needed[1], sizes, found.labels)
                continue
            if not state.errors_since(start):  # what a training loop's loss is fed (loopfeed.py)
                state.outputs[type(instance)] = first_output(output)
            break
        if found.unset and state.errors_since(start) and (failed_on_none or tests_none(node, found.unset)):
            # With an input nothing told left None, forward took a branch the real input may not take
            # (`if x_mark is not None:`), or failed on the None: what it then says is the probe's.
            state.rollback(start)
            cannot_tell(state, path, instance, node, found.unset[0])
            aborted = True
    finally:
        state.assumed = {}
        state.made_up_inputs = False
        symexpr.end()
    return ", ".join(f"{found.labels.get(k, k)}={v}" for k, v in used.items()), aborted
