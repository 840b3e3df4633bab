"""Library-style classes that nothing in the workspace builds: the probe assumes their
constructor arguments by name, says which, and reports as an error only what holds under a
second assumption."""

from __future__ import annotations

from helpers import locate, shape_of
from shapelens.lsp import render
from test_breadth import assert_fix_cleans, errors, probe, text_at

LIBRARY = """
    class FeedForward(nn.Module):
        def __init__(self, dim, hidden_dim, dropout=0.0):
            super().__init__()
            self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden_dim), nn.GELU(),
                                     nn.Linear(hidden_dim, dim))

        def forward(self, x):
            return self.net(x)


    class Encoder(nn.Module):
        def __init__(self, *, dim, depth, heads, mlp_dim, num_classes):
            super().__init__()
            self.blocks = nn.ModuleList([FeedForward(dim, mlp_dim) for _ in range(depth)])
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.head = nn.Linear(HEAD_IN, num_classes)

        def forward(self, x):
            for blk in self.blocks:
                x = blk(x) + x
            x, _ = self.attn(x, x, x)
            return self.head(x)
"""


def test_a_class_with_required_args_gets_shapes_with_the_assumed_values_marked(workspace):
    report = probe(workspace, LIBRARY.replace("HEAD_IN", "dim"))
    assert errors(report) == []
    encoder = next(c for c in report.classes if c.name == "Encoder")
    args = encoder.assumed_args
    assert set(args) == {"dim", "depth", "heads", "mlp_dim", "num_classes"}
    # Widths distinct (a width used for another shows), heads dividing them, a small depth.
    assert args["dim"] != args["mlp_dim"]
    assert int(args["dim"]) % int(args["heads"]) == 0 and 1 <= int(args["depth"]) <= 4
    head = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.head")
    assert head.input_shape[-1] == int(args["dim"]) and head.output_shape[-1] == int(args["num_classes"])
    assert head.assumed_by == "Encoder"
    assert f"dim={args['dim']}" in render.layer_hover(head)
    table = render.class_summary(encoder)
    assert "assumed arguments" in table and f"mlp_dim={args['mlp_dim']}" in table
    # The blocks reached through Encoder are shaped too (FeedForward is never probed alone).
    assert any(s.name == "nn.Linear" and s.input_shape is not None for s in report.shapes if s.kind == "layer")
    note = next(f for f in report.findings if f.code == "probe-incomplete" and "Encoder" in f.message)
    assert "# shapelens: Encoder(dim=..., depth=..., heads=..., mlp_dim=..., num_classes=...)" in note.message
    path = workspace.root / "m.py"
    assert note.range == locate(path, "class Encoder", "Encoder")


def test_a_real_mismatch_under_assumed_values_is_still_an_error_with_a_fix_that_holds(workspace):
    report = probe(workspace, LIBRARY.replace("HEAD_IN", "dim * 2"))
    errs = errors(report)
    assert [f.code for f in errs] == ["feature-mismatch"]
    assert text_at(workspace, errs[0]) == "dim * 2"
    assert "second assumption gives the same mismatch" in errs[0].message
    # A fix writing the assumed number (`64`) is right only under that assumption: not offered.
    texts = [e.new_text for fix in errs[0].fixes for e in fix.edits]
    assert texts and all(not t.isdigit() for t in texts)
    assert_fix_cleans(workspace, errs[0])


def test_a_finding_only_an_assumed_value_makes_is_a_note_not_an_error(workspace):
    report = probe(workspace, """
        class Residual(nn.Module):
            def __init__(self, in_channels, out_channels):
                super().__init__()
                self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
                self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

            def forward(self, x):
                return x + self.conv2(self.conv1(x))
    """)
    assert errors(report) == []
    note = next(f for f in report.findings if f.code == "probe-incomplete")
    assert "second assumption" in note.message and "not reported as an error" in note.message
    conv = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.conv2")
    assert conv.output_shape is not None


def test_a_dataclass_config_without_defaults_is_filled_per_field(workspace):
    report = probe(workspace, """
        from dataclasses import dataclass

        @dataclass
        class ModelArgs:
            dim: int
            n_layers: int
            vocab_size: int
            norm_eps: float = 1e-5

        class Transformer(nn.Module):
            def __init__(self, params: ModelArgs):
                super().__init__()
                self.tok = nn.Embedding(params.vocab_size, params.dim)
                self.layers = nn.ModuleList([nn.Linear(params.dim, params.dim) for _ in range(params.n_layers)])
                self.norm = nn.LayerNorm(params.dim, eps=params.norm_eps)

            def forward(self, tokens):
                h = self.tok(tokens)
                for layer in self.layers:
                    h = layer(h)
                return self.norm(h)
    """)
    assert errors(report) == []
    summary = next(c for c in report.classes if c.name == "Transformer")
    assert {"params.dim", "params.n_layers", "params.vocab_size"} <= set(summary.assumed_args)
    norm = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.norm")
    assert norm.output_shape[-1] == int(summary.assumed_args["params.dim"])


def test_an_unannotated_config_answers_each_attribute_by_its_name(workspace):
    report = probe(workspace, """
        class Block(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.fc = nn.Linear(config.hidden_size, config.intermediate_size)
                self.drop = nn.Dropout(getattr(config, "hidden_dropout", 0.1))

            def forward(self, hidden_states):
                return self.drop(self.fc(hidden_states))
    """)
    assert errors(report) == []
    summary = next(c for c in report.classes if c.name == "Block")
    assert {"config.hidden_size", "config.intermediate_size"} <= set(summary.assumed_args)
    fc = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.fc")
    assert fc.output_shape is not None


def test_a_string_argument_takes_a_value_the_class_compares_it_with(workspace):
    report = probe(workspace, """
        class Pooled(nn.Module):
            def __init__(self, dim, pool):
                super().__init__()
                assert pool in {'cls', 'mean'}, 'pool type must be either cls or mean'
                self.pool = pool
                self.fc = nn.Linear(dim, 4)

            def forward(self, x):
                x = x.mean(dim=1) if self.pool == 'mean' else x[:, 0]
                return self.fc(x)
    """)
    assert errors(report) == []
    summary = next(c for c in report.classes if c.name == "Pooled")
    assert summary.assumed_args["pool"] == "'cls'"


def test_a_llama_style_definition_with_placeholder_config_and_own_norm_is_probed(workspace):
    report = probe(workspace, """
        from dataclasses import dataclass
        from typing import Optional

        @dataclass
        class ModelArgs:
            dim: int = 64
            n_layers: int = 2
            n_heads: int = 4
            vocab_size: int = -1  # set later from the tokenizer

        class RMSNorm(nn.Module):
            def __init__(self, dim: int, eps: float = 1e-6):
                super().__init__()
                self.eps = eps
                self.weight = nn.Parameter(torch.ones(dim))

            def forward(self, x):
                return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

        class Block(nn.Module):
            def __init__(self, layer_id: int, args: ModelArgs):
                super().__init__()
                self.norm = RMSNorm(args.dim)
                self.wq = nn.Linear(args.dim, args.dim, bias=False)

            def forward(self, x, start_pos: int, mask: Optional[torch.Tensor]):
                h = self.wq(self.norm(x))
                return h if mask is None else h + mask

        class Transformer(nn.Module):
            def __init__(self, params: ModelArgs):
                super().__init__()
                self.tok = nn.Embedding(params.vocab_size, params.dim)
                self.layers = nn.ModuleList([Block(i, params) for i in range(params.n_layers)])
                self.out = nn.Linear(params.dim, params.vocab_size, bias=False)

            def forward(self, tokens, start_pos: int):
                h = self.tok(tokens)
                for layer in self.layers:
                    h = layer(h, start_pos, None)
                return self.out(h)
    """)
    assert errors(report) == []
    summary = next(c for c in report.classes if c.name == "Transformer")
    assert set(summary.assumed_args) == {"params.vocab_size"}  # the placeholder, not the real defaults
    out = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.out")
    assert out.output_shape[-1] == int(summary.assumed_args["params.vocab_size"])
    # RMSNorm alone: its input's last dim is its weight's size; Block's int and Optional inputs are filled.
    notes = [f.message for f in report.findings if f.code == "probe-incomplete"]
    assert not any("cannot tell what" in n for n in notes), notes


LENET = """
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(FC_IN, 120)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            return self.fc1(torch.flatten(x, 1))
"""


def test_the_size_search_finds_the_consistent_size_before_any_fix(workspace):
    report = probe(workspace, LENET.replace("FC_IN", "16 * 5 * 5"))
    assert errors(report) == []  # consistent at 32x32: no fix bakes 28x28's 256 in
    fc1 = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.fc1")
    assert fc1.input_shape[-1] == 400


def test_a_fix_right_only_at_an_assumed_size_says_so_in_its_title(workspace):
    report = probe(workspace, LENET.replace("FC_IN", "16 * 5 * 6"))
    errs = errors(report)
    assert len(errs) == 1 and errs[0].fixes
    assert all("assumed" in fix.title and "input" in fix.title for fix in errs[0].fixes)


def test_a_head_count_with_a_prefix_is_assumed_as_a_head_count(workspace):
    # `text_heads: int` is a count of heads, not a width: it must divide the width it splits.
    report = probe(workspace, """
        class TextTower(nn.Module):
            def __init__(self, width: int, text_heads: int):
                super().__init__()
                self.attn = nn.MultiheadAttention(width, text_heads, batch_first=True)
                self.out = nn.Linear(width, width)

            def forward(self, x):
                y, _ = self.attn(x, x, x)
                return self.out(y)
    """)
    assert errors(report) == []
    args = next(c for c in report.classes if c.name == "TextTower").assumed_args
    assert int(args["width"]) % int(args["text_heads"]) == 0 and int(args["text_heads"]) < 16
    assert any(s.name == "self.out" and s.input_shape is not None for s in report.shapes)


def test_callables_counts_positions_indices_and_asserted_bounds_are_assumed(workspace):
    # `activation: Callable` gets an activation module, `num_streams` a count, `max_pos` the
    # sequence length, `prev_ind` an index; `assert rank < dim` against a default rank of 64
    # is met by the wide widths tried when the first two assumptions cannot build the class.
    report = probe(workspace, """
        from typing import Callable


        class Gated(nn.Module):
            def __init__(self, dim_in, dim_out, activation: Callable, num_streams, max_pos, prev_ind):
                super().__init__()
                self.act = activation
                self.proj = nn.Linear(dim_in, dim_out * 2)
                self.pos = nn.Parameter(torch.zeros(max_pos, dim_out))
                self.mix = nn.Linear(num_streams, num_streams)
                self.prev_ind = prev_ind

            def forward(self, x):
                up, gate = self.proj(x).chunk(2, dim=-1)
                return up * self.act(gate)


        class LowRank(nn.Module):
            def __init__(self, dim, rank=64):
                super().__init__()
                assert rank < dim, f"rank ({rank}) must be less than dim ({dim})"
                self.down = nn.Linear(dim, rank)
                self.up = nn.Linear(rank, dim)

            def forward(self, x):
                return self.up(self.down(x))
    """)
    assert errors(report) == []
    gated = next(c for c in report.classes if c.name == "Gated").assumed_args
    assert gated["activation"] == "ReLU()" and 1 <= int(gated["num_streams"]) <= 4
    assert int(gated["prev_ind"]) == 0 and int(gated["max_pos"]) > 1
    low = next(c for c in report.classes if c.name == "LowRank").assumed_args
    assert int(low["dim"]) > 64
    shaped = {s.name for s in report.shapes if s.kind == "layer" and s.input_shape is not None}
    assert {"self.proj", "self.down", "self.up"} <= shaped


def test_an_op_mismatch_between_an_assumed_size_and_a_made_up_one_is_a_note(workspace):
    # guided-diffusion's AttentionPool2d: `spacial_dim ** 2 + 1` learned positions added to a
    # made-up feature map flattened plus one: both sizes are the probe's, not the file's. (Here
    # `* 5 + 1`, which no size the search tries meets under either assumption.)
    report = probe(workspace, """
        class AttentionPool2d(nn.Module):
            def __init__(self, spacial_dim: int, embed_dim: int, output_dim: int):
                super().__init__()
                self.positional_embedding = nn.Parameter(torch.randn(embed_dim, spacial_dim * 5 + 1))
                self.qkv_proj = nn.Conv1d(embed_dim, 3 * embed_dim, 1)
                self.c_proj = nn.Conv1d(embed_dim, output_dim, 1)

            def forward(self, x):
                b, c, *_spatial = x.shape
                x = x.reshape(b, c, -1)
                x = torch.cat([x.mean(dim=-1, keepdim=True), x], dim=-1)
                x = x + self.positional_embedding[None, :, :]
                q, k, v = self.qkv_proj(x).chunk(3, dim=1)
                return self.c_proj(v)
    """)
    assert errors(report) == []
    note = next(f for f in report.findings if "AttentionPool2d" in f.message and "made up" in f.message)
    assert "not as an error" in note.message and "do not broadcast" in note.message


def test_a_multiplier_list_is_assumed_one_per_level(workspace):
    # flux's and ldm's `ch_mult: list[int]`: `len(ch_mult)` levels, each `ch * ch_mult[i]` wide.
    report = probe(workspace, """
        class Encoder(nn.Module):
            def __init__(self, in_channels: int, ch: int, ch_mult: list[int], attn_resolutions: list[int],
                         resolution: int):
                super().__init__()
                self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
                levels, block_in, res = [], ch, resolution
                for mult in ch_mult:
                    levels.append(nn.Conv2d(block_in, ch * mult, 3, stride=2, padding=1))
                    block_in, res = ch * mult, res // 2
                    if res in attn_resolutions:
                        levels.append(nn.Conv2d(block_in, block_in, 1))
                self.down = nn.Sequential(*levels)

            def forward(self, x):
                return self.down(self.conv_in(x))
    """)
    assert errors(report) == []
    assumed = next(c for c in report.classes if c.name == "Encoder").assumed_args
    mult = [int(v) for v in assumed["ch_mult"].strip("[]").split(",")]
    assert len(mult) > 1 and mult[0] == 1 and mult == sorted(mult)
    assert assumed["attn_resolutions"].startswith("[")
    shaped = {s.name for s in report.shapes if s.kind == "layer" and s.input_shape is not None}
    assert "self.conv_in" in shaped


def test_a_config_field_left_none_to_be_set_later_is_assumed_the_rest_kept(workspace):
    # makemore's `ModelConfig`: `block_size: int = None` and `vocab_size: int = None` are set from
    # the data later; `n_embd: int = 64` is the file's own value.
    report = probe(workspace, """
        from dataclasses import dataclass


        @dataclass
        class ModelConfig:
            block_size: int = None
            vocab_size: int = None
            n_embd: int = 48


        class Bigram(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.wte = nn.Embedding(config.vocab_size, config.n_embd)
                self.register_buffer("mask", torch.ones(config.block_size, config.block_size))
                self.head = nn.Linear(config.n_embd, config.vocab_size)

            def forward(self, idx):
                return self.head(self.wte(idx))
    """)
    assert errors(report) == []
    assumed = next(c for c in report.classes if c.name == "Bigram").assumed_args
    assert "config.block_size" in assumed and "config.vocab_size" in assumed and "config.n_embd" not in assumed
    assert shape_of(report, "self.head", "layer").input_shape[-1] == 48


def test_a_class_every_parameter_of_which_had_a_value_is_told_without_an_empty_list():
    # litgpt's MultiheadLatentAttention(config, block_idx): its call site gave both, its config
    # lacks `q_lora_rank`; the note said "no value for ; add `# shapelens: ...()`".
    from shapelens.probe.worker.construct import cannot_construct

    class LatentAttention:
        pass

    text = cannot_construct(LatentAttention, [], ["config", "block_idx"])
    assert "no value for" not in text and "`config`, `block_idx`" in text
    assert "`# shapelens: LatentAttention(...)`" in text
    assert "no value for `block_idx`" in cannot_construct(LatentAttention, ["block_idx"])
