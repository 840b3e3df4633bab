import torch
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, vocab_size=1000, d_model=100, heads=8):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)

    def forward(self, ids):
        x = self.embed(ids)
        out, _ = self.attn(x, x, x)
        return out
