"""Worker side of the probe. Everything in this package may import torch."""
