"""shapelens: PyTorch tensor shapes and layer-dimension checks before the code runs."""

__version__ = "0.1.0"
