"""One probe, run inside a forked child of the worker: execute the plan's statements of the
target file, then probe every nn.Module class of the file that nothing called yet; where a
mismatch could be fixed in more than one place, keep the fix that makes the file consistent
(each candidate is tried in a re-probe: a helper probe the worker forks on this probe's request,
worker/children.py)."""

from __future__ import annotations

import ast
import inspect
import os
import sys
import time
import types

import torch
from torch import nn

from shapelens.analysis.hints import Hint, collect_hints, project_hints, withhold
from shapelens.analysis.index import SourceIndex, method_def
from shapelens.probe import protocol
from shapelens.probe.protocol import Edit, Result
from shapelens.probe.worker import pipes, units, verify
from shapelens.probe.worker import state as probe_state
from shapelens.probe.worker.assuming import Assumption, outermost_first, probe_assumed, second_errors, untold
from shapelens.probe.worker.branches import Branch, probe_branches
from shapelens.probe.worker.construct import bound_args, build, cannot_construct, config_kwargs, ctor_attempts
from shapelens.probe.worker.entry import give_forward
from shapelens.probe.worker.execute import run_statements, sanitize
from shapelens.probe.worker.failures import innermost
from shapelens.probe.worker.imports import WorkspaceFinder, run_in_package
from shapelens.probe.worker.loopfeed import feed_loops
from shapelens.probe.worker.loopinputs import feed_models
from shapelens.probe.worker.mode import ProbeMode
from shapelens.probe.worker.patches import install
from shapelens.probe.worker.probing import probe_class
from shapelens.probe.worker.results import class_name_span, collect
from shapelens.probe.worker.state import ProbeTimeout, State
from shapelens.report.codes import PROBE_INCOMPLETE


class Probe:
    """One file's probe (`run`), or what a helper probe does for another (`run_helper`)."""

    def __init__(self, plan: dict, options: dict) -> None:
        self.plan, self.options = plan, options
        self.device = resolve_device(options.get("device", "meta"))
        self.files = {f["path"]: f for f in plan["files"]}
        self.target = plan["target"]
        self.project = project_hints(plan["root"])
        withhold(self.project.models, plan.get("pure_models") or [])
        withheld = [f"[tool.shapelens.models.{k}]: {h.error}" for k, h in self.project.models.items()
                    if h.error and h.ctor is None and "tensor-pure" in h.error]
        if withheld:
            self.project.error = "; ".join(filter(None, [self.project.error, *withheld]))
        self.started = time.monotonic()
        self.assumed_args: dict[str, dict[str, str]] = {}  # class -> the constructor arguments assumed
        # Classes built from their defaults alone, or first reached inside a probe under assumed
        # arguments or such defaults: nothing chose their values, so their constructor branches
        # may be probed like those of the classes assumed.
        self.reached_assumed: set[str] = set()

    def setup(self, state: State) -> None:
        install(state)
        search = self.plan.get("search") or [os.path.dirname(self.target), self.plan["root"]]
        sys.path[:0] = search
        sys.meta_path.insert(0, WorkspaceFinder(self.files, self.plan["root"], search))

    def run(self, sources: dict[str, str], reuse: bool = True) -> tuple[State, types.ModuleType, SourceIndex,
                                                                          dict[str, str]]:
        """`reuse`: skip the classes whose results the engine holds (plan["skip_classes"]); a
        re-probe that verifies a fix probes everything."""
        state, module, index, hints, stmts = self.start(sources)
        assumptions: dict[str, str] = {}
        classes = sum(isinstance(n, ast.ClassDef) for n in stmts)
        with torch.device(self.device), ProbeMode():
            try:
                self.unit(state, classes, lambda: run_in_package(
                    module, stmts, lambda: run_statements(state, self.target, module, stmts, set(), report=True)))
                skip = set(self.plan.get("skip_classes") or []) if reuse else set()
                state.reused = bool(skip)
                self.probe_classes(state, module, index, hints, assumptions, skip)
                probe_branches(state, module, index, lambda cls, node, branch: self.probe_branch(
                    state, cls, node, module, index, hints, branch), self.started, self.timeout,
                    set(self.assumed_args) | self.reached_assumed)
                feed_models(state, module, index)
                feed_loops(state, module, index)
            except ProbeTimeout as exc:
                self.overran(state, exc)
        return state, module, index, assumptions

    def run_assumed(self, sources: dict[str, str], name: str, missing: list[str], variant: int,
                    nones: bool = False, flips: dict | None = None) -> protocol.AssumedErrors | None:
        """The file's statements, then class `name` alone under assumption `variant` of its
        `missing` arguments: its errors (None: it could not be probed so, or ran out of time)."""
        state, module, index, hints, stmts = self.start(sources)
        with torch.device(self.device), ProbeMode():
            try:
                run_in_package(module, stmts,
                               lambda: run_statements(state, self.target, module, stmts, set(), report=True))
                cls = next((v for v in list(module.__dict__.values()) if isinstance(v, type)
                            and issubclass(v, nn.Module) and v.__module__ == module.__name__ and v.__name__ == name),
                           None)
                node = index.class_def(name) if cls is not None else None
                if cls is None or node is None:
                    return None
                give_forward(cls, node)  # as the first probe did (an agent called by name)
                state.owner = name
                given, _ = config_kwargs(cls, module.__dict__)
                return second_errors(state, cls, node, module.__dict__, missing, {**(given or {}), **(flips or {})},
                                     variant, hints, self.project, self.target, nones)
            except ProbeTimeout:
                return None

    def start(self, sources: dict[str, str]) -> tuple[State, types.ModuleType, SourceIndex, dict[int, Hint],
                                                      list[ast.stmt]]:
        """A fresh record and module for the target, its hints, and the statements to run."""
        state = State(sources, self.device)
        probe_state.activate(state)
        target, tplan = self.target, self.files[self.target]
        index = state.index(target)
        module = types.ModuleType(tplan["module"] or "__shapelens__")
        module.__file__ = target
        # Relative imports resolve against the package the plan named (`pkg.models` for
        # pkg/models/net.py); a package's own __init__.py is that package.
        is_package = os.path.basename(target) == "__init__.py"
        module.__package__ = module.__name__ if is_package else module.__name__.rpartition(".")[0]
        if is_package:
            module.__path__ = [os.path.dirname(target)]
        hints = collect_hints(sources[target])
        withhold(hints, self.plan.get("pure_hints") or [])
        for hint in hints.values():
            if hint.error:
                state.finding(PROBE_INCOMPLETE, target, (hint.line, 0, hint.line, 0), hint.error)
        if self.project.error:
            state.finding(PROBE_INCOMPLETE, target, (1, 0, 1, 0), self.project.error)
        stmts = sanitize(ast.parse(index.text, index.path), set(tplan["keep"]), set(tplan["strip_decorators"]),
                         tplan.get("replace"), set(tplan.get("defer_decorators") or []))
        return state, module, index, hints, stmts

    def unit(self, state: State, units_after: int, work) -> None:
        """`work` under its own share of the time limit (worker/units.py)."""
        units.guarded(units_after, float(self.options.get("timeout", 5.0)), work,
                      lambda exc: self.overran(state, exc))

    def contained(self, state: State, index: SourceIndex, node: ast.ClassDef, work, failed=None):
        """`work()` for one class; a fault of shapelens' own there (an exception the user's code
        did not raise: those are caught where they run) costs that class, not the whole file."""
        try:
            return work()
        except Exception as exc:  # noqa: BLE001 — told on the class, and the file's other classes go on
            state.finding(PROBE_INCOMPLETE, self.target, class_name_span(index, node),
                          f"internal probe error while probing `{node.name}` ({type(exc).__name__}: {exc}); its "
                          "layers are not shaped, the file's other classes are probed. This is a shapelens bug: "
                          "please report it with this class")
            return failed

    def overran(self, state: State, exc: ProbeTimeout) -> None:
        state.timed_out = True  # a re-probe that overran decides nothing
        where = innermost(state, exc)
        path, line = (where[0], where[1][0]) if where else (state.at or (self.target, 1))
        state.finding(PROBE_INCOMPLETE, path, (line, 0, line, 10_000),
                      f"the probe timed out after {self.options.get('timeout', 5)} s here; shapes after this "
                      "point are unknown (an endless loop, or a model too large for the device?)")

    def probe_classes(self, state: State, module: types.ModuleType, index: SourceIndex, hints: dict[int, Hint],
                      assumptions: dict[str, str], skip: set[str]) -> None:
        """Probe every class of the file nothing called (and that is not in `skip`). A class that
        cannot be built on its own (a block taking its widths from its parent) may still be
        reached through another call site of a class that builds it (`ResNet(Bottleneck, [3, 4,
        6, 3])`). What each class's probe records is tagged with the class (`state.owner`)."""
        classes = [v for v in list(module.__dict__.values()) if isinstance(v, type) and issubclass(v, nn.Module)
                   and v.__module__ == module.__name__]
        pending: list[tuple[type, ast.ClassDef, list[str]]] = []
        spare: list[tuple[type, ast.ClassDef, tuple, dict]] = []
        for cls in classes:  # an agent called by name (`get_value(x)`): that method stands in for forward
            if (node := index.class_def(cls.__name__)) is not None:
                give_forward(cls, node)
        todo = [(cls, node) for cls in reversed(classes)
                if not (cls in state.called or inspect.isabstract(cls) or cls.__name__ in skip)
                and (node := index.class_def(cls.__name__)) is not None and method_def(node, "forward") is not None]
        for i, (cls, node) in enumerate(todo):
            self.unit(state, len(todo) - i - 1, lambda cls=cls, node=node: self.contained(
                state, index, node, lambda: self.probe_one(state, cls, node, module, index, hints, assumptions,
                                                           pending, spare)))
        self.probe_pending(state, module, index, hints, assumptions, pending, spare, classes, skip)

    def probe_one(self, state: State, cls: type, node: ast.ClassDef, module: types.ModuleType, index: SourceIndex,
                  hints: dict[int, Hint], assumptions: dict[str, str], pending: list, spare: list) -> None:
        """One class on its own: built from the first way that works, then probed."""
        target = self.target
        if cls in state.called:
            return  # another class's probe reached it meanwhile
        self.progress(state, node)
        state.owner = cls.__name__
        state.probed.append(cls.__name__)
        instance = state.instances.get(cls)
        before = set(state.called)
        by_defaults = False
        if instance is None:
            attempts, missing = ctor_attempts(state, cls, module.__dict__, index, node, hints, self.project,
                                              self.plan.get("ctor_sites", {}).get(cls.__name__, []), target,
                                              self.plan["root"])
            if not attempts:
                pending.append((cls, node, missing))
                return
            instance = build(state, cls, *attempts[0], target, node)
            if instance is None:
                return
            spare += [(cls, node, *a) for a in attempts[1:4]]
            by_defaults = cls in state.by_defaults  # (then attempts[0] is that build: nothing came before it)
        assumed = probe_class(state, instance, node, hints, self.project, target)
        if by_defaults:  # nothing chose these values (diffusers' UNets): their branches are probed too
            self.reached_assumed |= {cls.__name__} | {c.__name__ for c in state.called - before}
        if assumed:
            assumptions[cls.__name__] = assumed

    def probe_pending(self, state: State, module: types.ModuleType, index: SourceIndex, hints: dict[int, Hint],
                      assumptions: dict[str, str], pending: list, spare: list, classes: list[type],
                      skip: set[str]) -> None:
        """The classes that could not be built on their own: through another class's call site,
        else with assumed arguments."""
        target = self.target
        for cls, _node, _ in pending:
            for other, onode, args, kwargs in spare:
                if cls in state.called:
                    break
                self.progress(state, onode)
                state.owner = other.__name__
                instance = build(state, other, args, kwargs, target, onode)
                if instance is not None:
                    probe_class(state, instance, onode, hints, self.project, target)
        # Still unbuilt: assume its arguments, the classes no other one uses first (they reach
        # the rest with the widths they pass down).
        unconfirmed: list[int] = []  # lines of errors an assumed probe found but a second did not confirm
        for cls, node, missing in outermost_first(pending):
            # A class reached through another is probed alone too when an error in it was not
            # confirmed there: the outer class's second assumption may take other branches
            # (`if c1 != c2:`) than its own arguments would.
            if cls in state.called and not any(node.lineno <= ln <= (node.end_lineno or 0) for ln in unconfirmed):
                continue
            self.progress(state, node)
            state.owner = cls.__name__
            given, _ = config_kwargs(cls, module.__dict__)
            # What another file's call site gives (all but what the probe cannot evaluate there).
            given = {**(given or {}), **state.partial_args.get(cls, {})}
            missing = [m for m in missing if m not in given]
            before = set(state.called)
            made = self.contained(state, index, node, lambda cls=cls, node=node, missing=missing, given=given:
                                  probe_assumed(state, cls, node, module.__dict__, missing, given, hints,
                                                self.project, target, index,
                                                self.started + float(self.options.get("timeout", 5.0)) * 0.6),
                                  failed=False)
            if made is False:
                continue
            if isinstance(made, Assumption):
                self.reached_assumed |= {c.__name__ for c in state.called - before}
                unconfirmed += made.dropped
                self.assumed_args.setdefault(cls.__name__, made.shown)
                if made.inputs:
                    assumptions[cls.__name__] = made.inputs
            elif cls not in state.called:
                why = cannot_construct(cls, missing, list(given)) + (
                    (f" (nor could assumed values build it: {made})" if missing else f" ({made})") if made else "")
                state.finding(PROBE_INCOMPLETE, target, class_name_span(index, node), why)
        state.owner = None
        # A class another probe (or module-level code) reached is done too: its results are
        # that caller's, and probing it alone next time would only repeat them less well.
        state.probed += [c.__name__ for c in classes if c in state.called and c.__name__ not in skip
                         and c.__name__ not in state.probed]

    @property
    def timeout(self) -> float:
        return float(self.options.get("timeout", 5.0))

    def probe_branch(self, state: State, cls: type, node: ast.ClassDef, module: types.ModuleType,
                     index: SourceIndex, hints: dict[int, Hint], branch: Branch) -> None:
        """`cls` built as before (its first call site, its config, else assumed values) but with
        `branch`'s values, and probed: the layers of a branch the first probe did not take."""
        ns = module.__dict__
        attempts, missing = ctor_attempts(state, cls, ns, index, node, hints, self.project,
                                          self.plan.get("ctor_sites", {}).get(cls.__name__, []), self.target,
                                          self.plan["root"])
        given = bound_args(cls, *attempts[0]) if attempts else (config_kwargs(cls, ns)[0] or {})
        if given is None:
            return
        missing = [] if attempts else [m for m in missing if m not in branch.flips]
        missing += [f for f in branch.fill if given.get(f) is None and f not in missing]
        self.progress(state, node)
        state.owner = cls.__name__
        mark = state.mark()
        probe_assumed(state, cls, node, ns, missing, {**given, **branch.flips}, hints, self.project, self.target,
                      index, self.started + self.timeout * 0.6, branch)
        if cls.__name__ not in set(self.assumed_args) | self.reached_assumed:
            untold(state, mark, index, node, self.target, branch,
                   f"as the workspace builds `{node.name}` with other values")
        elif branch.given:  # an option left None, given a value: the inputs it goes with stay unset
            untold(state, mark, index, node, self.target, branch,
                   f"as nothing says what {', '.join(branch.given)} and the inputs that go with it are")
        state.owner = None

    def progress(self, state: State, node: ast.ClassDef) -> None:
        state.at = (self.target, node.lineno)
        probe_state.progress(self.target, node.lineno)

    # -- re-probing with a fix applied ------------------------------------------------------------
    def rerun(self, deadline: float):
        """verify.choose's re-probe: a helper probe of the sources with `edits` applied."""
        def run(_, edits: list[Edit]) -> list[protocol.FoundAt] | None:
            return pipes.ask(protocol.reprobe(pipes.next_seq(), deadline - time.monotonic(), edits),
                             deadline - time.monotonic())

        return run

    def reprobe(self, edits: list[Edit]) -> list[protocol.FoundAt] | None:
        """In a helper: the whole file probed again with `edits` applied (None: it ran out of time)."""
        state = self.run(verify.apply({p: f["source"] for p, f in self.files.items()}, edits), reuse=False)[0]
        return None if state.timed_out else [protocol.found_at(f["code"], f["path"], f["span"]) for f in state.findings]


def run_helper(plan: dict, options: dict, request: dict) -> list[protocol.FoundAt] | protocol.AssumedErrors | None:
    """What a helper probe answers the probe that asked for it (a protocol.Reprobe or SecondAssumption)."""
    probe = Probe(plan, options)
    sources = {p: f["source"] for p, f in probe.files.items()}
    probe.setup(State(sources, probe.device))
    if request["op"] == "reprobe":
        return probe.reprobe(request["edits"])
    return probe.run_assumed(sources, request["cls"], request["missing"], request["variant"], request["nones"],
                             request.get("flips"))


def run_probe(plan: dict, options: dict) -> Result:
    started = time.monotonic()
    probe = Probe(plan, options)
    notes: list[str] = []
    if probe.device != options.get("device", "meta") and options.get("device") == "cuda":
        notes.append("CUDA is not available to the probe's torch; probed on the meta device instead")
    sources = {p: f["source"] for p, f in probe.files.items()}
    probe.setup(State(sources, probe.device))
    state, module, index, assumptions = probe.run(sources)
    probed = time.monotonic()
    # Choosing among fixes re-probes the file; it gets what is left of 80 % of the time limit,
    # so a slow model still answers in time.
    timeout = float(options.get("timeout", 5.0))
    deadline = started + max(timeout * 0.8, 0.5)
    # `verify: false` (the editor's first answer to an edit): the errors where they were found,
    # and a stat saying that re-probes would have chosen among their fixes (asked for next).
    unverified = not options.get("verify", True) and verify.needed(state.findings)
    try:
        if unverified:
            state.findings = verify.unverified(state.findings)
        else:
            state.findings = verify.choose(state.findings, probe.rerun(deadline), deadline, sources=sources,
                                           assumed=set(probe.assumed_args))
    except ProbeTimeout:
        state.findings = [protocol.public(f) for f in state.findings]
    verified = time.monotonic()
    result = collect(state, module, index, probe.target, assumptions, notes, probe.assumed_args)
    if unverified:
        result["stats"]["unverified"] = True
    # Where a probe's time went (the language server's latency breakdown, bench/users.py).
    result["stats"]["timing_ms"] = {"probe": (probed - started) * 1000, "verify": (verified - probed) * 1000,
                                    "collect": (time.monotonic() - verified) * 1000}
    return result



def resolve_device(device: str) -> str:
    if device in ("cuda", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        return "cpu" if device == "auto" else "meta"
    return device if device in ("meta", "cpu") else "meta"



def warm_up() -> None:
    """Common layers reach lazily imported parts of torch on the meta device (BatchNorm's
    decomposition imports torch._dynamo, over a second): load them once, in the worker before it
    forks, not in every probe."""
    import torch.nn.functional as F

    with torch.device("meta"), torch.no_grad():
        x = torch.randn(2, 4, 8, 8)
        for layer in (nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True),
                      nn.ConvTranspose2d(4, 4, 2, 2), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Dropout(0.1)):
            layer(x)
        nn.BatchNorm1d(4)(torch.randn(2, 4))
        nn.GRU(4, 4, bidirectional=True)(torch.randn(3, 2, 4))
        F.cross_entropy(torch.randn(2, 5), torch.randint(0, 5, (2,)))
        F.interpolate(x, scale_factor=2)
        torch.cat([x, x], 1).flatten(1).softmax(-1)


__all__ = ["run_probe", "warm_up"]
