import torch
import torch.nn as nn

# Vocabulary size of 1000 words, embedding dimension of 32
embedding_layer = nn.Embedding(num_embeddings=1000, embedding_dim=32)

# Input: index of a word in the vocabulary (e.g., word at index 5)
input_index = torch.tensor([5])

# Get the corresponding embedding vector
embedding = embedding_layer(input_index)
print(embedding.shape) # Output: torch.Size([1, 32])
