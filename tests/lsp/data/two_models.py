"""Two models that share nothing but imports: an edit inside one leaves the other's probe valid."""

import torch
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.inp = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, x):
        return self.out(torch.relu(self.inp(x)))


class Head(nn.Module):
    def __init__(self, dim=16, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(dim, 64)
        self.norm = nn.LayerNorm(64)
        self.fc2 = nn.Linear(64, classes)

    def forward(self, x):
        h = self.norm(self.fc1(x))
        return self.fc2(h)
