"""Stand-ins for well-known helpers of packages the probe's interpreter may lack, or that cannot
run in a probe (tensor-parallel layers need a process group).

Only helpers whose effect on shapes is known: `DropPath` and weight initialisers leave their
input as it is, `to_2tuple` pairs a number, a model registry's decorator returns the class, and
fairscale/Megatron-style `ColumnParallelLinear`, `RowParallelLinear` and `ParallelEmbedding` are
their `nn` equivalents (the shapes of a single process: no sharding).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth: the identity at inference, whatever its arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ColumnParallelLinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, *args: Any, **kwargs: Any) -> None:
        super().__init__(in_features, out_features, bias=bool(bias))


class RowParallelLinear(ColumnParallelLinear):
    pass


class ParallelEmbedding(nn.Embedding):
    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *args: Any,
                 **kwargs: Any) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)


class Mlp(nn.Module):
    """timm's two-layer MLP: in_features -> hidden_features -> out_features."""

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None,
                 act_layer: Any = nn.GELU, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        hidden, out = hidden_features or in_features, out_features or in_features
        # `act_layer=lambda: nn.GELU(approximate="tanh")` (DiT): built, as timm builds it;
        # `use_conv=True`: 1x1 convolutions over [B, C, H, W], as timm's
        layer = (lambda i, o: nn.Conv2d(i, o, 1)) if kwargs.get("use_conv") else nn.Linear
        self.fc1, self.act, self.fc2 = layer(in_features, hidden), act_layer(), layer(hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _keep(tensor: Any = None, *args: Any, **kwargs: Any) -> Any:
    return tensor  # an initialiser: the tensor as it was (its values do not matter for shapes)


def _pair(x: Any) -> Any:
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def _ntuple(n: int):
    return lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x,) * n


def _register(fn: Any = None, *args: Any, **kwargs: Any) -> Any:
    """`@register_model` and `@register_model(...)`: the decorated function itself."""
    return fn if callable(fn) else (lambda f: f)


STANDINS: dict[str, Any] = {
    "DropPath": DropPath, "StochasticDepth": DropPath, "DropBlock2d": DropPath,
    "trunc_normal_": _keep, "lecun_normal_": _keep, "variance_scaling_": _keep, "normal_init": _keep,
    "constant_init": _keep, "kaiming_init": _keep, "xavier_init": _keep,
    "to_2tuple": _pair, "pair": _pair, "to_ntuple": _ntuple,
    "register_model": _register,
    "ColumnParallelLinear": ColumnParallelLinear, "RowParallelLinear": RowParallelLinear,
    "ParallelEmbedding": ParallelEmbedding, "VocabParallelEmbedding": ParallelEmbedding,
    "Mlp": Mlp,
    # A single process: world size 1, rank 0 (fairscale's and Megatron's names).
    "get_model_parallel_world_size": lambda *a, **k: 1, "get_model_parallel_rank": lambda *a, **k: 0,
    "get_tensor_model_parallel_world_size": lambda *a, **k: 1, "get_tensor_model_parallel_rank": lambda *a, **k: 0,
}
# Replaced even when their package imports: they need a process group the probe has not.
PARALLEL_PACKAGES = ("fairscale", "megatron", "apex")
PARALLEL = frozenset({"ColumnParallelLinear", "RowParallelLinear", "ParallelEmbedding", "VocabParallelEmbedding"})


def parallel_stand_in(obj: Any) -> Any | None:
    """A tensor-parallel layer class of an installed package -> its nn equivalent."""
    name = getattr(obj, "__name__", "")
    module = getattr(obj, "__module__", "") or ""
    if name in PARALLEL and module.split(".")[0] in PARALLEL_PACKAGES:
        return STANDINS[name]
    return None
