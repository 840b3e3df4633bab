"""`# shapelens: ignore[...]` comments, read from real text: which findings they suppress, which
are unused, and the edit the editor's *Ignore `code` on this line* makes."""

from __future__ import annotations

from shapelens.analysis.hints import collect_hints
from shapelens.report.fixes import apply_edits
from shapelens.report.model import Finding
from shapelens.report.suppress import Suppressions, ignore_edit

TEXT = """import torch.nn as nn

class M(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.a = nn.Linear(d, 4)  # shapelens: ignore[feature-mismatch]
        self.b = nn.Linear(d, 4)  # noqa: E501  # shapelens: ignore
        self.c = nn.Linear(  # shapelens: ignore[feature-mismatch, shape-error]
            d,
            4)
        self.d = nn.Linear(d, 4)  # shapelens: ignore[index-dtype]
        self.e = nn.Linear(d, 4)  # shapelens: ignore[feature-mismatch, not-a-code]
"""


def finding(line: int, char: int = 27, code: str = "feature-mismatch", end_line: int | None = None) -> Finding:
    rng = {"start": {"line": line, "character": char}, "end": {"line": end_line or line, "character": char + 1}}
    return Finding("/m.py", rng, code, "error", "m")


def test_codes_bare_and_multi_line_constructors():
    s = Suppressions("/m.py", TEXT)
    assert s.suppresses(finding(5))  # the code listed
    assert not s.suppresses(finding(5, code="index-out-of-range"))  # a code not listed
    assert s.suppresses(finding(6, code="index-dtype"))  # bare: every code, after another tool's comment
    assert s.suppresses(finding(8, char=12))  # the argument on the line below the constructor's
    assert not s.suppresses(finding(10))  # index-dtype is listed, not feature-mismatch
    assert not s.suppresses(finding(1, char=0))  # no comment on that statement


def test_unused_suppressions_are_hints_with_a_removal_fix():
    s = Suppressions("/m.py", TEXT)
    for f in (finding(5), finding(6), finding(8, char=12), finding(11)):
        assert s.suppresses(f)
    unused = {f.range["start"]["line"]: f for f in s.unused()}
    assert sorted(unused) == [7, 10, 11]
    assert all(f.code == "unused-ignore" and f.severity == "hint" for f in unused.values())
    assert "`shape-error`" in unused[7].message and "suppresses nothing" in unused[7].message
    assert unused[7].fixes[0].edits[0].new_text == "# shapelens: ignore[feature-mismatch]"
    assert "unknown code `not-a-code`" in unused[11].message
    fixed = apply_edits(TEXT, [e for f in unused.values() for e in f.fixes[0].edits])
    assert "        self.d = nn.Linear(d, 4)\n" in fixed  # the whole comment went, with its spaces
    assert "self.e = nn.Linear(d, 4)  # shapelens: ignore[feature-mismatch]\n" in fixed


def test_ignore_file_needs_its_own_line():
    s = Suppressions("/m.py", "# shapelens: ignore-file\nimport torch\n")
    assert s.suppresses(finding(1, code="shape-error")) and s.unused() == []
    some = Suppressions("/m.py", "# shapelens: ignore-file[probe-incomplete]\nx = 1\n")
    assert some.suppresses(finding(1, code="probe-incomplete")) and not some.suppresses(finding(1))
    trailing = Suppressions("/m.py", "x = 1  # shapelens: ignore-file\n")
    assert not trailing.suppresses(finding(0))


def test_a_file_that_does_not_parse_still_has_its_ignore_file():
    s = Suppressions("/m.py", "# shapelens: ignore-file\nx = torch.zeros(2,\n")
    assert s.suppresses(finding(1, code="syntax-error"))


def test_a_suppression_is_not_read_as_a_broken_hint():
    hints = collect_hints("x = 1  # shapelens: ignore[shape-error]\n"
                          "class M:  # shapelens: M(d=4)  # shapelens: ignore[probe-incomplete]\n"
                          "# shapelens: ignore-file\n")
    assert list(hints) == [2]
    assert hints[2].error is None and hints[2].ctor is not None


def test_the_ignore_edit_appends_or_extends():
    line = "        self.a = nn.Linear(d, 4)"
    start, end, new = ignore_edit(line, "feature-mismatch")
    assert line[:start] + new + line[end:] == line + "  # shapelens: ignore[feature-mismatch]"
    line = "x = f('#')  # shapelens: ignore[shape-error]"
    start, end, new = ignore_edit(line, "feature-mismatch")
    assert line[:start] + new + line[end:] == "x = f('#')  # shapelens: ignore[shape-error, feature-mismatch]"
    assert ignore_edit("x = 1  # shapelens: ignore", "shape-error") is None
    assert ignore_edit("x = 1  # shapelens: ignore[shape-error]", "shape-error") is None
