import torch
import torch.nn as nn

class SimpleEmbeddingModel(nn.Module):
    def __init__(self, vocab_size, embed_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.linear = nn.Linear(embed_dim, 256)  # Example: Linear projection 

    def forward(self, input_ids):
      embedded = self.embedding(input_ids)
      return self.linear(embedded)

vocab_size = 1000
embed_dim = 128
model = SimpleEmbeddingModel(vocab_size, embed_dim)

input_ids = torch.randint(0, vocab_size, (1, 10)) # Batch of 1, sequence length 10
output = model(input_ids)

embed_dim_to_check = model.linear.in_features
assert embed_dim == embed_dim_to_check, "embed_dim should match input dimension to linear layer"

print(f"Embed Dimension: {embed_dim}")
print(f"Input dimension to Linear Layer: {embed_dim_to_check}")
print(f"Output Shape: {output.shape}")
