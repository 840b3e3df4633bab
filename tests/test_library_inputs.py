"""Library-style models (config objects, optional inputs, input checks) that the probe builds and
feeds on its own: each pattern of issue 10 that stopped a real modelling file, in a model written
here."""

from __future__ import annotations

import textwrap

from helpers import errors, probe, shape_of


def notes(report):
    return [f.message for f in report.findings if f.code == "probe-incomplete"]


def test_positions_over_the_assumed_length_can_be_branched_on(workspace):
    # A library's mask helper asks `(positions[:, -1] == 0).all()` of positions made with
    # torch.arange over the made-up sequence length: the meta device has no values for that.
    report = probe(workspace, """
        class Decoder(nn.Module):
            def __init__(self, vocab=500, dim=48):
                super().__init__()
                self.tok = nn.Embedding(vocab, dim)
                self.pos = nn.Embedding(64, dim)
                self.head = nn.Linear(dim, vocab)

            def forward(self, ids):
                positions = torch.arange(ids.shape[1]).unsqueeze(0)
                if (positions[:, -1] == 0).all():
                    positions = positions + 1
                return self.head(self.tok(ids) + self.pos(positions))
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.head", "layer").output_shape == [17, 13, 500]


def test_unannotated_config_is_the_imported_config_class_not_an_output_dataclass(workspace):
    workspace.write("configuration_tiny.py", textwrap.dedent("""
        from dataclasses import dataclass

        @dataclass
        class TinyConfig:
            hidden_size: int = 40
            num_labels: int = 3
    """))
    report = probe(workspace, """
        from dataclasses import dataclass
        from typing import Optional
        from configuration_tiny import TinyConfig

        @dataclass
        class TinyOutput:
            logits: Optional[torch.Tensor] = None

        class TinyClassifier(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.proj = nn.Linear(config.hidden_size, config.num_labels)

            def forward(self, hidden_states):
                return TinyOutput(self.proj(hidden_states))
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.proj", "layer").output_shape[-1] == 3


def test_a_module_logger_does_not_stop_init(workspace):
    report = probe(workspace, """
        import logging

        logger = logging.getLogger(__name__)

        class Head(nn.Module):
            def __init__(self, dim=32, standalone=False):
                super().__init__()
                if not standalone:
                    logger.warning("use Head inside a Body")
                self.fc = nn.Linear(dim, 8)

            def forward(self, x):
                return self.fc(x)
    """)
    assert not any("logger" in m for m in notes(report)), notes(report)
    assert shape_of(report, "self.fc", "layer").output_shape == [17, 8]


def test_an_optional_input_forward_uses_anyway_is_made_up(workspace):
    # `context=None` in the signature, used unconditionally: calling without it fails on None,
    # which is the probe's doing, so it makes that input up too (a sequence, like the main one).
    report = probe(workspace, """
        class CrossAttention(nn.Module):
            def __init__(self, dim=64, heads=4):
                super().__init__()
                self.heads = heads
                self.q = nn.Linear(dim, dim)
                self.kv = nn.Linear(dim, 2 * dim)
                self.out = nn.Linear(dim, dim)

            def forward(self, hidden_states, context=None, mask=None):
                b, n, _ = hidden_states.shape
                q = self.q(hidden_states).view(b, n, self.heads, -1).transpose(1, 2)
                k, v = self.kv(context).chunk(2, dim=-1)
                k = k.view(*context.shape[:-1], self.heads, -1).transpose(1, 2)
                v = v.view(*context.shape[:-1], self.heads, -1).transpose(1, 2)
                attn = (q @ k.transpose(-1, -2)).softmax(-1)
                return self.out((attn @ v).transpose(1, 2).reshape(b, n, -1))
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.kv", "layer").input_shape == [17, 13, 64]
    assert shape_of(report, "self.out", "layer").output_shape == [17, 13, 64]


def test_a_mismatch_behind_a_needed_optional_input_is_still_reported(workspace):
    report = probe(workspace, """
        class Fuse(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(32, 48)
                self.b = nn.Linear(40, 8)

            def forward(self, x, extra=None):
                return self.b(self.a(x) * self.a(extra).sigmoid())
    """)
    errs = errors(report)
    assert len(errs) == 1 and "40" in errs[0].message, [(f.code, f.message) for f in report.findings]


def test_the_size_a_rejection_asks_for_is_tried(workspace):
    # The model checks its input size itself (raise ValueError): that rejects the made-up
    # input, it is no error, and the size the message names is tried next.
    report = probe(workspace, """
        class PatchEmbed(nn.Module):
            def __init__(self, image_size=160, patch=16, dim=64):
                super().__init__()
                self.image_size = image_size
                self.proj = nn.Conv2d(3, dim, patch, stride=patch)
                self.norm = nn.LayerNorm(dim)

            def forward(self, pixel_values):
                h, w = pixel_values.shape[-2:]
                if h != self.image_size or w != self.image_size:
                    raise ValueError(f"Input image size ({h}*{w}) doesn't match model "
                                     f"({self.image_size}*{self.image_size}).")
                return self.norm(self.proj(pixel_values).flatten(2).transpose(1, 2))
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.proj", "layer").input_shape == [17, 3, 160, 160]
    assert shape_of(report, "self.norm", "layer").output_shape == [17, 100, 64]


def test_a_sequential_led_by_padding_takes_what_its_first_convolution_takes(workspace):
    report = probe(workspace, """
        class Stem(nn.Module):
            def __init__(self, channels=3, width=32):
                super().__init__()
                self.body = nn.Sequential(nn.ReflectionPad2d(3), nn.LeakyReLU(0.2), nn.Conv2d(channels, width, 7),
                                          nn.InstanceNorm2d(width))

            def forward(self, x):
                return x.mean() + self.body(x)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "nn.Conv2d", "layer").input_shape == [17, 3, 34, 34]  # 28x28, padded by 3


def test_a_decoder_layer_gets_its_memory_in_the_layout_of_its_target(workspace):
    # `memory` reaches only nn.MultiheadAttention's value (sequence-first), `tgt` a LayerNorm
    # first in a branch not taken: both are made up [T, B, E], so they meet in one layout.
    report = probe(workspace, """
        from typing import Optional

        class DecoderLayer(nn.Module):
            def __init__(self, d_model, nhead, pre_norm=False):
                super().__init__()
                self.pre_norm = pre_norm
                self.self_attn = nn.MultiheadAttention(d_model, nhead)
                self.cross = nn.MultiheadAttention(d_model, nhead)
                self.norm = nn.LayerNorm(d_model)

            def with_pos(self, t, pos: Optional[torch.Tensor]):
                return t if pos is None else t + pos

            def forward_pre(self, tgt, memory, pos):
                t = self.norm(tgt)
                t = t + self.self_attn(t, t, value=t)[0]
                return self.cross(query=t, key=self.with_pos(memory, pos), value=memory)[0]

            def forward_post(self, tgt, memory, pos):
                t = self.norm(tgt + self.self_attn(tgt, tgt, value=tgt)[0])
                return self.cross(query=t, key=self.with_pos(memory, pos), value=memory)[0]

            def forward(self, tgt, memory, pos: Optional[torch.Tensor] = None):
                if self.pre_norm:
                    return self.forward_pre(tgt, memory, pos)
                return self.forward_post(tgt, memory, pos)
    """)
    assert errors(report) == [], [(f.code, f.message) for f in report.findings]
    assert shape_of(report, "self.cross", "layer").input_shape == [13, 17, 64]


def test_an_unset_option_of_an_assumed_config_is_none(workspace):
    # `config` has no class in the file; its widths are assumed by name, and an option no rule
    # knows (`preset`) is None when it must be: given exactly one of a preset or the widths.
    report = probe(workspace, """
        PRESETS = {"tiny": dict(n_embd=32)}

        class LM(nn.Module):
            def __init__(self, config):
                super().__init__()
                assert (config.preset is not None) ^ (config.n_embd is not None)
                width = PRESETS[config.preset]["n_embd"] if config.preset is not None else config.n_embd
                self.wte = nn.Embedding(config.vocab_size, width)
                self.head = nn.Linear(width, config.vocab_size)

            def forward(self, idx):
                return self.head(self.wte(idx))
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.head", "layer").output_shape[:2] == [17, 13]
    assert any("config.preset=None" in m for m in notes(report)), notes(report)


def test_targets_are_made_up_once_forward_runs_clean_so_the_loss_gets_a_shape(workspace):
    report = probe(workspace, """
        from torch.nn import CrossEntropyLoss

        class Classifier(nn.Module):
            def __init__(self, vocab=300, dim=32, num_labels=3):
                super().__init__()
                self.num_labels = num_labels
                self.wte = nn.Embedding(vocab, dim)
                self.head = nn.Linear(dim, num_labels)

            def forward(self, input_ids=None, labels=None):
                logits = self.head(self.wte(input_ids).mean(1))
                loss = None
                if labels is not None:
                    loss_fct = CrossEntropyLoss()
                    loss = loss_fct(logits.view(-1, self.num_labels), labels.view(-1))
                return loss, logits

        class Tagger(nn.Module):
            def __init__(self, vocab=300, dim=32):
                super().__init__()
                self.wte = nn.Embedding(vocab, dim)
                self.head = nn.Linear(dim, vocab)
                self.loss = nn.CrossEntropyLoss()

            def forward(self, idx, targets=None):
                logits = self.head(self.wte(idx))
                if targets is None:
                    return logits
                return logits, self.loss(logits.view(-1, logits.size(-1)), targets.view(-1))
    """)
    assert errors(report) == [], notes(report)
    # per example ([B] targets: the [B, T] try failed and was taken back whole), per token
    loss_fct = shape_of(report, "loss_fct", "layer")
    assert (loss_fct.input_shape, loss_fct.output_shape) == ([17, 3], [])
    assert shape_of(report, "self.loss", "layer").input_shape == [17 * 13, 300]


def test_a_residual_mismatch_is_told_on_the_producer_with_its_own_expression(workspace):
    # Under an assumed config the producer's fix is `config.n_embd` (a part of its own text),
    # which both assumptions propose alike; a literal would be dropped as an assumed number.
    report = probe(workspace, """
        class Attn(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.c_attn = nn.Linear(config.n_embd, config.n_embd)
                self.c_proj = nn.Linear(config.n_embd, (config.n_embd) * 2)

            def forward(self, x):
                return self.c_proj(self.c_attn(x))

        class Block(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.ln_1 = nn.LayerNorm(config.n_embd)
                self.attn = Attn(config)

            def forward(self, x):
                return x + self.attn(self.ln_1(x))
    """)
    errs = errors(report)
    assert len(errs) == 1, [(f.code, f.message) for f in report.findings]
    text = (workspace.root / "m.py").read_text()
    assert text.splitlines()[errs[0].range["start"]["line"]].strip().startswith("self.c_proj")
    assert [e.new_text for e in errs[0].fixes[0].edits] == ["config.n_embd"]


def test_a_mismatch_whose_only_fix_wrote_an_assumed_number_is_reported_without_one(workspace):
    report = probe(workspace, """
        class Residual(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.proj = nn.Linear(config.dim, 128)

            def forward(self, x):
                return x + self.proj(x)
    """)
    assert not any("internal probe error" in m for m in notes(report)), notes(report)
    assert len(errors(report)) == 1, [(f.code, f.message) for f in report.findings]


def test_an_indexed_module_list_in_a_range_loop_takes_the_input_of_its_first_entry(workspace):
    # ConvNeXt's `for i in range(4): x = self.downsample_layers[i](x)`: the input is the stem's
    # [B, 3, H, W], not the final norm's [B, 64] (which made a false rank error).
    report = probe(workspace, """
        class Net(nn.Module):
            def __init__(self, in_chans=3, dims=(16, 32, 64)):
                super().__init__()
                self.downsample_layers = nn.ModuleList([nn.Conv2d(in_chans, dims[0], 4, stride=4)])
                for i in range(2):
                    self.downsample_layers.append(nn.Conv2d(dims[i], dims[i + 1], 2, stride=2))
                self.stages = nn.ModuleList([nn.Conv2d(d, d, 3, padding=1) for d in dims])
                self.norm = nn.LayerNorm(dims[-1])
                self.head = nn.Linear(dims[-1], 10)

            def forward(self, x):
                for i in range(3):
                    x = self.downsample_layers[i](x)
                    x = self.stages[i](x)
                return self.head(self.norm(x.mean([-2, -1])))
    """)
    assert errors(report) == []
    first = next(s for s in report.shapes if s.kind == "layer" and s.input_shape and s.input_shape[1:2] == [3])
    assert len(first.input_shape) == 4
    assert shape_of(report, "self.head", "layer").output_shape[-1] == 10


def test_a_nested_indexed_module_list_takes_the_input_of_its_first_entry(workspace):
    # stable-diffusion's UpsampleDecoder: `h = self.res_blocks[i_level][i_block](h, None)`, then
    # `h = self.upsample_blocks[k](h)`. The input is what the first block takes (in_channels), not
    # what the upsampler after it takes (which made three false errors in the block).
    report = probe(workspace, """
        class Block(nn.Module):
            def __init__(self, c_in, c_out):
                super().__init__()
                self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

            def forward(self, x, temb):
                return self.conv(x)


        class Decoder(nn.Module):
            def __init__(self, in_channels=8, ch=16, levels=2):
                super().__init__()
                self.levels = levels
                self.res_blocks = nn.ModuleList()
                self.upsample_blocks = nn.ModuleList()
                c = in_channels
                for i in range(levels):
                    self.res_blocks.append(nn.ModuleList([Block(c, ch * 2), Block(ch * 2, ch * 2)]))
                    c = ch * 2
                    self.upsample_blocks.append(nn.ConvTranspose2d(c, c, 2, stride=2))

            def forward(self, x):
                h = x
                for k, i_level in enumerate(range(self.levels)):
                    for i_block in range(2):
                        h = self.res_blocks[i_level][i_block](h, None)
                    h = self.upsample_blocks[k](h)
                return h
    """)
    assert errors(report) == []
    conv = shape_of(report, "self.conv", "layer")
    assert conv.input_shape[1] == 8 and conv.output_shape[1] == 32


def test_a_class_whose_own_check_rejects_its_defaults_gets_a_note_not_an_error(workspace):
    # SimMIM's `class SwinForSimMIM(Swin): ... assert self.num_classes == 0` with the base's
    # default of 1000: nobody chose that value.
    report = probe(workspace, """
        class Backbone(nn.Module):
            def __init__(self, width=32, num_classes=1000):
                super().__init__()
                self.num_classes = num_classes
                self.body = nn.Linear(width, width)

            def forward(self, x):
                return self.body(x)


        class ForPretraining(Backbone):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                assert self.num_classes == 0
                self.mask = nn.Linear(32, 32)

            def forward(self, x):
                return self.mask(self.body(x))
    """)
    assert errors(report) == []
    note = next(f for f in report.findings if "rejects its own defaults" in f.message)
    assert "`assert self.num_classes == 0`" in note.message and "ForPretraining" in note.message


# DiT's LabelEmbedder: labels are [N]; `torch.rand(labels.shape[0])` and `torch.where` with them.
LABEL_EMBEDDER = """
    class LabelEmbedder(nn.Module):
        def __init__(self, num_classes=10, hidden=32):
            super().__init__()
            self.num_classes = num_classes
            self.table = nn.Embedding(num_classes + 1, hidden)

        def token_drop(self, labels):
            drop_ids = torch.rand(labels.shape[0], device=labels.device) < 0.1
            return torch.where(drop_ids, self.num_classes, labels)

        def forward(self, labels, train=True):
            if train:
                labels = self.token_drop(labels)
            return self.table(labels)
"""


def test_ids_that_an_embedding_takes_may_be_class_labels_of_one_dim(workspace):
    # DiT's LabelEmbedder: labels are [N], and `torch.where(drop_ids, n, labels)` with
    # `torch.rand(labels.shape[0])`; made up as an Embedding's [B, T] they do not broadcast.
    # The rank search tries [B] too.
    report = probe(workspace, LABEL_EMBEDDER)
    assert errors(report) == []
    table = shape_of(report, "self.table", "layer")
    assert len(table.input_shape) == 1 and table.output_shape[-1] == 32


def test_only_an_op_between_the_made_up_sizes_themselves_is_taken_for_the_guess():
    # DiT's labels made up [17, 13] against `torch.rand(labels.shape[0])`: "length 13 ... [17, 13]
    # ... broadcastable to [1, 17]" names both made-up sizes and no width explains it. A made-up
    # size against a width (`q(x) @ k(x)`: inner dims 64 and 13), or one a fix explains, is the file's.
    from shapelens.probe.worker.madeup import made_up_only
    from shapelens.probe.worker.probing import ASSUMED

    def finding(message, fixes=()):
        return {"code": "shape-error", "message": message, "fixes": list(fixes), "alts": []}

    dit = "Attempting to broadcast a dimension of length 13 at -1! had torch.Size([17, 13]); expected [1, 17]"
    assert made_up_only(finding(dit), ASSUMED)
    assert not made_up_only(finding("[B, T, 64] @ [B, T, 64]: inner dims 64 and 13 differ"), ASSUMED)
    assert not made_up_only(finding(dit, [{"title": "Change", "edits": [{"new_text": "hidden"}]}]), ASSUMED)
    assert not made_up_only({**finding(dit), "code": "feature-mismatch"}, ASSUMED)


def test_a_hinted_input_keeps_such_a_mismatch_an_error(workspace):
    report = probe(workspace, """
        class Pairs(nn.Module):
            def __init__(self, vocab=10, hidden=32):
                super().__init__()
                self.table = nn.Embedding(vocab, hidden)

            def forward(self, ids):  # shapelens: ids=long[4,6]
                weights = torch.rand(ids.shape[0], ids.shape[0])
                return self.table(ids).sum(-1) * weights
    """)
    assert [f.code for f in errors(report)] == ["shape-error"]


def test_a_class_whose_defaults_fail_in_a_library_is_told_at_its_own_line(workspace):
    # mae's `np.arange(..., dtype=np.float)` under numpy 2: numpy's own `raise` is not the class
    # rejecting its defaults; the note names the user's line that reached it.
    report = probe(workspace, """
        import statistics


        class Scaled(nn.Module):
            def __init__(self, dim=16, weights=()):
                super().__init__()
                self.scale = statistics.mean(weights)
                self.fc = nn.Linear(dim, dim)

            def forward(self, x):
                return self.fc(x) * self.scale
    """)
    assert errors(report) == []
    note = next(f for f in report.findings if "its own defaults" in f.message)
    assert "cannot be built from its own defaults (m.py:" in note.message
    assert "`self.scale = statistics.mean(weights)` raises" in note.message


def test_an_input_through_an_elementwise_function_takes_the_layer_s_width(workspace):
    # flux's Modulation: `self.lin(nn.functional.silu(vec))[:, None, :].chunk(3, dim=-1)`.
    report = probe(workspace, """
        class Modulation(nn.Module):
            def __init__(self, dim: int, double: bool):
                super().__init__()
                self.multiplier = 6 if double else 3
                self.lin = nn.Linear(dim, self.multiplier * dim, bias=True)

            def forward(self, vec):
                return self.lin(nn.functional.silu(vec))[:, None, :].chunk(self.multiplier, dim=-1)
    """)
    assert errors(report) == []
    lin = shape_of(report, "self.lin", "layer")
    assert lin.input_shape is not None and lin.output_shape[-1] == 3 * lin.input_shape[-1]


def test_an_input_renamed_through_a_dtype_change_is_followed(workspace):
    # guided-diffusion's UNetModel: `h = x.type(self.dtype)`, then `for module in self.input_blocks:
    # h = module(h, emb)` into a Sequential subclass led by its conv.
    report = probe(workspace, """
        class EmbedSequential(nn.Sequential):
            def forward(self, x, emb):
                for layer in self:
                    x = layer(x)
                return x


        class UNet(nn.Module):
            def __init__(self, in_channels=3, ch=32):
                super().__init__()
                self.dtype = torch.float32
                self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(in_channels, ch, 3, padding=1)),
                                                   EmbedSequential(nn.Conv2d(ch, ch, 3, stride=2, padding=1))])

            def forward(self, x, emb=None):
                h = x.type(self.dtype)
                for module in self.input_blocks:
                    h = module(h, emb)
                return h
    """)
    assert errors(report) == []
    first = next(s for s in report.shapes if s.kind == "layer" and s.input_shape and s.input_shape[1:2] == [3])
    assert len(first.input_shape) == 4


def test_class_labels_beside_an_image_are_made_up_as_one_per_example(workspace):
    # DiT's `forward(self, x, t, y)`: `y` reaches a LabelEmbedder whose body takes it as [N]; the
    # image's size search alone kept it [B, T] and stopped forward there.
    report = probe(workspace, LABEL_EMBEDDER + """

    class Net(nn.Module):
        def __init__(self, hidden=32):
            super().__init__()
            self.stem = nn.Conv2d(3, hidden, 4, stride=4)
            self.y_embedder = LabelEmbedder(10, hidden)
            self.head = nn.Linear(hidden, 10)

        def forward(self, x, y):
            h = self.stem(x).mean(dim=(2, 3))
            return self.head(h + self.y_embedder(y, self.training))
    """)
    assert errors(report) == []
    assert shape_of(report, "self.head", "layer").input_shape is not None


def test_a_made_up_size_against_a_width_stays_an_error(workspace):
    # A missing transpose: `q(x) @ k(x)` with [B, T, 64] each is wrong whatever the input is.
    report = probe(workspace, """
        class Scores(nn.Module):
            def __init__(self, dim=64):
                super().__init__()
                self.q = nn.Linear(dim, dim)
                self.k = nn.Linear(dim, dim)

            def forward(self, x):
                return self.q(x) @ self.k(x)
    """)
    assert len(errors(report)) == 1
