"""Shapes that hold still while the file is half-typed. Pure: reports in, report out.

While a name is half-typed (a NameError) or a line does not parse, a probe sees a different
program: a module-level call stops, so the class is probed alone on made-up inputs, and every
hint of the file flips from the call's numbers to symbols and back on the next keystroke. A
report of a broken file therefore keeps, on every line that did not change, the shapes of the
last report; lines that did change show what the new probe found.
"""

from __future__ import annotations

from dataclasses import replace

from shapelens.lsp.locate import LineMap
from shapelens.report.model import ProbeReport

BROKEN = ("syntax error", "NameError")


def is_broken(report: ProbeReport) -> bool:
    """A probe of a file being typed: it does not parse, or a name in it is not defined (yet)."""
    return any(f.code == "probe-incomplete" and any(b in f.message for b in BROKEN) for f in report.findings)


def carry_over(old_text: str, old: ProbeReport, new_text: str, new: ProbeReport) -> ProbeReport:
    """`new` with the shapes and class summaries of `old` on the lines that did not change, when
    `new` comes from a broken file; `new` itself otherwise."""
    if not is_broken(new) or old.path != new.path:
        return new
    lines = LineMap(old_text, new_text)
    kept, kept_lines = [], set()
    for entry in old.shapes:
        if entry.path != old.path:
            continue
        rng = lines.range_to_new(entry.range)
        if rng is not None:
            kept.append(replace(entry, range=rng))
            kept_lines.add(rng["start"]["line"])
    own = [e for e in new.shapes if e.path == new.path and e.range["start"]["line"] not in kept_lines]
    others = [e for e in new.shapes if e.path != new.path]
    classes = {c.name: c for c in new.classes}
    for c in old.classes:
        rng = lines.range_to_new(c.range) if c.path == old.path else None
        if rng is not None:
            classes[c.name] = replace(c, range=rng)
    shapes = sorted(kept + own, key=lambda s: (s.range["start"]["line"], s.range["start"]["character"])) + others
    return replace(new, shapes=shapes, classes=list(classes.values()))
