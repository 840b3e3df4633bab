"""The per-layer rules: one entry per layer class. Adding a layer is one entry (and its case
in tests/test_rules.py); what an entry can say is in layer_rule.py.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from shapelens.probe.worker.attention import check_mha
from shapelens.probe.worker.embedding import check_embedding
from shapelens.probe.worker.layer_rule import ConfigCheck, Input, LayerRule, Spec
from shapelens.probe.worker.recurrent import check_rnn, tag_rnn_state
from shapelens.report.codes import EMBED_DIM_MISMATCH, INDEX_OUT_OF_RANGE

__all__ = ["RULES", "ConfigCheck", "Input", "LayerRule", "Spec", "container_first", "rule_for"]


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

_SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _divides_both(a: dict) -> bool:
    ins, outs, groups = a.get("in_channels"), a.get("out_channels"), a.get("groups")
    if not all(type(v) is int for v in (ins, outs, groups)):
        return True
    return groups > 0 and ins % groups == 0 and outs % groups == 0


_GROUPED = (ConfigCheck(
    param="groups",
    ok=_divides_both,
    message=lambda a: f"groups={a['groups']} must divide both in_channels={a['in_channels']} and "
    f"out_channels={a['out_channels']} (grouped convolution); torch rejects this configuration",
    repair=lambda a: _largest_divisor(math.gcd(a["in_channels"], a["out_channels"]), a["groups"]),
),)
_HEADS = (_divisible("d_model", "nhead", "each head gets d_model // nhead features"),)


def _seq(m: nn.Module, width: int) -> Spec:
    return Spec(("B", "T", width) if getattr(m, "batch_first", False) else ("T", "B", width))


def _rnn_out_to_param(m: nn.Module, width: int) -> int | None:
    directions = 2 if m.bidirectional else 1
    return width // directions if width % directions == 0 else None


def _rnn_hidden_spec(m: nn.Module) -> Spec | tuple[Spec, ...]:
    """h0 (and c0 for an LSTM): [num_layers * directions, B, hidden]; batch_first never applies."""
    layers = m.num_layers * (2 if m.bidirectional else 1)
    h = Spec((layers, "B", getattr(m, "proj_size", 0) or m.hidden_size))
    return (h, Spec((layers, "B", m.hidden_size))) if isinstance(m, nn.LSTM) else h


def _d_model(m: nn.Module) -> int:
    attn = getattr(m, "self_attn", None)
    if attn is not None:
        return attn.embed_dim
    return m.d_model


def _d_model_spec(m: nn.Module) -> Spec:
    batch_first = getattr(m, "batch_first", None)
    if batch_first is None:
        batch_first = getattr(getattr(m, "self_attn", None), "batch_first", False)
    return Spec(("B", "T", _d_model(m)) if batch_first else ("T", "B", _d_model(m)))


def _conv(cls: type[nn.Module], n: int) -> LayerRule:
    return LayerRule(cls, in_param="in_channels", in_width=lambda m: m.in_channels, in_axis=-(n + 1),
                     out_param="out_channels", out_axis=-(n + 1), min_dims=n + 1,
                     spec=lambda m: Spec(("B", m.in_channels, *_SPATIAL[n])), checks=_GROUPED,
                     widths=("in_channels", "out_channels"))


def _batch_norm(cls: type[nn.Module], n: int) -> LayerRule:
    # BatchNorm needs a batch: its channels are always axis 1 ([N, C] or [N, C, *spatial]).
    dims = ("B", "{C}", *_SPATIAL[n]) if n > 1 else ("B", "{C}")
    return LayerRule(cls, in_param="num_features", in_width=lambda m: m.num_features, in_axis=1,
                     min_dims=2 if n == 1 else n + 2, keeps_width=True,
                     spec=lambda m: Spec(tuple(m.num_features if d == "{C}" else d for d in dims)),
                     widths=("num_features",))


def _instance_norm(cls: type[nn.Module], n: int) -> LayerRule:
    # InstanceNorm takes unbatched inputs too, so its channel axis counts from the end.
    return LayerRule(cls, in_param="num_features", in_width=lambda m: m.num_features, in_axis=-(n + 1),
                     min_dims=n + 1, spec=lambda m: Spec(("B", m.num_features, *_SPATIAL[n])),
                     widths=("num_features",), keeps_width=True)


def _rnn(cls: type[nn.Module]) -> LayerRule:
    # nn.RNN/LSTM/GRU take `*args, **kwargs`; their documented order:
    signature = ("input_size", "hidden_size", "num_layers", *(("nonlinearity",) if cls is nn.RNN else ()), "bias",
                 "batch_first", "dropout", "bidirectional", *(("proj_size",) if cls is nn.LSTM else ()), "device",
                 "dtype")
    return LayerRule(cls, in_param="input_size", in_width=lambda m: m.input_size, min_dims=2, signature=signature,
                     out_param="hidden_size", out_to_param=_rnn_out_to_param,
                     spec=lambda m: _seq(m, m.input_size),
                     inputs=(Input(1, "hx", "hidden_size", lambda m: m.hidden_size, spec=_rnn_hidden_spec),),
                     widths=("input_size", "hidden_size"), check=check_rnn, on_output=tag_rnn_state)


def _cell(cls: type[nn.Module]) -> LayerRule:
    # nn.RNNCell/GRUCell/LSTMCell: one step, [B, input_size] (or unbatched); the state is
    # [B, hidden_size], an LSTM cell's a pair (h, c).
    def hidden(m: nn.Module) -> Spec | tuple[Spec, ...]:
        h = Spec(("B", m.hidden_size))
        return (h, h) if isinstance(m, nn.LSTMCell) else h

    return LayerRule(cls, in_param="input_size", in_width=lambda m: m.input_size, out_param="hidden_size",
                     spec=lambda m: Spec(("B", m.input_size)),
                     inputs=(Input(1, "hx", "hidden_size", lambda m: m.hidden_size, spec=hidden),),
                     widths=("input_size", "hidden_size"))


RULES: list[LayerRule] = [
    LayerRule(nn.Linear, in_param="in_features", in_width=lambda m: m.in_features, out_param="out_features",
              spec=lambda m: Spec(("B", m.in_features)),
              params=(("weight", 0, "out_features"), ("weight", 1, "in_features"), ("bias", 0, "out_features")),
              widths=("in_features", "out_features")),
    LayerRule(nn.Bilinear, in_param="in1_features", in_width=lambda m: m.in1_features, out_param="out_features",
              spec=lambda m: Spec(("B", m.in1_features)),
              inputs=(Input(1, "input2", "in2_features", lambda m: m.in2_features,
                            spec=lambda m: Spec(("B", m.in2_features))),),
              params=(("weight", 0, "out_features"), ("weight", 1, "in1_features"), ("weight", 2, "in2_features")),
              widths=("in1_features", "in2_features", "out_features")),
    LayerRule(nn.Embedding, code=INDEX_OUT_OF_RANGE, check=check_embedding, out_param="embedding_dim",
              spec=lambda m: Spec(("B", "T"), torch.long, m.num_embeddings), checks=(_padding_idx,),
              params=(("weight", 1, "embedding_dim"), ("weight", 0, "num_embeddings")), widths=("embedding_dim",)),
    LayerRule(nn.EmbeddingBag, code=INDEX_OUT_OF_RANGE, check=check_embedding, out_param="embedding_dim",
              spec=lambda m: Spec(("B", "T"), torch.long, m.num_embeddings), checks=(_padding_idx,),
              params=(("weight", 1, "embedding_dim"), ("weight", 0, "num_embeddings")), widths=("embedding_dim",)),
    LayerRule(nn.MultiheadAttention, code=EMBED_DIM_MISMATCH, check=check_mha, in_param="embed_dim", in_width=lambda m: m.embed_dim,
              out_param="embed_dim", min_dims=2, spec=lambda m: _seq(m, m.embed_dim),
              checks=(_divisible("embed_dim", "num_heads", "each head gets embed_dim // num_heads features"),),
              widths=("embed_dim",), keeps_width=True,
              # check_mha checks key and value itself; these say what a model's `memory` passed as them takes
              inputs=(Input(1, "key", "kdim", lambda m: m.kdim, spec=lambda m: _seq(m, m.kdim)),
                      Input(2, "value", "vdim", lambda m: m.vdim, spec=lambda m: _seq(m, m.vdim)))),
    LayerRule(nn.TransformerEncoderLayer, code=EMBED_DIM_MISMATCH, in_param="d_model", in_width=_d_model,
              out_param="d_model", min_dims=2, spec=_d_model_spec, checks=_HEADS, widths=("d_model",),
              keeps_width=True),
    LayerRule(nn.TransformerDecoderLayer, code=EMBED_DIM_MISMATCH, in_param="d_model", in_width=_d_model,
              out_param="d_model", min_dims=2, spec=_d_model_spec, checks=_HEADS, widths=("d_model",),
              keeps_width=True,
              inputs=(Input(1, "memory", "d_model", _d_model, spec=_d_model_spec),)),
    LayerRule(nn.Transformer, code=EMBED_DIM_MISMATCH, in_param="d_model", in_width=_d_model,
              out_param="d_model", min_dims=2, spec=_d_model_spec, checks=_HEADS, widths=("d_model",),
              keeps_width=True,
              inputs=(Input(1, "tgt", "d_model", _d_model, spec=_d_model_spec),)),
    _conv(nn.Conv1d, 1), _conv(nn.Conv2d, 2), _conv(nn.Conv3d, 3),
    _conv(nn.ConvTranspose1d, 1), _conv(nn.ConvTranspose2d, 2), _conv(nn.ConvTranspose3d, 3),
    _batch_norm(nn.BatchNorm1d, 1), _batch_norm(nn.BatchNorm2d, 2), _batch_norm(nn.BatchNorm3d, 3),
    _instance_norm(nn.InstanceNorm1d, 1), _instance_norm(nn.InstanceNorm2d, 2), _instance_norm(nn.InstanceNorm3d, 3),
    LayerRule(nn.GroupNorm, in_param="num_channels", in_width=lambda m: m.num_channels, in_axis=1, min_dims=2,
              spec=lambda m: Spec(("B", m.num_channels, "H", "W")),
              checks=(_divisible("num_channels", "num_groups", "channels are split into groups"),),
              widths=("num_channels",), keeps_width=True),
    LayerRule(nn.LayerNorm, in_param="normalized_shape", in_width=lambda m: tuple(m.normalized_shape),
              spec=lambda m: Spec(("B", "T", *m.normalized_shape)), widths=("normalized_shape",), keeps_width=True),
    _rnn(nn.RNN), _rnn(nn.LSTM), _rnn(nn.GRU),
    _cell(nn.RNNCell), _cell(nn.GRUCell), _cell(nn.LSTMCell),
]


@functools.cache
def rule_for(cls: type) -> LayerRule | None:
    for klass in cls.__mro__:
        for rule in RULES:
            if rule.cls is klass:
                return rule
    return None


def container_first(module: nn.Module) -> nn.Module | None:
    """The first layer an input reaches in a container (Sequential, ModuleList, ModuleDict)."""
    if isinstance(module, (nn.Sequential, nn.ModuleList)) and len(module):
        return module[0]
    if isinstance(module, nn.ModuleDict) and len(module):
        return next(iter(module.values()))
    return None
