"""Command line: `shapelens check` (CI and terminals) and `shapelens serve` (the language server)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from shapelens import __version__, timing

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
    from shapelens.cli.options import add_check_options  # the planner's modules, after the worker's start

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


def main(argv: list[str] | None = None) -> int:
    started = timing.process_start()
    timing.mark("cli: process started", started)
    argv = sys.argv[1:] if argv is None else argv
    from shapelens.cli import prestart

    early = prestart.start(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        if early is not None:
            early.close(wait=False)
        raise
    if args.command == "check":
        timing.mark("cli: arguments parsed")
        from shapelens.cli.check import run_check

        timing.mark("cli: planner imported")
        try:
            return run_check(args, early)
        finally:
            timing.mark("cli: done")
            timing.report(started)
    from shapelens.lsp.server import run_server

    return run_server(args)
