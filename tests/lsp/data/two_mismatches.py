# Two independent fixable mismatches, for the language server's fix-all test.
import torch
import torch.nn as nn

table = nn.Embedding(num_embeddings=100, embedding_dim=8)
ids = torch.tensor([3, 150])
rows = table(ids)

proj = nn.Linear(16, 4)
out = proj(rows)
