"""The per-layer rules: one entry per layer class. Adding a layer is one entry.

A rule says which constructor argument declares the input width a layer expects (and at which
axis of the input it is read), which argument declares the width of its output (so a later
mismatch can name where a width came from), what input to feed a layer when a model's input
must be inferred, and which constructor arguments torch would reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class Spec:
    """An input to make up: dims are ints or symbolic names (B, T, H, W, L)."""

    dims: tuple[int | str, ...]
    dtype: torch.dtype = torch.float32
    high: int | None = None  # integer inputs are drawn from [0, high)


@dataclass(frozen=True)
class ConfigCheck:
    """A constructor argument torch rejects: `ok(args)` is False -> diagnostic on `param`;
    `repair(args)` gives the value the probe continues with (and the fix, if `fixable`)."""

    param: str
    ok: Callable[[dict], bool]
    message: Callable[[dict], str]
    repair: Callable[[dict], object]
    fixable: bool = True


@dataclass(frozen=True)
class LayerRule:
    cls: type[nn.Module]
    code: str = "feature-mismatch"
    in_param: str | None = None  # constructor argument declaring the input width
    in_width: Callable[[nn.Module], int | tuple] | None = None
    in_axis: int = -1  # axis of the first input that must equal it
    out_param: str | None = None  # constructor argument declaring the output width
    out_axis: int = -1
    min_dims: int = 1  # inputs with fewer dims are left to torch's own error
    spec: Callable[[nn.Module], Spec | None] | None = None
    checks: tuple[ConfigCheck, ...] = field(default_factory=tuple)


def _largest_divisor(n: int, at_most: int) -> int:
    for d in range(max(min(at_most, n), 1), 0, -1):
        if n % d == 0:
            return d
    return 1


def _divisible(total: str, parts: str, what: str) -> ConfigCheck:
    return ConfigCheck(
        param=parts,
        ok=lambda a: not isinstance(a.get(total), int) or not isinstance(a.get(parts), int)
        or a[parts] > 0 and a[total] % a[parts] == 0,
        message=lambda a: f"{total}={a[total]} is not divisible by {parts}={a[parts]} ({what}); "
        f"torch rejects this configuration",
        repair=lambda a: _largest_divisor(a[total], a[parts]),
    )


_padding_idx = ConfigCheck(
    param="padding_idx",
    ok=lambda a: a.get("padding_idx") is None or not isinstance(a.get("num_embeddings"), int)
    or -a["num_embeddings"] <= a["padding_idx"] < a["num_embeddings"],
    message=lambda a: f"padding_idx={a['padding_idx']} is outside the table of num_embeddings="
    f"{a['num_embeddings']} rows (valid: {-a['num_embeddings']}..{a['num_embeddings'] - 1})",
    repair=lambda a: None,
    fixable=False,
)


def _conv_spec(n: int) -> Callable[[nn.Module], Spec]:
    spatial = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}[n]
    return lambda m: Spec(("B", m.in_channels, *spatial))


def _rnn_spec(m: nn.Module) -> Spec:
    return Spec(("B", "T", m.input_size) if m.batch_first else ("T", "B", m.input_size))


def _mha_spec(m: nn.Module) -> Spec:
    return Spec(("B", "T", m.embed_dim) if m.batch_first else ("T", "B", m.embed_dim))


def _d_model_spec(m: nn.Module) -> Spec | None:
    d_model = _transformer_width(m)
    if d_model is None:
        return None
    batch_first = getattr(m, "batch_first", None)
    if batch_first is None:
        attn = getattr(m, "self_attn", None)
        batch_first = getattr(attn, "batch_first", False)
    return Spec(("B", "T", d_model) if batch_first else ("T", "B", d_model))


def _transformer_width(m: nn.Module) -> int | None:
    attn = getattr(m, "self_attn", None)
    if attn is not None:
        return attn.embed_dim
    layers = getattr(m, "layers", None)
    if layers is not None and len(layers):
        return _transformer_width(layers[0])
    return getattr(m, "d_model", None)


RULES: list[LayerRule] = [
    LayerRule(nn.Linear, in_param="in_features", in_width=lambda m: m.in_features, out_param="out_features",
              spec=lambda m: Spec(("B", m.in_features))),
    LayerRule(nn.Bilinear, in_param="in1_features", in_width=lambda m: m.in1_features, out_param="out_features",
              spec=lambda m: Spec(("B", m.in1_features))),
    LayerRule(nn.Embedding, code="index-out-of-range", out_param="embedding_dim",
              spec=lambda m: Spec(("B", "T"), torch.long, m.num_embeddings), checks=(_padding_idx,)),
    LayerRule(nn.EmbeddingBag, code="index-out-of-range", out_param="embedding_dim",
              spec=lambda m: Spec(("B", "T"), torch.long, m.num_embeddings), checks=(_padding_idx,)),
    LayerRule(nn.MultiheadAttention, code="embed-dim-mismatch", in_param="embed_dim", in_width=lambda m: m.embed_dim,
              out_param="embed_dim", min_dims=2, spec=_mha_spec,
              checks=(_divisible("embed_dim", "num_heads", "each head gets embed_dim // num_heads features"),)),
    LayerRule(nn.TransformerEncoderLayer, code="embed-dim-mismatch", in_param="d_model",
              in_width=lambda m: m.self_attn.embed_dim, out_param="d_model", min_dims=2, spec=_d_model_spec,
              checks=(_divisible("d_model", "nhead", "each head gets d_model // nhead features"),)),
    LayerRule(nn.TransformerDecoderLayer, code="embed-dim-mismatch", in_param="d_model",
              in_width=lambda m: m.self_attn.embed_dim, out_param="d_model", min_dims=2, spec=_d_model_spec,
              checks=(_divisible("d_model", "nhead", "each head gets d_model // nhead features"),)),
    LayerRule(nn.Conv1d, in_param="in_channels", in_width=lambda m: m.in_channels, in_axis=-2, out_param="out_channels",
              out_axis=-2, min_dims=2, spec=_conv_spec(1),
              checks=(_divisible("in_channels", "groups", "grouped convolution"),)),
    LayerRule(nn.Conv2d, in_param="in_channels", in_width=lambda m: m.in_channels, in_axis=-3, out_param="out_channels",
              out_axis=-3, min_dims=3, spec=_conv_spec(2),
              checks=(_divisible("in_channels", "groups", "grouped convolution"),)),
    LayerRule(nn.Conv3d, in_param="in_channels", in_width=lambda m: m.in_channels, in_axis=-4, out_param="out_channels",
              out_axis=-4, min_dims=4, spec=_conv_spec(3),
              checks=(_divisible("in_channels", "groups", "grouped convolution"),)),
    LayerRule(nn.ConvTranspose1d, in_param="in_channels", in_width=lambda m: m.in_channels, in_axis=-2,
              out_param="out_channels", out_axis=-2, min_dims=2, spec=_conv_spec(1)),
    LayerRule(nn.ConvTranspose2d, in_param="in_channels", in_width=lambda m: m.in_channels, in_axis=-3,
              out_param="out_channels", out_axis=-3, min_dims=3, spec=_conv_spec(2)),
    LayerRule(nn.ConvTranspose3d, in_param="in_channels", in_width=lambda m: m.in_channels, in_axis=-4,
              out_param="out_channels", out_axis=-4, min_dims=4, spec=_conv_spec(3)),
    LayerRule(nn.BatchNorm1d, in_param="num_features", in_width=lambda m: m.num_features, in_axis=1, min_dims=2,
              spec=lambda m: Spec(("B", m.num_features))),
    LayerRule(nn.BatchNorm2d, in_param="num_features", in_width=lambda m: m.num_features, in_axis=1, min_dims=4,
              spec=lambda m: Spec(("B", m.num_features, "H", "W"))),
    LayerRule(nn.BatchNorm3d, in_param="num_features", in_width=lambda m: m.num_features, in_axis=1, min_dims=5,
              spec=lambda m: Spec(("B", m.num_features, "D", "H", "W"))),
    LayerRule(nn.GroupNorm, in_param="num_channels", in_width=lambda m: m.num_channels, in_axis=1, min_dims=2,
              checks=(_divisible("num_channels", "num_groups", "channels are split into groups"),)),
    LayerRule(nn.LayerNorm, in_param="normalized_shape", in_width=lambda m: tuple(m.normalized_shape),
              spec=lambda m: Spec(("B", "T", *m.normalized_shape))),
    LayerRule(nn.RNN, in_param="input_size", in_width=lambda m: m.input_size, min_dims=2, spec=_rnn_spec),
    LayerRule(nn.LSTM, in_param="input_size", in_width=lambda m: m.input_size, min_dims=2, spec=_rnn_spec),
    LayerRule(nn.GRU, in_param="input_size", in_width=lambda m: m.input_size, min_dims=2, spec=_rnn_spec),
]


def rule_for(cls: type) -> LayerRule | None:
    for klass in cls.__mro__:
        for rule in RULES:
            if rule.cls is klass:
                return rule
    return None


def container_first(module: nn.Module) -> nn.Module | None:
    """The first layer an input reaches in a container (Sequential, ModuleList)."""
    if isinstance(module, (nn.Sequential, nn.ModuleList)) and len(module):
        return module[0]
    return None
