"""The shapelens language server (pygls): diagnostics, hovers, code actions and inlay hints
from background probes. Torch-free: only the probe worker imports torch."""
