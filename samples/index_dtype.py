import torch
import torch.nn as nn

vocab = nn.Embedding(100, 16)
ids = torch.tensor([[1.0, 5.0, 7.0]])
vectors = vocab(ids)
