"""`shapelens check`'s options, grouped and worded as ruff words its own."""

from __future__ import annotations

import argparse

from shapelens.cli.formats import FORMATS
from shapelens.engine import DEVICES


def codes(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


def add_check_options(check: argparse.ArgumentParser) -> None:
    check.add_argument("paths", nargs="*", metavar="PATH",
                       help="Files or folders to check; `-` reads the file from standard input [default: .]")

    fix = check.add_argument_group("Fixes")
    fix.add_argument("--fix", action="store_true",
                     help="Apply the preferred fix of each finding in place (line endings, encoding, BOM and "
                          "file mode kept; a result that would not parse is not written)")
    fix.add_argument("--diff", action="store_true",
                     help="Print the fixes as a unified diff instead of writing them; exit 1 when there is one")

    out = check.add_argument_group("Output")
    out.add_argument("--output-format", "--format", dest="output_format", choices=FORMATS, default="text",
                     metavar="FORMAT", help=f"Output format: {', '.join(FORMATS)} [default: text]")
    out.add_argument("--statistics", action="store_true",
                     help="Show a count per code instead of each finding (text, concise or json)")
    out.add_argument("--exit-zero", action="store_true",
                     help="Exit with status 0 even when errors are found (2 still means a usage or "
                          "environment error)")
    out.add_argument("--show-unused-ignores", action="store_true", default=None,
                     help="Report `# shapelens: ignore` comments that suppress nothing (code unused-ignore)")

    rules = check.add_argument_group("Rule selection")
    rules.add_argument("--select", type=codes, metavar="CODE[,CODE]",
                       help="Report only these codes (overrides `select` in [tool.shapelens])")
    rules.add_argument("--ignore", type=codes, metavar="CODE[,CODE]",
                       help="Do not report these codes (added to `ignore` in [tool.shapelens])")

    files = check.add_argument_group("File selection")
    files.add_argument("--stdin-filename", metavar="PATH",
                       help="The path of the file read from standard input, for config, imports and messages")
    files.add_argument("--no-respect-gitignore", dest="respect_gitignore", action="store_false", default=None,
                       help="Also check files that .gitignore ignores")
    files.add_argument("--force-exclude", action="store_true",
                       help="Apply exclude and .gitignore to files named on the command line too (for "
                            "pre-commit, which names every staged file)")

    probe = check.add_argument_group("Probe")
    probe.add_argument("--python", metavar="PATH", default=None,
                       help="The Python interpreter (with torch) that runs the probe [default: this one]")
    probe.add_argument("--device", choices=DEVICES, default="meta",
                       help="Where probe tensors live: meta (no memory), cpu, cuda, or auto [default: meta]")
    probe.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                       help="Stop probing a file after this long [default: 5]")
