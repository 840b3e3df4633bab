"""Training script for the MNIST convnet of mnist_cnn.py: the model comes from the other file,
the batch is made here, the loop never runs under the probe."""

import torch
import torch.nn.functional as F
import torch.optim as optim

from mnist_cnn import Net

batch_size = 64
lr = 1.0

model = Net()
optimizer = optim.Adadelta(model.parameters(), lr=lr)

data = torch.randn(batch_size, 1, 28, 28)
target = torch.randint(0, 10, (batch_size,))
output = model(data)
loss = F.nll_loss(output, target)

for epoch in range(1, 15):
    optimizer.zero_grad()
    loss = F.nll_loss(model(data), target)
    loss.backward()
    optimizer.step()
