"""Constructor branches the first probe did not take: the values that take them are read off the
condition (`expansion == 1`, a flag, the else of `rnn_type in [...]`), and the class is probed once
more with them, so the layers there get shapes and their mismatches are found."""

from __future__ import annotations

from helpers import shape_of
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


def test_an_inner_class_reached_under_assumed_values_has_its_flags_taken_in_one_probe(workspace):
    # `Attention` is only built by `Layers`, itself built with assumed arguments, so its values are
    # assumed too: its optional layers (two flags and a float threshold) are probed, in one probe.
    report = probe(workspace, """
        class Attention(nn.Module):
            def __init__(self, dim, gate=False, talking=False, dropout=0.0):
                super().__init__()
                self.qkv = nn.Linear(dim, dim * 3)
                self.gate = nn.Linear(dim, dim) if gate else None
                self.talk = nn.Linear(dim, dim) if talking else None
                self.drop = nn.Dropout(dropout) if dropout > 0. else None

            def forward(self, x):
                q, k, v = self.qkv(x).chunk(3, dim=-1)
                out = q * k.sigmoid() + v
                if self.gate is not None:
                    out = out * self.gate(x).sigmoid()
                if self.talk is not None:
                    out = self.talk(out)
                if self.drop is not None:
                    out = self.drop(out)
                return out


        class Layers(nn.Module):
            def __init__(self, dim, depth):
                super().__init__()
                self.blocks = nn.ModuleList([Attention(dim) for _ in range(depth)])

            def forward(self, x):
                for blk in self.blocks:
                    x = blk(x) + x
                return x
    """)
    assert errors(report) == []
    lines = (workspace.root / "m.py").read_text().splitlines()
    shaped = {lines[s.range["start"]["line"]].split("=")[0].strip() for s in report.shapes
              if s.kind == "layer" and s.input_shape is not None}
    assert {"self.gate", "self.talk", "self.drop"} <= shaped
    notes = [f.message for f in report.findings if f.code == "probe-incomplete" and "also probed" in f.message]
    assert len(notes) == 1
    assert "gate=True" in notes[0] and "talking=True" in notes[0] and "dropout=0.1" in notes[0]


def test_a_class_the_workspace_builds_keeps_its_values_for_the_classes_it_reaches(workspace):
    report = probe(workspace, """
        class Attention(nn.Module):
            def __init__(self, dim, gate=False):
                super().__init__()
                self.qkv = nn.Linear(dim, dim)
                self.gate = nn.Linear(dim, dim) if gate else None

            def forward(self, x):
                return self.qkv(x)


        class Layers(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.attn = Attention(dim)

            def forward(self, x):
                return self.attn(x)


        model = Layers(32)
    """)
    # Its own values shape it; another branch's values (gate=True) are tried too, and said so.
    assert shape_of(report, "self.qkv", "layer").input_shape[-1] == 32
    assert any("also probed with gate=True" in f.message for f in report.findings)
    lines = (workspace.root / "m.py").read_text().splitlines()
    shaped = {lines[s.range["start"]["line"]].split("=")[0].strip() for s in report.shapes
              if s.kind == "layer" and s.input_shape is not None}
    assert "self.qkv" in shaped and "self.gate" not in shaped  # built then, yet forward never calls it


def test_a_class_built_from_its_defaults_alone_has_its_branches_probed(workspace):
    # A diffusers-style model: every argument defaulted, nothing in the workspace builds it. The
    # `learned` branch reads a count left None (`num_steps: int | None = None`): assumed with it.
    report = probe(workspace, """
        class Net(nn.Module):
            def __init__(self, width: int = 32, time_type: str = "positional", num_steps: int | None = None):
                super().__init__()
                if time_type == "positional":
                    self.time = nn.Linear(width, width)
                elif time_type == "learned":
                    self.time = nn.Embedding(num_steps, width * 2)
                self.out = nn.Linear(width, width)

            def forward(self, t):
                return self.out(self.time(t))
    """)
    note = next(f for f in report.findings if f.code == "probe-incomplete" and "also probed" in f.message)
    assert "time_type='learned'" in note.message and "num_steps=" in note.message
    err = only_error(report)  # the learned table is twice as wide as what it is added to
    assert text_at(workspace, err) in ("width * 2", "width") and "time_type='learned'" in err.message
