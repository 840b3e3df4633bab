"""Text classification with a Transformer encoder: token embedding scaled by sqrt(d_model),
sinusoidal positions, nn.TransformerEncoder (batch first), mean pooling and a linear head.
Hyper-parameters come from a NamedTuple."""

import math
from typing import NamedTuple

import torch
import torch.nn as nn


class HParams(NamedTuple):
    vocab_size: int = 20000
    d_model: int = 128
    nhead: int = 8
    dim_feedforward: int = 512
    num_layers: int = 3
    num_classes: int = 4
    dropout: float = 0.1
    max_len: int = 512


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[:, : x.size(1)]
        return self.dropout(x)


class TransformerClassifier(nn.Module):
    def __init__(self, hp: HParams):
        super().__init__()
        self.d_model = hp.d_model
        self.embedding = nn.Embedding(hp.vocab_size, hp.d_model, padding_idx=0)
        self.pos_encoder = PositionalEncoding(hp.d_model, hp.dropout, hp.max_len)
        layer = nn.TransformerEncoderLayer(hp.d_model, hp.nhead, hp.dim_feedforward, hp.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, hp.num_layers)
        self.norm = nn.LayerNorm(hp.d_model)
        self.head = nn.Linear(hp.d_model, hp.num_classes)

    def forward(self, tokens, padding_mask=None):
        x = self.embedding(tokens) * math.sqrt(self.d_model)
        x = self.pos_encoder(x)
        x = self.encoder(x, src_key_padding_mask=padding_mask)
        pooled = self.norm(x.mean(dim=1))
        return self.head(pooled)
