"""A library-style model: required keyword widths, and nothing in the workspace builds it."""

import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, *, dim, depth, mlp_dim, num_classes):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(dim, dim) for _ in range(depth)])
        self.mlp = nn.Linear(dim, mlp_dim)
        self.head = nn.Linear(mlp_dim, num_classes)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.mlp(x))
