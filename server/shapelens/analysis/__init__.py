"""Static analysis: pure `ast` + Jedi, no torch, never executes user code."""
