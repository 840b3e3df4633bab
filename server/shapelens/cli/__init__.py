"""Command line: `shapelens check` (CI and terminals) and `shapelens serve` (the language server).

Nothing is imported here before the probe worker of a check is started (cli.prestart): argparse
and the planner's modules load while the worker imports torch."""

from __future__ import annotations

import sys

from shapelens import timing


def build_parser():
    from shapelens.cli.parser import build_parser as build

    return build()


def main(argv: list[str] | None = None) -> int:
    started = timing.process_start()
    timing.mark("cli: process started", started)
    argv = sys.argv[1:] if argv is None else argv
    from shapelens.cli import prestart

    early = prestart.start(argv)
    try:
        args = build_parser().parse_args(argv)  # the planner's modules load here (cli.options)
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
