# Scaled dot-product attention and a GRU tagger written out by hand at module level, the way a
# quick experiment in a notebook looks: explicit matmuls, views and permutes.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

B, T, D, H = 4, 12, 64, 8
vocab = 1000
num_tags = 17

tokens = torch.randint(0, vocab, (B, T))
embed = nn.Embedding(vocab, D)
x = embed(tokens)

w_q = nn.Linear(D, D)
w_k = nn.Linear(D, D)
w_v = nn.Linear(D, D)
q = w_q(x).view(B, T, H, D // H).transpose(1, 2)
k = w_k(x).view(B, T, H, D // H).transpose(1, 2)
v = w_v(x).view(B, T, H, D // H).transpose(1, 2)
scores = q @ k.transpose(-2, -1) / math.sqrt(D // H)
weights = F.softmax(scores, dim=-1)
context = (weights @ v).transpose(1, 2).reshape(B, T, D)

norm = nn.LayerNorm(D)
context = norm(context + x)

gru = nn.GRU(D, 32, batch_first=True, bidirectional=True)
states, last = gru(context)
tagger = nn.Linear(2 * 32, num_tags)
tag_logits = tagger(states)

tags = torch.randint(0, num_tags, (B, T))
loss = F.cross_entropy(tag_logits.reshape(-1, num_tags), tags.reshape(-1))
log_probs = F.log_softmax(tag_logits, dim=-1)
nll = F.nll_loss(log_probs.permute(0, 2, 1), tags)
