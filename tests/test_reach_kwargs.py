"""Reach into library-style model files (the shape of x-transformers & co.): layer factories
made with `functools.partial` at module level, and a forward whose input rank only a later
layer tells (it fails, without a width error, on the rank the first layer suggests). Each case
is a small model of our own; each probe is a real worker process."""

from __future__ import annotations

from helpers import by_code

PARTIAL = """\
from functools import partial

import torch
from torch import nn

LinearNoBias = partial(nn.Linear, bias=False)


class Gate(nn.Module):
    def __init__(self, dim, hidden=48):
        super().__init__()
        self.proj_in = LinearNoBias(dim, hidden)
        self.proj_out = LinearNoBias(hidden, dim)

    def forward(self, x):
        return x * self.proj_out(self.proj_in(x)).sigmoid()


model = Gate(32)
"""

RANKED = """\
import torch
from torch import nn


class SplitHeads(nn.Module):
    # Knows its recipe per input rank, like an einops layer: any other rank is a KeyError.
    def __init__(self):
        super().__init__()
        self.recipes = {3: (0, 2, 1)}

    def forward(self, x):
        return x.permute(*self.recipes[x.ndim])


class Gates(nn.Module):
    def __init__(self, dim, heads=4):
        super().__init__()
        self.to_gates = nn.Sequential(nn.Linear(dim, heads), SplitHeads(), nn.LogSigmoid())

    def forward(self, x):
        return self.to_gates(x).cumsum(dim=-1)


model = Gates(32)
"""


def _layer(report, name):
    return next(s for s in report.shapes if s.kind == "layer" and s.name == name)


def test_a_layer_factory_made_with_partial_builds_the_model(workspace):
    workspace.write("gate.py", PARTIAL)
    report = workspace.check("gate.py")
    assert not [f for f in report.findings if "NameError" in f.message], [f.message for f in report.findings]
    assert _layer(report, "self.proj_out").output_shape[-1] == 32


def test_a_width_bug_through_the_partial_factory_is_reported(workspace):
    text = PARTIAL.replace("LinearNoBias(hidden, dim)", "LinearNoBias(hidden + 1, dim)")
    workspace.write("gate.py", text)
    report = workspace.check("gate.py")
    errors = [f for f in report.findings if f.severity == "error"]
    assert [f.range["start"]["line"] for f in errors] == [text.splitlines().index(
        "        self.proj_out = LinearNoBias(hidden + 1, dim)")], [f.message for f in errors]


def test_a_rank_only_a_later_layer_tells_is_found_when_the_first_rank_fails(workspace):
    workspace.write("gates.py", RANKED)
    report = workspace.check("gates.py")
    assert not [f for f in report.findings if "KeyError" in f.message], [f.message for f in report.findings]
    assert _layer(report, "self.to_gates").input_shape == [17, 13, 32]
    assert by_code(report, "feature-mismatch") == []


LAYERS = """\
import torch
from torch import nn


class Layers(nn.Module):
    def __init__(self, dim, depth=None, heads=4, causal=False):
        super().__init__()
        assert depth is not None, "`depth` must be passed in"
        self.dim = dim
        self.blocks = nn.ModuleList([nn.Linear(dim, dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        for block in self.blocks:
            x = x + block(x)
        return self.norm(x)


class Encoder(Layers):
    def __init__(self, **kwargs):
        assert "causal" not in kwargs
        super().__init__(causal=False, **kwargs)


class Wrapper(nn.Module):
    def __init__(self, *, num_tokens, attn_layers: Encoder, emb_dropout=0.0):
        super().__init__()
        dim = attn_layers.dim
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.attn_layers = attn_layers
        self.to_logits = nn.Linear(dim, num_tokens)

    def forward(self, x):
        return self.to_logits(self.attn_layers(self.token_emb(x)))
"""


def test_kwargs_forwarded_to_the_base_and_an_annotated_part_are_assumed(workspace):
    # `Encoder(**kwargs)` takes its base's `dim`; `depth=None` that the base asserts given is
    # assumed too; `attn_layers: Encoder` is an Encoder built with assumed values.
    workspace.write("layers.py", LAYERS)
    report = workspace.check("layers.py")
    notes = [f.message for f in by_code(report, "probe-incomplete")]
    assert any("attn_layers=Encoder(dim=64, depth=2)" in m for m in notes), notes
    assert not [m for m in notes if "cannot construct" in m], notes
    logits = [s for s in report.shapes if s.kind == "layer" and s.name == "self.to_logits"]
    assert logits and logits[0].output_shape is not None and logits[0].output_shape[-1] == 1000
    assert [f for f in report.findings if f.severity == "error"] == []


def test_a_width_bug_in_an_assumed_part_is_reported(workspace):
    text = LAYERS.replace("self.to_logits = nn.Linear(dim, num_tokens)", "self.to_logits = nn.Linear(dim + 1, num_tokens)")
    workspace.write("layers.py", text)
    report = workspace.check("layers.py")
    lines = {f.range["start"]["line"] for f in report.findings if f.severity == "error"}
    assert text.splitlines().index("        self.to_logits = nn.Linear(dim + 1, num_tokens)") in lines


ALIASED = """\
import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self, in_ch=3, widths=(16, 32)):
        super().__init__()
        layers, prev = [], in_ch
        for w in widths:
            layers.append(nn.Conv2d(prev, w, 3, padding=1))
            prev = w
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        out = {}
        for i in range(len(self.layers)):
            layer = self.layers[i]
            x = layer(x)
            out[str(i)] = x
        return out


class Decoder(nn.Module):
    def __init__(self, latent=8, out_ch=3):
        super().__init__()
        self.conv_in = nn.Conv2d(latent, 32, 3, padding=1)
        self.conv_out = nn.Conv2d(32, out_ch, 3, padding=1)

    def forward(self, z):
        sample = z
        sample = self.conv_in(sample)
        return self.conv_out(sample)
"""


def test_an_input_reached_through_an_alias_or_an_indexed_layer_is_told(workspace):
    workspace.write("aliased.py", ALIASED)
    report = workspace.check("aliased.py")
    assert not [f for f in report.findings if "cannot tell" in f.message], [f.message for f in report.findings]
    shapes = {s.name: s.input_shape for s in report.shapes if s.kind == "layer"}
    assert shapes["self.conv_in"][1] == 8
    conv = [s for s in report.shapes if s.kind == "layer" and s.name == "nn.Conv2d"]
    assert conv and conv[0].input_shape[1] == 3


PATCHES = """\
import torch
from torch import nn


class Patchify(nn.Module):
    # An einops-style layer: it keeps its pattern and its axis lengths.
    def __init__(self, p):
        super().__init__()
        self.pattern = "b c (h p1) (w p2) -> b (h w) (p1 p2 c)"
        self.axes_lengths = {"p1": p, "p2": p}
        self.p = p

    def forward(self, img):
        b, c, hh, ww = img.shape
        p = self.p
        if hh % p or ww % p:
            raise ValueError(f"can't divide axis of length {hh} in chunks of {p}")
        x = img.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (hh // p) * (ww // p), p * p * c)


class TinyViT(nn.Module):
    def __init__(self, *, patch_size, dim, num_classes, channels=3):
        super().__init__()
        patch_dim = channels * patch_size * patch_size
        self.to_patch_embedding = nn.Sequential(Patchify(patch_size), nn.LayerNorm(patch_dim),
                                                nn.Linear(patch_dim, dim))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, img):
        return self.head(self.to_patch_embedding(img).mean(dim=1))
"""


def test_a_patch_embeddings_image_input_comes_from_its_pattern_and_patch_width(workspace):
    workspace.write("vit.py", PATCHES)
    report = workspace.check("vit.py")
    assert not [f for f in report.findings if "cannot tell" in f.message or "rejects" in f.message], \
        [f.message for f in report.findings]
    embed = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.to_patch_embedding")
    assert embed.input_shape[1] == 3 and embed.input_shape[2] % 8 == 0 and embed.input_shape[2] > 28
    assert [f for f in report.findings if f.severity == "error"] == []


WRAPPED = """\
import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, scale, fn=None):
        super().__init__()
        self.scale = scale
        self.fn = fn if fn is not None else nn.Identity()

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs) * self.scale


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ff = Scale(0.5, nn.Linear(dim, dim * 2))
        self.out = nn.Linear(dim * 2, dim)

    def forward(self, x):
        return self.out(self.ff(x))
"""


def test_an_input_handed_on_by_a_star_args_wrapper_is_told_by_the_layer_it_wraps(workspace):
    workspace.write("wrapped.py", WRAPPED)
    report = workspace.check("wrapped.py")
    messages = [f.message for f in report.findings]
    assert not [f for f in report.findings if f.severity == "error"], messages
    # Block's `x` is what the wrapped nn.Linear takes: [B, dim], so both layers get shapes.
    assert not [m for m in messages if "`x` of Block" in m], messages
    shaped = {s.name for s in report.shapes if s.kind == "layer" and s.output_shape is not None}
    assert {"nn.Linear", "self.out"} <= shaped, shaped
    # Scale alone wraps nn.Identity (any shape): one clear note, not a TypeError from calling it empty.
    workspace.write("alone.py", WRAPPED.split("class Block")[0])
    alone = [f.message for f in workspace.check("alone.py").findings]
    assert not [m for m in alone if "TypeError" in m], alone
    assert [m for m in alone if m.startswith("cannot tell what `*args` of Scale.forward")], alone
