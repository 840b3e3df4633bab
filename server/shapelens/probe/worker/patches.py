"""The patches a probe makes to torch (the child process is thrown away afterwards): every
nn.Module records where it was built and gets the checking hooks, constructors whose arguments
torch would reject are checked first, and device moves keep everything on the probe's device."""

from __future__ import annotations

import functools
import inspect
import os
import sys

import torch
from torch import nn

from shapelens.analysis.source import span
from shapelens.probe import protocol
from shapelens.probe.worker import hooks
from shapelens.probe.worker import state as probe
from shapelens.probe.worker.layer_rule import LayerRule, bind_values, failed_checks
from shapelens.probe.worker.origin import caller_literal, ctor_arg, find_site
from shapelens.probe.worker.rules import RULES, rule_for
from shapelens.probe.worker.state import LayerInfo, State
from shapelens.report.codes import INVALID_LAYER_CONFIG

_orig_module_init = nn.Module.__init__


def _built_by_user(module: nn.Module) -> bool:
    """Whether the code that called the layer's constructor is the user's (not torch building
    the parts of a layer, like the Linear layers inside nn.TransformerEncoderLayer)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_locals.get("self") is module:
        frame = frame.f_back
    return frame is not None and probe.STATE is not None and frame.f_code.co_filename in probe.STATE.sources


def tracked_init(self: nn.Module, *args, **kwargs) -> None:
    _orig_module_init(self, *args, **kwargs)
    state = probe.STATE
    if state is None or "_sl" in self.__dict__:
        return
    info = LayerInfo(self, find_site(skip_self=self, with_scope=True), direct=_built_by_user(self), owner=state.owner,
                     rule=rule_for(type(self)))
    self.__dict__["_sl"] = info
    state.layers.append(info)
    state.instances.setdefault(type(self), self)
    self.register_forward_pre_hook(hooks.pre_hook, with_kwargs=True)
    self.register_forward_hook(hooks.forward_hook, with_kwargs=True)


def wrap_constructor(rule: LayerRule) -> None:
    """Check constructor arguments torch would reject, report them on the argument, and build
    the layer with a repaired value so the rest of the model is still probed."""
    if not rule.checks:
        return
    cls = rule.cls
    orig = cls.__init__
    sig = inspect.signature(orig)
    plain = all(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values())

    @functools.wraps(orig)
    def init(self, *args, **kwargs):
        state = probe.STATE
        values = bind_values(sig, self, args, kwargs) if state is not None and plain else None
        if state is None or values is None:
            return orig(self, *args, **kwargs)
        changed = False
        for check, message, repaired in failed_checks(rule, values):
            changed = True
            site = find_site(skip_self=self, with_scope=True)
            if site is None:
                continue
            cs, arg = ctor_arg(type(self), rule, site, check.param)
            where = arg.span if arg else (span(cs.call) if cs else site.span)
            fixes = []
            if arg is not None and check.fixable:
                path, fix_arg = caller_literal(self, arg) or (site.path, arg)
                fixes.append(protocol.change(check.param, path, fix_arg.span, str(repaired)))
            state.finding(INVALID_LAYER_CONFIG, site.path, where, message, fixes=fixes)
        if changed:
            return orig(**values)
        return orig(self, *args, **kwargs)

    cls.__init__ = init


def _strip_device(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    kept = []
    for a in args:
        if isinstance(a, (str, torch.device)):
            continue
        if isinstance(a, torch.Tensor):
            kept.append(a.dtype)
            continue
        kept.append(a)
    return tuple(kept), {k: v for k, v in kwargs.items() if k != "device"}


def install(state: State) -> None:
    """Patch torch for this probe. The child process is thrown away afterwards."""
    probe.activate(state)
    nn.Module.__init__ = tracked_init
    for rule in RULES:
        wrap_constructor(rule)
    # Model code moves tensors between devices; the probe keeps everything on its own device.
    tensor_to = torch.Tensor.to
    module_to = nn.Module.to

    def t_to(self, *args, **kwargs):
        args, kwargs = _strip_device(args, kwargs)
        return tensor_to(self, *args, **kwargs) if args or kwargs else self

    def m_to(self, *args, **kwargs):
        args, kwargs = _strip_device(args, kwargs)
        return module_to(self, *args, **kwargs) if args or kwargs else self

    torch.Tensor.to = t_to
    nn.Module.to = m_to
    for owner in (torch.Tensor, nn.Module):
        owner.cuda = lambda self, *a, **k: self
        owner.cpu = lambda self, *a, **k: self
    if state.device != "cuda":
        torch.cuda.is_available = lambda: False

    def _exit(code=0):
        # A hard exit would leave no trace of where it happened; as SystemExit it is reported
        # at its line like sys.exit().
        raise SystemExit(code)

    os._exit = _exit
