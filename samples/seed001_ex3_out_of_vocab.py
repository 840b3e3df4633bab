import torch
import torch.nn as nn

embedding_layer = nn.Embedding(num_embeddings=2000, embedding_dim=100, padding_idx=0)

# Input containing an out-of-vocabulary index (2001)
input_indices = torch.tensor([100, 2001, 500])

# Handle out of vocabulary tokens
embeddings = embedding_layer(input_indices)

# Observe the handling of padding index
print(embeddings)
