"""shapelens: PyTorch tensor shapes and layer-dimension checks before the code runs."""

__version__ = "0.1.0"


def _drop_launch_folder() -> None:
    """`python -m shapelens` puts the folder it was started in first on sys.path, so a `json.py`
    or `torch.py` of the user's workspace would be imported by the editor-side process. Drop it
    (what PYTHONSAFEPATH does for the worker) before anything else is imported."""
    import os
    import sys

    if sys.argv[:1] == ["-m"] and not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


_drop_launch_folder()
