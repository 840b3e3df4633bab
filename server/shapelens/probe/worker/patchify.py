"""The input of a patch embedding that starts with an einops layer: `nn.Sequential(Rearrange('b c
(h p1) (w p2) -> b (h w) (p1 p2 c)', p1=8, p2=8), nn.LayerNorm(patch_dim), nn.Linear(...))`.
The layer after the Rearrange says how wide a patch is (`patch_dim`); with the patch sides the
pattern names, that gives the channels: the input is `[B, C, H, W]`, its sides searched like any
image's. Read from the layer objects only (their `pattern` and `axes_lengths`, as einops layers
keep them). The same patterns as function calls in a forward (`rearrange(img, 'b c (h p1) (w p2)
-> ...', p1=p, p2=p)` before the patch layer) are read by image_spec."""

from __future__ import annotations

import re

from torch import nn

from shapelens.probe.worker.layer_rule import Spec

_GROUP = re.compile(r"\(([^)]*)\)|(\S+)")


def _groups(side: str) -> list[list[str]]:
    return [(m.group(1) or m.group(2)).split() for m in _GROUP.finditer(side)]


def _in_width(layer: nn.Module) -> int | None:
    if isinstance(layer, nn.Linear):
        return layer.in_features
    if isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1:
        return int(layer.normalized_shape[0])
    return None


def patch_spec(container: nn.Module) -> Spec | None:
    """`[B, C, H, W]` for a Sequential whose first layer is an einops Rearrange of an image into
    patches and whose second takes the patch width; None for anything else."""
    if not isinstance(container, nn.Sequential) or len(container) < 2:
        return None
    first, second = container[0], container[1]
    pattern, lengths = getattr(first, "pattern", None), getattr(first, "axes_lengths", None)
    if not isinstance(pattern, str) or "->" not in pattern or not isinstance(lengths, dict):
        return None  # (einops layers, and look-alikes, keep both)
    width = _in_width(second)
    return image_spec(pattern, lengths, width) if width is not None else None


def image_spec(pattern: str, lengths: dict, width: int) -> Spec | None:
    """The image an einops patch pattern takes, when what it gives is `width` wide per patch."""
    lengths = {k: v for k, v in lengths.items() if isinstance(v, int)}
    left, right = (_groups(s) for s in pattern.split("->", 1))
    if len(left) != 4 or not right:
        return None
    per_patch = right[-1]
    unknown = [n for n in per_patch if n not in lengths]
    known = 1
    for n in per_patch:
        known *= int(lengths.get(n, 1))
    if len(unknown) != 1 or width % known:
        return None
    channel = unknown[0]
    dims: list[int | str] = []
    sides = iter(("H", "W"))
    for group in left:
        if group == [channel]:
            dims.append(width // known)
        elif len(group) == 1:
            dims.append("B")
        elif sum(n not in lengths for n in group) == 1:
            side = next(sides, None)
            if side is None:
                return None
            dims.append(side)
        else:
            return None
    return Spec(tuple(dims)) if dims.count("B") == 1 and dims[0] == "B" else None


def keeps_last(pattern: str) -> bool:
    """`'b n d -> (b n) d'`: the last axis comes out as it went in."""
    if "->" not in pattern:
        return False
    left, right = (_groups(s) for s in pattern.split("->", 1))
    return bool(left and right) and len(left[-1]) == 1 and right[-1] == left[-1] and left[-1][0] not in ("...", "…")
