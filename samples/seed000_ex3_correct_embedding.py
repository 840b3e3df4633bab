import torch
import torch.nn as nn

class CorrectEmbeddingModel(nn.Module):
    def __init__(self, vocab_size, embed_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.projection = nn.Linear(embed_dim, embed_dim * 2)
        self.linear = nn.Linear(embed_dim * 2, 256) # Ensure input dim matches output of projection layer

    def forward(self, input_ids):
      embedded = self.embedding(input_ids)
      projected = self.projection(embedded)
      return self.linear(projected)

vocab_size = 1000
embed_dim = 128
model = CorrectEmbeddingModel(vocab_size, embed_dim)

input_ids = torch.randint(0, vocab_size, (1, 10)) # Batch of 1, sequence length 10
output = model(input_ids)


embed_dim_to_check = model.linear.in_features
print(f"Embed Dimension: {embed_dim}")
print(f"Input dimension to Linear Layer: {embed_dim_to_check}")
print(f"Output Shape: {output.shape}")
