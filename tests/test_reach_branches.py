"""Constructor branches the first probe did not take: the values that take them are read off the
condition (`expansion == 1`, a flag, the else of `rnn_type in [...]`), and the class is probed once
more with them, so the layers there get shapes and their mismatches are found."""

from __future__ import annotations

from test_breadth import assert_fix_cleans, errors, only_error, probe, text_at


def _layer(report, name):
    return [s for s in report.shapes if s.kind == "layer" and s.name == name]


def test_layers_under_a_branch_on_a_constructor_value_get_shapes(workspace):
    report = probe(workspace, """
        class Block(nn.Module):
            def __init__(self, dim, hidden, expansion=4):
                super().__init__()
                if expansion == 1:
                    self.body = nn.Sequential(nn.Linear(dim, dim), nn.GELU())
                else:
                    self.body = nn.Sequential(nn.Linear(dim, hidden * expansion), nn.GELU(),
                                              nn.Linear(hidden * expansion, dim))

            def forward(self, x):
                return self.body(x)
    """)
    assert errors(report) == []
    linears = [s for s in _layer(report, "nn.Linear") if s.input_shape is not None]
    assert len({tuple(s.range["start"].values()) for s in linears}) == 3  # both branches shaped
    note = next(f for f in report.findings if f.code == "probe-incomplete" and "expansion=1" in f.message)
    assert "`expansion == 1` (line" in note.message


def test_a_mismatch_under_a_flag_the_default_leaves_off_is_an_error_there(workspace):
    report = probe(workspace, """
        class Encoder(nn.Module):
            def __init__(self, dim, normalize=False):
                super().__init__()
                self.proj = nn.Linear(dim, dim)
                self.norm = nn.LayerNorm(dim * 2) if normalize else None

            def forward(self, x):
                x = self.proj(x)
                if self.norm is not None:
                    x = self.norm(x)
                return x
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "dim * 2"
    assert "normalize=True" in err.message
    assert_fix_cleans(workspace, err)


def test_the_else_of_a_string_choice_takes_a_key_the_class_knows(workspace):
    report = probe(workspace, """
        class Recurrent(nn.Module):
            def __init__(self, kind, ninp, nhid):
                super().__init__()
                if kind in ["LSTM", "GRU"]:
                    self.rnn = getattr(nn, kind)(ninp, nhid)
                else:
                    act = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[kind]
                    self.rnn = nn.RNN(ninp, nhid, nonlinearity=act)

            def forward(self, x):
                out, _ = self.rnn(x)
                return out
    """)
    assert errors(report) == []
    line = next(i for i, t in enumerate((workspace.root / "m.py").read_text().splitlines()) if "nn.RNN(" in t)
    assert any(s.input_shape is not None and s.range["start"]["line"] == line for s in report.shapes)
    assert any("kind='RNN_TANH'" in f.message for f in report.findings if f.code == "probe-incomplete")


def test_a_class_without_unbuilt_branches_is_probed_once(workspace):
    report = probe(workspace, """
        class Plain(nn.Module):
            def __init__(self, dim, bias=True):
                super().__init__()
                self.fc = nn.Linear(dim, dim, bias=bias)

            def forward(self, x):
                return self.fc(x)
    """)
    assert errors(report) == []
    assert not any("also probed" in f.message for f in report.findings)
