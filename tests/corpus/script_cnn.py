# A notebook-style experiment: layers and tensors built at module level, no classes.
import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 16
num_classes = 10

images = torch.randn(batch_size, 3, 32, 32)
labels = torch.randint(0, num_classes, (batch_size,))

conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
bn1 = nn.BatchNorm2d(32)
conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
bn2 = nn.BatchNorm2d(64)
pool = nn.MaxPool2d(2)

h = pool(F.relu(bn1(conv1(images))))
h = pool(F.relu(bn2(conv2(h))))
features = h.flatten(1)

fc1 = nn.Linear(64 * 8 * 8, 256)
fc2 = nn.Linear(256, num_classes)
hidden = F.relu(fc1(features))
logits = fc2(hidden)

loss = F.cross_entropy(logits, labels)
probs = F.softmax(logits, dim=-1)
pred = probs.argmax(dim=1)
accuracy = (pred == labels).float().mean()
print(f"loss {loss.item():.3f} accuracy {accuracy.item():.3f}")
