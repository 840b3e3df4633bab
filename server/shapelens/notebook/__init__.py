"""Jupyter notebooks: a notebook's code cells as one program (program.py), and the .ipynb file
read and rewritten cell by cell without touching anything else (ipynb.py). Pure and torch-free;
the CLI and the language server both use it."""
