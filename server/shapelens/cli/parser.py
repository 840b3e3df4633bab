"""`shapelens check`'s and `shapelens serve`'s command line (cli/__init__.py: what runs it)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from shapelens import __version__
from shapelens.cli.options import add_check_options

CHECK_DESCRIPTION = """Probe Python files and report PyTorch shape mismatches.

Exit status: 0 without errors, 1 with at least one error (or a --diff with changes),
2 for a usage or environment error. Configure in [tool.shapelens] of pyproject.toml;
suppress a finding with `# shapelens: ignore[code]` on its line."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs["add_help"] = False  # our own -h with ruff's wording
        super().__init__(*args, **kwargs)
        self.add_argument("-h", "--help", action="help", help="Print help")

    def error(self, message: str) -> NoReturn:  # one line, exit 2, like ruff
        self.exit(2, f"shapelens: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shapelens", description="PyTorch tensor shapes and layer-dimension checks.")
    parser.add_argument("--version", action="version", version=f"shapelens {__version__}", help="Print version")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = sub.add_parser(
        "check", help="Probe files and report shape mismatches", description=CHECK_DESCRIPTION,
        usage="shapelens check [OPTIONS] [PATH ...]", formatter_class=argparse.RawDescriptionHelpFormatter)
    add_check_options(check)
    serve = sub.add_parser("serve", help="Run the language server (stdio by default)")
    serve.add_argument("--tcp", metavar="HOST:PORT", default=None, help="Listen on TCP instead (for debugging)")
    serve.add_argument("--python", metavar="PATH", default=None,
                       help="The Python interpreter (with torch) that runs the probe worker")
    return parser
