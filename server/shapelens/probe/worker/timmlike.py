"""Stand-ins for timm's vision-transformer parts (`PatchEmbed`, `Attention`, `Block`), used only
when a name imported from `timm` fails to import: DiT, mae, DeiT and many ViT-family repositories
build their models from them, and without timm every such class was left unprobed.

Each takes timm's constructor arguments (extra or retired ones, `qk_scale` of timm 0.3, are
accepted and ignored) and gives timm's shapes and the attributes callers read (`num_patches`,
`patch_size`, `grid_size`, `proj`). Written from timm's documented interface, not its code.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shapelens.probe.worker.standins import STANDINS, DropPath, Mlp, _pair


class PatchEmbed(nn.Module):
    """Image to patch tokens: [B, C, H, W] -> [B, (H/p)*(W/p), embed_dim] (or [B, D, H/p, W/p])."""

    def __init__(self, img_size: Any = 224, patch_size: Any = 16, in_chans: int = 3, embed_dim: int = 768,
                 norm_layer: Any = None, flatten: bool = True, output_fmt: str | None = None, *args: Any,
                 bias: bool = True, strict_img_size: bool = True, **kwargs: Any) -> None:
        super().__init__()
        self.patch_size = _pair(patch_size)
        self.img_size = _pair(img_size) if img_size is not None else None  # None: any size (dynamic)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1]) \
            if self.img_size else None
        self.num_patches = self.grid_size[0] * self.grid_size[1] if self.grid_size else None
        self.output_fmt = output_fmt if output_fmt in ("NCHW", "NHWC") else None  # given: no flattening
        self.flatten = flatten and self.output_fmt is None
        self.strict_img_size = strict_img_size and self.img_size is not None
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size, bias=bias)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.strict_img_size and (height, width) != self.img_size:
            # timm asserts it too; the probe's size search tries the size this names
            raise ValueError(f"Input image size ({height}*{width}) doesn't match model "
                             f"({self.img_size[0]}*{self.img_size[1]}).")
        x = self.proj(x)
        if self.flatten:
            x = x.flatten(2).transpose(1, 2)
        elif self.output_fmt == "NHWC":
            x = x.permute(0, 2, 3, 1)
        return self.norm(x)


class Attention(nn.Module):
    """Multi-head self-attention over [B, N, dim] tokens, qkv in one Linear."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, qk_norm: bool = False,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, norm_layer: Any = nn.LayerNorm, *args: Any,
                 **kwargs: Any) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) should be divisible by num_heads ({num_heads})")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=bool(qkv_bias))
        self.q_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v, attn_mask=attn_mask)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(batch, tokens, channels)))


class Block(nn.Module):
    """Pre-norm transformer block: attention and MLP, each residual."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False, *args: Any,
                 qk_norm: bool = False, drop_path: float = 0.0, act_layer: Any = nn.GELU,
                 norm_layer: Any = nn.LayerNorm, **kwargs: Any) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm, norm_layer=norm_layer)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask=attn_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


# Generic names: stood in only for a failed import from timm, whose meaning of them is known.
TIMM_STANDINS: dict[str, Any] = {"PatchEmbed": PatchEmbed, "Attention": Attention, "Block": Block}
# Stand-ins with layers of their own, whose shapes the report shows: a note says they stand in.
MODELLED = frozenset({Mlp, PatchEmbed, Attention, Block})


def stand_in(name: str) -> Any | None:
    """The stand-in for a name that failed to import (`timm.models.layers.DropPath` -> DropPath;
    `timm.models.vision_transformer.Block` -> Block, a generic name only from timm)."""
    head, _, last = name.rpartition(".")
    if head.split(".")[0] == "timm" and last in TIMM_STANDINS:
        return TIMM_STANDINS[last]
    return STANDINS.get(last)
