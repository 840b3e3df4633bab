"""Reach into installed-package code (the shape of diffusers & co.): a file whose package
`__init__` re-exports it, a method decorator of the library that gives the model its `config`,
and forward inputs no layer tells (a diffusion model's `timestep`, a cross-attention's context).
Each case is a small package of our own under a `site-packages` folder, probed where it lies
with its own folder as the workspace (as `bench/realworld.py` probes installed files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shapelens.engine import Engine

CONFIG = """\
import functools
import inspect


class FrozenConfig(dict):
    def __getattr__(self, name):
        return self[name]


def register_to_config(init):
    # Like diffusers' decorator: the constructor's arguments become `self.config`.
    @functools.wraps(init)
    def inner(self, *args, **kwargs):
        init(self, *args, **kwargs)
        bound = inspect.signature(init).bind(self, *args, **kwargs)
        bound.apply_defaults()
        self._internal_dict = FrozenConfig({k: v for k, v in bound.arguments.items() if k != "self"})

    return inner


class ConfigMixin:
    @property
    def config(self):
        return self._internal_dict
"""

BLOCKS = """\
import math

import torch
import torch.nn as nn


class TimeEmbedding(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None, :]
        return torch.cat([args.sin(), args.cos()], dim=-1)


class CrossAttention(nn.Module):
    def __init__(self, dim, context_dim):
        super().__init__()
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(context_dim, dim)
        self.to_v = nn.Linear(context_dim, dim)

    def forward(self, x, context=None):
        context = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        weights = (q @ k.transpose(1, 2)).softmax(dim=-1)
        return x + weights @ v


class ResBlock(nn.Module):
    def __init__(self, width, temb_width):
        super().__init__()
        self.norm = nn.GroupNorm(8, width)
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.temb = nn.Linear(temb_width, width)

    def forward(self, h, temb):
        return h + self.conv(self.norm(h)) + self.temb(temb)[:, :, None, None]
"""

UNET = """\
import torch
import torch.nn as nn

from ..config import ConfigMixin, register_to_config
from .blocks import CrossAttention, ResBlock, TimeEmbedding


class TinyUNet(nn.Module, ConfigMixin):
    @register_to_config
    def __init__(self, in_channels=4, width=32, cross_attention_dim=24, depth=2):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, width, 3, padding=1)
        self.time_proj = TimeEmbedding(width)
        self.time_mlp = nn.Linear(width, width * 2)
        self.resnets = nn.ModuleList([ResBlock(width, width * 2) for _ in range(depth)])
        self.attns = nn.ModuleList([CrossAttention(width, cross_attention_dim) for _ in range(depth)])
        self.conv_out = nn.Conv2d(width, in_channels, 3, padding=1)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int,
                encoder_hidden_states: torch.Tensor, return_dict: bool = True):
        if self.config.in_channels != sample.shape[1]:
            raise ValueError("wrong number of channels")
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], dtype=torch.float32)
        temb = self.time_mlp(self.time_proj(timestep.expand(sample.shape[0])))
        h = self.conv_in(sample)
        for resnet, attn in zip(self.resnets, self.attns):
            h = resnet(h, temb)
            b, c, hh, ww = h.shape
            seq = attn(h.flatten(2).transpose(1, 2), context=encoder_hidden_states)
            h = seq.transpose(1, 2).reshape(b, c, hh, ww)
        return self.conv_out(h)
"""

NETS_INIT = """\
from .unet import TinyUNet
from .blocks import ResBlock
"""


@pytest.fixture
def installed(tmp_path, worker):
    """A package `slfuse` in a site-packages folder; `probe(rel, text)` probes one of its files."""
    site = tmp_path / "venv" / "lib" / "python3" / "site-packages"
    files = {"slfuse/__init__.py": "", "slfuse/config.py": CONFIG, "slfuse/nets/__init__.py": NETS_INIT,
             "slfuse/nets/blocks.py": BLOCKS, "slfuse/nets/unet.py": UNET}
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)

    def probe(rel: str, text: str | None = None):
        path = site / rel
        engine = Engine(str(path.parent), worker=worker)
        return engine.check(str(path), text if text is not None else path.read_text())

    probe.site = site  # type: ignore[attr-defined]
    return probe


def _shaped(report, path: Path) -> dict[str, list[int] | None]:
    return {s.name: s.output_shape for s in report.shapes if s.kind == "layer" and s.path == str(path.resolve())}


def test_a_file_its_package_init_reexports_imports_its_siblings(installed):
    # Importing `slfuse.nets.blocks` runs `slfuse/nets/__init__.py`, which imports `unet.py`
    # back: the probe imports the package first, and hands it the file being probed.
    report = installed("slfuse/nets/unet.py")
    assert not [f for f in report.findings if "failed to import" in f.message or "import failed" in f.message], \
        [f.message for f in report.findings]
    shapes = _shaped(report, installed.site / "slfuse/nets/unet.py")
    assert shapes["self.conv_in"] is not None and shapes["self.conv_in"][1] == 32


def test_timestep_and_cross_attention_context_are_made_up(installed):
    report = installed("slfuse/nets/unet.py")
    assert [f for f in report.findings if f.severity == "error"] == []
    assert not [f for f in report.findings if "cannot tell" in f.message], [f.message for f in report.findings]
    unet = _shaped(report, installed.site / "slfuse/nets/unet.py")
    assert unet["self.time_mlp"] is not None and unet["self.time_mlp"][-1] == 64  # timestep: a [B] batch
    blocks = _shaped(report, installed.site / "slfuse/nets/blocks.py")
    assert blocks["self.to_k"] is not None and blocks["self.to_k"][-1] == 32  # context: [B, T, 24]


def test_a_width_bug_behind_the_library_decorator_is_reported_on_its_line(installed):
    text = UNET.replace("self.time_mlp = nn.Linear(width, width * 2)", "self.time_mlp = nn.Linear(width * 2, width * 2)")
    report = installed("slfuse/nets/unet.py", text)
    errors = [f for f in report.findings if f.severity == "error"]
    assert [f.range["start"]["line"] for f in errors] == [text.splitlines().index(
        "        self.time_mlp = nn.Linear(width * 2, width * 2)")], [f.message for f in errors]


def test_the_library_decorator_runs_only_when_the_method_is_called(installed):
    # Deferred, not stripped: without it `self.config` would not exist and forward could not run.
    path = installed.site / "slfuse/nets/unet.py"
    engine = Engine(str(path.parent), worker=None)
    try:
        plan = engine.plan(str(path), path.read_text())
    finally:
        engine.worker.close()
    mine = next(f for f in plan.files if f.path == str(path.resolve()))
    line = UNET.splitlines().index("    @register_to_config") + 1
    assert mine.defer_decorators == [f"{line}:5"]
