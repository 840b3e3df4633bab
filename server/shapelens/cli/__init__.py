"""Command line: `shapelens check` (CI and terminals) and `shapelens serve` (the language server)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from shapelens import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like ruff
        self.exit(2, f"shapelens: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shapelens", description="PyTorch tensor shapes and layer-dimension checks.")
    parser.add_argument("--version", action="version", version=f"shapelens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = sub.add_parser("check", help="probe files and report shape mismatches")
    check.add_argument("paths", nargs="*", default=["."], metavar="PATH", help="files or folders (default .)")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--fix", action="store_true", help="apply every fix in place")
    check.add_argument("--device", choices=("meta", "cpu", "cuda", "auto"), default="meta")
    check.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="per-file probe timeout")
    check.add_argument("--python", default=None, help="interpreter that runs the probe (default: this one)")
    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    serve.add_argument("--tcp", metavar="HOST:PORT", default=None, help="listen on TCP instead (debugging)")
    serve.add_argument("--python", default=None, help="interpreter for the probe worker")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        from shapelens.cli.check import run_check

        return run_check(args)
    from shapelens.lsp.server import run_server

    return run_server(args)
