"""What one probe records (a forked child of the worker holds one `State` at a time), and the
records it keeps per layer. `STATE` is the probe running now: torch's hooks and the function
mode reach it through here, since torch calls them without a way to pass it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shapelens.analysis.index import SourceIndex
from shapelens.analysis.source import Span
from shapelens.probe import protocol
from shapelens.probe.protocol import Finding, Fix, Related, TensorShape
from shapelens.probe.worker import symexpr
from shapelens.report.codes import is_error

if TYPE_CHECKING:
    from shapelens.probe.worker.layer_rule import LayerRule


class ProbeTimeout(BaseException):
    """Raised by the probe's timer; a BaseException so user `except Exception:` cannot swallow it."""


class ShapeMismatch(RuntimeError):
    """An op whose inputs do not fit, found by a check before torch ran it. `alts` are findings
    on the constructor arguments that made the disagreeing widths, each with its fix."""

    def __init__(self, message: str, alts: list[Finding], fixed_size: bool = False) -> None:
        super().__init__(message)
        self.alts = alts
        self.fixed_size = fixed_size  # every disagreeing width is one layer's argument: no input size changes it


@dataclass
class Site:
    path: str
    span: Span
    scope: dict[str, Any] = field(default_factory=dict)

    def __deepcopy__(self, memo) -> Site:
        return self  # a record of where something was built; layers torch deep-copies share it


@dataclass
class LayerInfo:
    module: nn.Module
    site: Site | None
    first_in: list[int] | None = None
    first_out: list[int] | None = None
    in_sym: list[str] | None = None  # the dims as hovers show them, when some were assumed
    out_sym: list[str] | None = None
    symbols: dict[str, int] = field(default_factory=dict)  # assumed sizes those dims use
    # Built by the user's own call (not inside a torch layer's constructor): only then do the
    # call's arguments belong to this module.
    direct: bool = True
    params_checked: bool = False
    restore: Any = None  # the input a width-keeping layer really got, when the probe repaired it
    origin: LayerInfo | None = None  # for a copy torch made (nn.TransformerEncoder clones its layer)
    owner: str | None = None  # the class whose probe built it (None: module-level code)
    rule: LayerRule | None = None  # the layer's entry in the rule table

    def __deepcopy__(self, memo) -> LayerInfo:
        new = LayerInfo(copy.deepcopy(self.module, memo), self.site, direct=self.direct,
                        params_checked=self.params_checked, origin=self.origin or self, owner=self.owner,
                        rule=self.rule)
        if STATE is not None:
            STATE.copies.append(new)
        return new

    def record(self, x: torch.Tensor | None, out: torch.Tensor | None) -> None:
        """The shapes of the first call; a copy's first call also shapes the layer it copies,
        which the user built and may never call itself."""
        for info in (self, self.origin) if self.origin is not None else (self,):
            if x is not None and info.first_in is None and info.first_out is None:
                info.first_in, info.in_sym = list(x.shape), symexpr.dims_text(x)
                info.symbols = {**info.symbols, **symexpr.used_symbols(x)}
            if out is not None and info.first_out is None:
                info.first_out, info.out_sym = list(out.shape), symexpr.dims_text(out)
                info.symbols = {**info.symbols, **symexpr.used_symbols(out)}


def layer_info(module: nn.Module) -> LayerInfo | None:
    return module.__dict__.get("_sl")


def rule_of(module: nn.Module) -> LayerRule | None:
    info = layer_info(module)
    return info.rule if info is not None else None


class State:
    """Everything one probe records. One per child process."""

    def __init__(self, files: dict[str, str], device: str) -> None:
        self.sources = files  # path -> source text of every planned workspace file
        self.indexes: dict[str, SourceIndex] = {}
        self.device = device
        self.meta = device == "meta"
        self.findings: list[Finding] = []
        self._finding_keys: set[tuple] = set()
        self.tensors: dict[tuple[str, Span], TensorShape] = {}
        self.layers: list[LayerInfo] = []
        self.copies: list[LayerInfo] = []  # layers torch deep-copied (they are not the user's calls)
        self.called: set[type] = set()
        self.instances: dict[type, nn.Module] = {}
        self.outputs: dict[type, Any] = {}  # a class -> the first tensor its last clean forward gave
        self.by_defaults: set[type] = set()  # classes nothing gives arguments: built from their defaults
        self.partial_args: dict[type, dict] = {}  # a class -> what another file's call site gives of its arguments
        self.assumed: dict[int, str] = {}
        self.made_up_inputs = False  # forward runs on inputs the probe made up (a class probe)
        self.at: tuple[str, int] | None = None
        self.missing_notes: dict[tuple[str, int], Finding] = {}  # failed import -> its note
        self.reused = False  # classes whose results the engine holds were not run (their calls unknown)
        self.skipped: set[tuple[str, str]] = set()  # (path, statement) after an import that failed in its `try:`
        self.timed_out = False
        self.last_split: dict | None = None  # the last split/unbind, to explain a failed unpacking
        # (a flattened width as the made-up sides give it, `64 * ((H - 32)/8) * ((W - 32)/8)`, the
        # width the layer declares): the size search solves it for a side (rejections.solved_sides)
        self.size_exprs: list[tuple[Any, int]] = []  # (symexpr.Dim, width)
        # The class whose probe is running (None: module-level code): everything recorded is
        # tagged with it, so the engine can reuse a class's results while its text is unchanged.
        self.owner: str | None = None
        self.probed: list[str] = []

    def index(self, path: str) -> SourceIndex | None:
        if path not in self.indexes:
            src = self.sources.get(path)
            if src is None:
                return None
            try:
                self.indexes[path] = SourceIndex(path, src)
            except SyntaxError:
                return None
        return self.indexes[path]

    # -- findings ---------------------------------------------------------------------------
    def finding(self, code: str, path: str, where: Span, message: str, related: list[Related] | None = None,
                fixes: list[Fix] | None = None, alts: list[Finding] | None = None,
                steps: list[protocol.ChainStep] | None = None) -> Finding | None:
        """`alts`: the same problem told from other constructor arguments (the producers of a
        width); the probe keeps whichever fix it verifies to make the file consistent. Returns
        the finding, or None when the same code was already reported there."""
        key = (code, path, tuple(where))
        if key in self._finding_keys:
            return None
        self._finding_keys.add(key)
        entry = protocol.finding(code, path, where, message, related or [], fixes or [], self.owner)
        if alts:
            entry["alts"] = alts
        if steps:
            entry["chain"] = steps
        self.findings.append(entry)
        return entry

    def restore(self, f: Finding) -> None:
        """Put back a finding taken back by a rollback."""
        self.findings.append(f)
        self._finding_keys.add((f["code"], f["path"], tuple(f["span"])))

    def drop(self, f: Finding) -> None:
        """Take back a finding (one an assumed value made)."""
        self.findings.remove(f)
        self._finding_keys.discard((f["code"], f["path"], tuple(f["span"])))

    # -- attempts (a class probe may try several input sizes) -------------------------------
    def mark(self) -> tuple:
        return (len(self.findings), set(self.tensors), [(li, li.first_in, li.first_out, li.in_sym, li.out_sym,
                                                          li.symbols) for li in self.layers + self.copies],
                set(self.called), len(self.layers), len(self.copies))

    def rollback(self, mark: tuple) -> None:
        n, keys, layer_state, called, n_layers, n_copies = mark
        # Layers built since (a loss made in forward) keep no shapes of the attempt taken back.
        for li in self.layers[n_layers:] + self.copies[n_copies:]:
            li.first_in = li.first_out = li.in_sym = li.out_sym = None
            li.symbols = {}
        for f in self.findings[n:]:
            self._finding_keys.discard((f["code"], f["path"], tuple(f["span"])))
        del self.findings[n:]
        for k in set(self.tensors) - keys:
            del self.tensors[k]
        for li, fi, fo, isym, osym, symbols in layer_state:
            li.first_in, li.first_out, li.in_sym, li.out_sym, li.symbols = fi, fo, isym, osym, symbols
        self.called = called

    def errors_since(self, mark: tuple) -> int:
        return sum(1 for f in self.findings[mark[0]:] if is_error(f["code"]))


STATE: State | None = None
# Set by the worker: called with (path, line) as the probe moves on.
on_progress: Callable[[str, int], None] | None = None


def activate(state: State) -> None:
    """Make `state` the probe's record (a re-probe of edited sources starts a fresh one)."""
    global STATE
    STATE = state


def current() -> State:
    """The probe running now; only called from code that runs inside a probe."""
    assert STATE is not None, "no probe is running"
    return STATE


def progress(path: str, line: int) -> None:
    if on_progress is not None:
        on_progress(path, line)
