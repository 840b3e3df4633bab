// Which documents the language client serves: Python files on disk, and the Python cells of
// Jupyter notebooks (VS Code's built-in .ipynb editor, notebook type `jupyter-notebook`). With
// the notebook filter, vscode-languageclient syncs a notebook as a whole (LSP 3.17
// notebookDocument/*, which the server declares), so its cells are probed as one program.
export const NOTEBOOK_TYPE = "jupyter-notebook";

export const DOCUMENT_SELECTOR = [
  { scheme: "file", language: "python" },
  { notebook: NOTEBOOK_TYPE, language: "python" },
] as const;
