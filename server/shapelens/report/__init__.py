"""What a probe found, keyed by LSP source ranges; consumed by every front end."""
