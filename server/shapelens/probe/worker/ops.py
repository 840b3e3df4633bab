"""Shape checks for the common tensor ops, run before torch runs the op.

Each check works out from the shapes what the op needs and, when the inputs do not fit, says so
in terms of the user's tensors ("(10x256) @ (128x64): inner dims 256 and 128 differ") instead
of leaving it to torch's kernel message. A check also names the axes whose sizes disagree
(`sides`), so the caller can trace those widths back to the constructor arguments that made
them. A check that is unsure returns None and lets torch decide.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from shapelens.probe.worker.op_args import Label, Problem, arg, is_tensor
from shapelens.probe.worker.ops_nn import SYMBOLS, broadcast, conv, masked_fill, nll, pool, same_shape_loss, setitem
from shapelens.probe.worker.ops_shapes import (
    bmm,
    cat,
    einsum,
    flatten,
    linear,
    matmul,
    mm,
    permute,
    softmax,
    split,
    stack,
    transpose,
    view,
)

__all__ = ["CHECKS", "Label", "Problem", "check", "meta_result"]

CHECKS: dict[str, Callable] = {
    "matmul": matmul, "__matmul__": matmul, "__rmatmul__": lambda a, k, l: matmul(a[::-1], k, l),
    "bmm": bmm, "mm": mm, "linear": linear, "einsum": einsum,
    "cat": cat, "concat": lambda a, k, l: cat(a, k, l, "concat"), "concatenate": lambda a, k, l: cat(a, k, l, "concatenate"),
    "stack": stack, "split": split, "split_with_sizes": split,
    "view": view, "reshape": lambda a, k, l: view(a, k, l, "reshape"),
    "flatten": flatten, "permute": permute, "transpose": transpose, "swapaxes": transpose, "swapdims": transpose,
    "softmax": softmax, "log_softmax": lambda a, k, l: softmax(a, k, l, "log_softmax"),
    "conv1d": conv(1), "conv2d": conv(2), "conv3d": conv(3),
    "conv_transpose1d": conv(1, True), "conv_transpose2d": conv(2, True), "conv_transpose3d": conv(3, True),
    "max_pool1d": pool(1, "max"), "max_pool2d": pool(2, "max"), "max_pool3d": pool(3, "max"),
    "avg_pool1d": pool(1, "avg"), "avg_pool2d": pool(2, "avg"), "avg_pool3d": pool(3, "avg"),
    "nll_loss": nll("nll_loss"), "cross_entropy": nll("cross_entropy"),
    **{n: same_shape_loss(n) for n in ("binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
                                       "l1_loss", "smooth_l1_loss", "huber_loss")},
    "__setitem__": setitem,
    "masked_fill": masked_fill, "masked_fill_": masked_fill,
    **{op: broadcast(op) for op in SYMBOLS},
    **{f"{op}_": broadcast(f"{op}_") for op in ("add", "sub", "mul", "div")},
    **{f"__{op}__": broadcast(op) for op in ("add", "sub", "mul", "truediv", "radd", "rmul")},
}


def check(name: str, args: tuple, kwargs: dict, label: Label) -> Problem | None:
    fn = CHECKS.get(name)
    if fn is None:
        return None
    try:
        return fn(args, kwargs or {}, label)
    except Exception:  # noqa: BLE001 — a check that trips over odd arguments leaves it to torch
        return None



# -- shape-only results on the meta device ---------------------------------------------------------
# fastmeta.py has the shape-only results of the most common ops; these are the ones it lacks
# that convnets run at every layer (BatchNorm in training mode takes ~3 ms on the meta device,
# InstanceNorm ~7 ms). They run after the checks above passed; anything unusual goes to torch.
_SAME_SHAPE = frozenset({"dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
                         "hardtanh", "relu6", "selu", "celu", "hardsigmoid", "silu", "gelu"})


def meta_result(name: str, args: tuple, kwargs: dict) -> torch.Tensor | None:
    x = args[0] if args else kwargs.get("input")
    if not is_tensor(x) or x.device.type != "meta" or not x.dtype.is_floating_point:
        return None
    if name in _SAME_SHAPE:
        inplace = kwargs.get("inplace", False) or any(a is True for a in args[1:])
        return None if inplace else torch.empty_like(x)
    if name in ("batch_norm", "instance_norm"):
        stats = [arg(args, kwargs, i, n) for i, n in ((1, "running_mean"), (2, "running_var"), (3, "weight"),
                                                         (4, "bias"))]
        training = arg(args, kwargs, 5, "training" if name == "batch_norm" else "use_input_stats", False)
        if x.dim() < 2 or any(is_tensor(t) and t.shape != (x.shape[1],) for t in stats):
            return None
        if name == "batch_norm" and training and x.numel() == x.shape[1]:
            return None  # one value per channel: torch's own error says it
        return torch.empty_like(x)
    if name == "group_norm":
        groups = arg(args, kwargs, 1, "num_groups")
        params = [arg(args, kwargs, 2, "weight"), arg(args, kwargs, 3, "bias")]
        if x.dim() < 2 or not isinstance(groups, int) or groups <= 0 or x.shape[1] % groups or \
                any(is_tensor(t) and t.shape != (x.shape[1],) for t in params):
            return None
        return torch.empty_like(x)
    return None
