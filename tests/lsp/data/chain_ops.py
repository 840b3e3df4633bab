"""A width goes wrong through view, permute, flatten and cat before the layer that rejects it."""

import torch
import torch.nn as nn


class Mixer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(12, 24)
        self.out = nn.Linear(24, 10)

    def forward(self, x):
        h = self.inp(x)
        h = h.view(4, 6, 4)
        h = h.permute(0, 2, 1)
        h = h.flatten(1)
        h = torch.cat([h, h], dim=1)
        return self.out(h)


model = Mixer()
x = torch.randn(4, 12)
y = model(x)
