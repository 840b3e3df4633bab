import torch
import torch.nn as nn

class MismatchedEmbeddingModel(nn.Module):
    def __init__(self, vocab_size, embed_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.projection = nn.Linear(embed_dim, embed_dim * 2) # Introduce a dimension change.
        self.linear = nn.Linear(embed_dim, 256) # Using the incorrect embed_dim

    def forward(self, input_ids):
        embedded = self.embedding(input_ids)
        projected = self.projection(embedded)
        return self.linear(projected)

vocab_size = 1000
embed_dim = 128
model = MismatchedEmbeddingModel(vocab_size, embed_dim)

input_ids = torch.randint(0, vocab_size, (1, 10)) # Batch of 1, sequence length 10
try:
    output = model(input_ids)
except RuntimeError as e:
    print(f"Error Message: {e}")


embed_dim_to_check = model.linear.in_features
print(f"Embed Dimension: {embed_dim}")
print(f"Input dimension to Linear Layer: {embed_dim_to_check}")

