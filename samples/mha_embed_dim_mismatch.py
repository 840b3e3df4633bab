import torch
import torch.nn as nn


class AttentionBlock(nn.Module):
    def __init__(self, in_dim, embed_dim, num_heads):
        super().__init__()
        self.proj = nn.Linear(in_dim, in_dim * 2)
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)

    def forward(self, x):
        query = self.proj(x)
        attended, _ = self.attn(query, query, query)
        return attended


block = AttentionBlock(in_dim=128, embed_dim=128, num_heads=8)
tokens = torch.randn(2, 16, 128)
out = block(tokens)
