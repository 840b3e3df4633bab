"""No silent gap: a layer of a class the probe ran that got no shape has a note on its class
saying why (a branch not taken, built but never called), with its own related location."""

from __future__ import annotations

from helpers import locate
from test_breadth import errors, probe

BRANCHY = """
    from torch.nn import CrossEntropyLoss


    class Head(nn.Module):
        def __init__(self, dim=32, expansion=4, classes=10):
            super().__init__()
            if expansion == 1:
                self.conv = nn.Linear(dim, dim)
            else:
                self.conv = nn.Sequential(nn.Linear(dim, dim * expansion), nn.GELU(),
                                          nn.Linear(dim * expansion, dim))
            self.spare = nn.Dropout(0.1)
            self.out = nn.Linear(dim, classes)

        def forward(self, x, labels=None):
            logits = self.out(self.conv(x))
            if labels is not None:
                loss_fct = CrossEntropyLoss()
                return loss_fct(logits, labels)
            return logits


    model = Head()
    y = model(torch.randn(2, 32))
"""


def notes_on(report, needle: str):
    return [f for f in report.findings if f.code == "probe-incomplete" and needle in f.message]


def test_each_unshaped_layer_of_a_probed_class_is_named_with_why(workspace):
    # A condition on no parameter alone: no value the probe could give takes it.
    report = probe(workspace, BRANCHY.replace("if expansion == 1:", "if dim % 7 == 0:"))
    assert errors(report) == []
    (note,) = notes_on(report, "got no shape")
    path = workspace.root / "m.py"
    assert note.range == locate(path, "class Head", "Head")
    assert note.message.startswith("3 layers of `Head` got no shape: ")
    assert "`self.conv` (line " in note.message and "under `if dim % 7 == 0:`" in note.message
    assert "`self.spare`" in note.message and "never called" in note.message
    assert "`loss_fct`" in note.message and "`if labels is not None:`" in note.message
    lines = [r.range["start"]["line"] for r in note.related]
    assert lines == [locate(path, "nn.Linear(dim, dim)", "nn.Linear(dim, dim)")["start"]["line"],
                     locate(path, "nn.Dropout(0.1)", "nn.Dropout(0.1)")["start"]["line"],
                     locate(path, "CrossEntropyLoss()", "CrossEntropyLoss()")["start"]["line"]]
    # The layers that ran have shapes and are not listed.
    shaped = {s.name for s in report.shapes if s.kind == "layer" and s.input_shape is not None}
    assert {"self.out"} <= shaped and "self.out" not in note.message


def test_a_branch_on_a_parameter_of_a_class_the_file_builds_is_probed_with_the_value_that_takes_it(workspace):
    report = probe(workspace, BRANCHY)
    assert errors(report) == []
    (note,) = notes_on(report, "got no shape")
    assert note.message.startswith("also probed with expansion=1 to take `expansion == 1` (line ")
    assert "1 layer of `Head` got no shape: `self.spare` (line " in note.message and "never called" in note.message
    path = workspace.root / "m.py"
    assert [r.range["start"]["line"] for r in note.related] == [
        locate(path, "nn.Dropout(0.1)", "nn.Dropout(0.1)")["start"]["line"]]


def test_a_class_whose_layers_all_ran_gets_no_such_note(workspace):
    report = probe(workspace, """
        class Head(nn.Module):
            def __init__(self, dim=32, classes=10):
                super().__init__()
                self.conv = nn.Linear(dim, dim) if dim % 2 == 0 else nn.Identity()
                self.out = nn.Linear(dim, classes)

            def forward(self, x):
                return self.out(self.conv(x))


        y = Head()(torch.randn(2, 32))
    """)
    (note,) = notes_on(report, "got no shape")  # only the branch of the conditional expression not taken
    assert note.message.startswith("1 layer of `Head` got no shape: `nn.Identity` (line ")
    assert "under the `else` of `... if dim % 2 == 0 else ...`" in note.message
    all_ran = probe(workspace, BRANCHY.replace("self.spare = nn.Dropout(0.1)", "self.spare = None")
                    .replace("loss_fct = CrossEntropyLoss()", "loss_fct = None")
                    .replace("if expansion == 1:", "if expansion % 4 == 0:").replace("expansion=4", "expansion=4, x=0")
                    .replace("        else:\n", "        if expansion % 4 != 0:\n"))
    assert errors(all_ran) == []
    (left,) = notes_on(all_ran, "got no shape")
    assert "under `if expansion % 4 != 0:`" in left.message and "`self.spare`" not in left.message


def test_a_class_an_error_stopped_is_not_told_twice(workspace):
    report = probe(workspace, BRANCHY.replace("self.out = nn.Linear(dim, classes)", "self.out = nn.Linear(dim + 1, classes)"))
    assert [f.code for f in errors(report)] == ["feature-mismatch"]
    assert notes_on(report, "got no shape") == []


def test_a_model_built_at_module_level_but_never_called_names_its_branches(workspace):
    report = probe(workspace, """
        class Embedder(nn.Module):
            def __init__(self, width=32, kind="positional", classes=None):
                super().__init__()
                self.proj = nn.Linear(width, width)
                if kind == "learned":
                    self.table = nn.Embedding(100, width)
                if classes is not None:
                    self.classes = nn.Embedding(classes, width)
                self.unused = nn.Linear(width, 2 * width)

            def forward(self, x):
                return self.proj(x)


        model = Embedder()
    """)
    (note,) = notes_on(report, "got no shape")
    assert "3 layers of `Embedder` got no shape: `self.table` (line " in note.message
    assert "under `if kind == 'learned':`" in note.message or 'under `if kind == "learned":`' in note.message
    assert "`self.classes`" in note.message and "under `if classes is not None:`" in note.message
    assert "`self.unused`" in note.message and "never called" in note.message and "`self.proj`" not in note.message


TRAINING_SCRIPT = """
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    opt = parser.parse_args()


    class Critic(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())

        def forward(self, x):
            return self.net(x)


    criterion = nn.BCELoss()
    spare = nn.Dropout(0.2)
    norm = nn.LayerNorm(16)
    critic = Critic()
    loader = [(torch.randn(4, 16), torch.ones(4, 1))]

    for epoch in range(opt.epochs):
        for batch, target in loader:
            loss = criterion(critic(norm(batch)), target)
"""


def test_a_module_level_layer_called_only_in_a_skipped_loop_says_where(workspace):
    report = probe(workspace, TRAINING_SCRIPT)
    assert errors(report) == []
    path = workspace.root / "m.py"
    (norm_note,) = notes_on(report, "`norm` got no shape")
    assert norm_note.range == locate(path, "norm = nn.LayerNorm(16)", "nn.LayerNorm(16)")
    assert "called only inside the loop `for batch, target in loader:`" in norm_note.message
    # The loss is fed what the critic's probe gave (loopfeed.py): [B, 1] scores, one loss
    loss = next(s for s in report.shapes if s.kind == "layer" and s.name == "criterion")
    assert loss.input_shape is not None and loss.input_shape[-1] == 1 and loss.output_shape == []
    (spare_note,) = notes_on(report, "`spare` got no shape")
    assert "never called by the module-level code the probe ran" in spare_note.message
    # The critic the loop calls is probed as a class, and is not told about.
    shaped = {s.name for s in report.shapes if s.kind == "layer" and s.input_shape is not None}
    assert "self.net" in shaped
    assert notes_on(report, "`critic` got no shape") == []


FACTORIES = """
    def make_attn(channels, kind="vanilla"):
        if kind == "vanilla":
            return nn.Conv2d(channels, channels, 1)
        elif kind == "none":
            return nn.Identity()
        return nn.Conv2d(channels, channels, 3, padding=1)


    def make_head(width):
        return nn.Linear(width, 10)


    class Block(nn.Module):
        def __init__(self, channels=8):
            super().__init__()
            self.attn = make_attn(channels)

        def forward(self, x):
            return self.attn(x)
"""


def test_a_factory_function_s_unshaped_layers_are_named_on_the_function(workspace):
    # stable-diffusion's `def make_attn(in_channels, attn_type="vanilla")`: the branches its
    # callers did not take, and a helper nothing calls, were silent gaps.
    report = probe(workspace, FACTORIES)
    assert errors(report) == []
    path = workspace.root / "m.py"
    (attn,) = notes_on(report, "`make_attn()` builds got no shape")
    assert attn.range == locate(path, "def make_attn", "make_attn")
    assert attn.message.startswith("2 layers `make_attn()` builds got no shape: ")
    assert "under `if kind == \"none\":`" in attn.message
    vanilla = locate(path, 'if kind == "vanilla"', "if")["start"]["line"] + 1
    assert f"`if kind == \"vanilla\":` (line {vanilla}) returned first" in attn.message
    assert len(attn.related) == 2
    (head,) = notes_on(report, "`make_head()` builds got no shape")
    assert "nothing the probe ran called it" in head.message and "`make_head(...)`" in head.message
    # The branch that ran has its shape, and is not listed.
    assert any(s.kind == "layer" and s.input_shape is not None and s.range["start"]["line"] == vanilla
               for s in report.shapes)


def test_a_class_whose_part_cannot_be_built_says_so_on_its_own_line(workspace):
    # makemore's `Block.__init__`: `self.attn = CausalSelfAttention(config)` raises inside the
    # attention's own constructor; Block's layers were left with no reason in Block.
    report = probe(workspace, """
        class Attention(nn.Module):
            def __init__(self, dim=32, length=None):
                super().__init__()
                self.c_attn = nn.Linear(dim, 3 * dim)
                self.register_buffer("bias", torch.ones(length, length))

            def forward(self, x):
                return self.c_attn(x)


        class Block(nn.Module):
            def __init__(self, dim=32):
                super().__init__()
                self.ln_1 = nn.LayerNorm(dim)
                self.attn = Attention(dim)
                self.ln_2 = nn.LayerNorm(dim)

            def forward(self, x):
                return self.ln_2(self.attn(self.ln_1(x)))
    """)
    assert errors(report) == []
    path = workspace.root / "m.py"
    (note,) = notes_on(report, "`Block` is not probed")
    assert note.range["start"]["line"] == locate(path, "self.attn = Attention(dim)", "self")["start"]["line"]
    assert "building it stopped at line" in note.message


def test_a_mixin_that_is_no_module_names_its_unshaped_layers_on_its_name(workspace):
    # LoRA's `class LoRALayer():` builds `nn.Dropout(p=lora_dropout)` under `if lora_dropout > 0.:`
    # for the nn.Linear subclass that calls its __init__.
    report = probe(workspace, """
        class LoRALayer:
            def __init__(self, r: int, lora_dropout: float):
                self.r = r
                if lora_dropout > 0.0:
                    self.lora_dropout = nn.Dropout(p=lora_dropout)
                else:
                    self.lora_dropout = lambda x: x


        class Linear(nn.Linear, LoRALayer):
            def __init__(self, in_features=16, out_features=8, r=4, lora_dropout=0.0):
                nn.Linear.__init__(self, in_features, out_features)
                LoRALayer.__init__(self, r=r, lora_dropout=lora_dropout)

            def forward(self, x):
                return super().forward(self.lora_dropout(x))
    """)
    assert errors(report) == []
    (note,) = notes_on(report, "`LoRALayer` builds got no shape")
    assert note.range == locate(workspace.root / "m.py", "class LoRALayer", "LoRALayer")
    assert "under `if lora_dropout > 0.0:`" in note.message and "To probe the branch" in note.message
