"""Per-class fingerprints change exactly when what a class's probe depends on changes."""

from __future__ import annotations

import ast
import textwrap

from shapelens.analysis.fingerprint import class_fingerprints

BASE = textwrap.dedent("""
    import torch.nn as nn

    WIDTH = 64

    class A(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(WIDTH, WIDTH)

        def forward(self, x):
            return self.fc(x)

    class B(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = A()

        def forward(self, x):
            return self.a(x)

    class C(nn.Module):
        def forward(self, x):
            return x
""")


def fps(text):
    return {k: v[0] for k, v in class_fingerprints(text, ast.parse(text)).items()}


def test_editing_one_class_changes_it_and_its_users_only():
    before = fps(BASE)
    after = fps(BASE.replace("return self.fc(x)", "return self.fc(x) * 2"))
    assert after["A"] != before["A"]
    assert after["B"] != before["B"]  # B builds an A
    assert after["C"] == before["C"]


def test_a_constant_is_a_dependency():
    before = fps(BASE)
    after = fps(BASE.replace("WIDTH = 64", "WIDTH = 32"))
    assert after["A"] != before["A"] and after["B"] != before["B"] and after["C"] == before["C"]


def test_moving_a_class_keeps_its_fingerprint_and_reports_the_new_line():
    before = class_fingerprints(BASE, ast.parse(BASE))
    moved = BASE.replace("WIDTH = 64\n", "WIDTH = 64\n\n\n# a comment\n")
    after = class_fingerprints(moved, ast.parse(moved))
    assert after["C"][0] == before["C"][0]
    assert after["C"][1] == before["C"][1] + 3


def test_a_function_that_builds_a_class_ties_it_to_what_it_passes():
    text = textwrap.dedent("""
        import torch.nn as nn

        class Block(nn.Module):
            def __init__(self, w):
                super().__init__()
                self.fc = nn.Linear(w, w)

        class Net(nn.Module):
            def __init__(self, block):
                super().__init__()
                self.b = block(8)

        def build():
            return Net(Block)
    """)
    before = fps(text)
    after = fps(text.replace("nn.Linear(w, w)", "nn.Linear(w, 2 * w)"))
    assert after["Net"] != before["Net"]  # Net never names Block, but `build` passes it in
