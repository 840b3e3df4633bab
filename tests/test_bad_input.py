"""Bad input is normal: half-typed code, odd bytes, huge or deep files. A report always comes
back (no exception, no hang), and the rest of the file is still probed where possible."""

from __future__ import annotations

import pytest

from helpers import shape_of

GOOD_TAIL = "\nimport torch\nok = torch.zeros(2, 3)\n"


@pytest.mark.parametrize("text, expect", [
    ("import torch\nx = torch.nn.Linear(\n", "syntax error"),
    ("import torch\nclass A(torch.nn.Module):\n    def forward(self, x):\n        return self.\n", "syntax error"),
    ("def f(:\n", "syntax error"),
    ("x = (" * 300 + "1" + ")" * 300 + "\n", "syntax error"),  # the parser's nesting limit
    ("\0\0\0", "null bytes"),
])
def test_unparseable_text_is_a_syntax_error(workspace, text, expect):
    workspace.write("m.py", text)
    report = workspace.check("m.py")
    assert [(f.code, f.severity) for f in report.findings] == [("syntax-error", "error")]
    assert expect in report.findings[0].message


def test_undecodable_bytes(workspace, worker):
    from shapelens.engine import Engine

    path = workspace.root / "latin1.py"
    path.write_bytes(b"# caf\xe9\nimport torch\nx = torch.zeros(4)\n")
    report = Engine(str(workspace.root), worker=worker).check(str(path))  # reads the file itself
    assert report.findings == [] or all(f.severity == "information" for f in report.findings)


def test_long_chains_do_not_overflow_the_analysis(workspace):
    workspace.write("m.py", "import torch\nn = " + " + ".join(["1"] * 2500) + "\nx = torch.zeros(2, 3)\n")
    report = workspace.check("m.py")
    assert shape_of(report, "x").shape == [2, 3]


def test_a_chain_beyond_pythons_own_parser_is_a_note(workspace):
    workspace.write("m.py", "n = " + " + ".join(["1"] * 40000) + "\n")
    report = workspace.check("m.py")
    assert [f.code for f in report.findings] == ["probe-incomplete"]
    assert "nested" in report.findings[0].message


def test_a_ten_thousand_line_file(workspace):
    lines = ["import torch", "import torch.nn as nn"]
    for i in range(2500):
        lines += [f"w{i} = {i % 7 + 1}", f"t{i} = torch.zeros(2, w{i})", f"layer{i} = nn.Linear(w{i}, 3)",
                  f"y{i} = layer{i}(t{i})"]
    workspace.write("big.py", "\n".join(lines) + "\n")
    # Completing is the structural fact (the last statement got its shape); how fast is `make bench`'s.
    report = workspace.check("big.py", timeout=120)
    assert not [f for f in report.findings if f.severity == "error"]
    assert shape_of(report, "y2499").shape == [2, 3]


def test_huge_arithmetic_is_stopped_by_the_timeout(workspace):
    workspace.write("m.py", "import torch\nbig = 10 ** 10 ** 9\nx = torch.zeros(2)\n")
    report = workspace.check("m.py", timeout=1.0)
    assert [f.code for f in report.findings] == ["probe-incomplete"]
    assert report.findings[0].range["start"]["line"] == 1


def test_circular_imports_and_self_import(workspace):
    workspace.write("a.py", "import torch\nimport b\nA = torch.zeros(2)\n")
    workspace.write("b.py", "import torch\nimport a\nB = torch.zeros(3)\n")
    workspace.write("selfish.py", "import torch\nimport selfish\nS = torch.zeros(4)\n")
    assert shape_of(workspace.check("a.py"), "A").shape == [2]
    assert shape_of(workspace.check("selfish.py"), "S").shape == [4]


def test_a_failed_import_makes_only_its_names_unknown(workspace):
    workspace.write("m.py", "import torch\nimport not_a_real_package_xyz\nfrom also_missing import thing\n"
                            "x = torch.zeros(2, 5)\n")
    report = workspace.check("m.py")
    notes = [f for f in report.findings if f.code == "probe-incomplete"]
    assert len(notes) == 2 and all("import failed" in f.message for f in notes)
    assert shape_of(report, "x").shape == [2, 5]
