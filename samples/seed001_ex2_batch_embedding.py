import torch
import torch.nn as nn

embedding_layer = nn.Embedding(num_embeddings=5000, embedding_dim=64)

# Input: Indices of multiple words (batch processing)
input_indices = torch.tensor([[10, 25, 500], [1, 450, 3000]])

# Get the embeddings for all words in the batch
embeddings = embedding_layer(input_indices)
print(embeddings.shape) # Output: torch.Size([2, 3, 64])
