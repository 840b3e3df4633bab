# A deliberately slow probe (forward sleeps) with a mismatch, for the language server tests.
import time

import torch.nn as nn


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.head = nn.Linear(8, 2)

    def forward(self, x):  # shapelens: x=float[2, 8]
        time.sleep(1.0)
        return self.head(self.fc(x))
