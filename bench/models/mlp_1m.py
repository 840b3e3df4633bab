"""A ~1M-parameter model, the small end of the memory-flatness figure."""

import torch.nn as nn


class SmallMLP(nn.Module):
    def __init__(self, d_in=512, hidden=1024, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden // 2)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden // 2, classes)

    def forward(self, x):
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


MODEL = SmallMLP
MODEL_ARGS = ()
INPUT = ("float", (1, 512), None)
