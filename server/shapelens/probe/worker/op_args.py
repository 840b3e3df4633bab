"""What every op check shares: the Problem it returns and how it reads an op's arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Label = Callable[[torch.Tensor], str]


@dataclass
class Problem:
    message: str
    # (tensor, axis, size that axis would need): the widths to trace back to their producers
    sides: list[tuple[torch.Tensor, int, int]] = field(default_factory=list)


def dims_text(t: torch.Tensor) -> str:
    return "(" + "x".join(str(int(d)) for d in t.shape) + ")"


def arg(args: tuple, kwargs: dict, i: int, name: str, default=None):
    if name in kwargs:
        return kwargs[name]
    if name == "dim" and "axis" in kwargs:  # numpy's name, which torch takes too (`th.cat(results, axis=-1)`)
        return kwargs["axis"]
    return args[i] if i < len(args) else default


def is_tensor(x) -> bool:
    return isinstance(x, torch.Tensor)


def norm_dim(d: int, n: int) -> int | None:
    return d + n if -n <= d < 0 else (d if 0 <= d < n else None)


def range_text(n: int) -> str:
    return f"{-n}..{n - 1}" if n else "none"

