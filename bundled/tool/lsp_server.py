"""Starts the shapelens language server from the VS Code extension, in the user's interpreter.

The extension ships shapelens and its pure-Python dependencies in ../libs (the .vsix's
bundled/libs), so the user's environment needs only torch. SHAPELENS_IMPORT_STRATEGY says which
copy wins (the `shapelens.importStrategy` setting):
  useBundled       ../libs first on sys.path: the shipped, tested versions (the default)
  fromEnvironment  the environment's own shapelens/pygls/jedi first; ../libs only fills gaps
The probe worker imports shapelens from the folder the server's copy came from, so it too needs
only torch from the environment.
"""

import os
import sys

TOOL = os.path.dirname(os.path.abspath(__file__))
LIBS = os.path.join(os.path.dirname(TOOL), "libs")


def main() -> int:
    # This folder holds only this script; nothing should import from it.
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == TOOL:
        del sys.path[0]
    if os.environ.get("SHAPELENS_IMPORT_STRATEGY") == "fromEnvironment":
        sys.path.append(LIBS)
    else:
        sys.path.insert(0, LIBS)
    # The user's interpreter may be any Python: say what is wrong instead of a SyntaxError later.
    if sys.version_info < (3, 11):  # noqa: UP036
        print(f"shapelens: error: Python 3.11 or newer is needed; {sys.executable} is "
              f"{sys.version.split()[0]}", file=sys.stderr)
        return 2
    from shapelens.cli import main as cli

    return cli(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
