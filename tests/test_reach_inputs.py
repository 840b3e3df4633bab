"""Forward inputs the probe makes up on its own for library-style blocks that nothing in the
workspace calls (issue 10, class 5): lengths instead of tensors, inputs that reach their first
layer through an einops pattern or an index, several targets, tied embeddings, and wrappers that
pass `*args, **kwargs` on. Each model is written here, after a pattern met in real modelling files."""

from __future__ import annotations

import textwrap

from helpers import shape_of
from test_library_inputs import errors, notes

HEAD = "import torch\nimport torch.nn as nn\n"

# A small stand-in for einops' `rearrange` (the test environment has no einops): the patterns the
# models below use, written with torch.
REARRANGE = '''
def rearrange(t, pattern, **axes):
    if pattern == "b n d -> (b n) d":
        return t.reshape(-1, t.shape[-1])
    if pattern == "b c (h p1) (w p2) -> b (h w) (p1 p2 c)":
        p1, p2 = axes["p1"], axes["p2"]
        b, c, hh, ww = t.shape
        t = t.reshape(b, c, hh // p1, p1, ww // p2, p2).permute(0, 2, 4, 3, 5, 1)
        return t.reshape(b, (hh // p1) * (ww // p2), p1 * p2 * c)
    raise KeyError(pattern)
'''


def probe(workspace, body: str, name: str = "m.py", prefix: str = "", **options):
    workspace.write(name, HEAD + prefix + textwrap.dedent(body))
    return workspace.check(name, **options)


def test_parameters_that_are_lengths_get_a_number(workspace):
    # A position bias is called with the query and key lengths, not tensors.
    report = probe(workspace, """
        class PositionBias(nn.Module):
            def __init__(self, dim, heads):
                super().__init__()
                self.mlp = nn.Sequential(nn.Linear(1, dim), nn.SiLU(), nn.Linear(dim, heads))

            def forward(self, i, j):
                pos = torch.arange(j - i, j).float().unsqueeze(-1)
                return self.mlp(pos).transpose(0, 1)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "nn.Linear", "layer").input_shape == [13, 1]
    assert not any("`i` of PositionBias" in n for n in notes(report))


def test_an_input_that_reaches_its_layer_through_a_pattern_keeping_its_last_axis(workspace):
    report = probe(workspace, prefix=REARRANGE, body="""
        class Gating(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.gru = nn.GRUCell(dim, dim)

            def forward(self, x, residual):
                out = self.gru(rearrange(x, "b n d -> (b n) d"), rearrange(residual, "b n d -> (b n) d"))
                return out.reshape_as(x)
    """)
    assert errors(report) == [], notes(report)
    gru = shape_of(report, "self.gru", "layer")
    assert (gru.input_shape, gru.output_shape) == ([17 * 13, 64], [17 * 13, 64])


def test_an_image_cut_into_patches_in_forward_is_fed_from_the_patch_layer(workspace):
    report = probe(workspace, prefix=REARRANGE, body="""
        class PatchEmbed(nn.Module):
            def __init__(self, patch_size=4, channels=3, dim=40):
                super().__init__()
                self.patch_size = patch_size
                self.to_embedding = nn.Sequential(nn.LayerNorm(patch_size * patch_size * channels),
                                                  nn.Linear(patch_size * patch_size * channels, dim))

            def forward(self, img):
                b, p = img.shape[0], self.patch_size
                x = rearrange(img, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
                return self.to_embedding(x)

        m = PatchEmbed()
    """)
    assert errors(report) == [], notes(report)
    lin = shape_of(report, "nn.Linear", "layer")
    assert lin.input_shape[-1] == 48 and len(lin.input_shape) == 3


def test_each_target_of_a_two_task_head_gets_its_own_layout(workspace):
    report = probe(workspace, """
        class PreTrainingHeads(nn.Module):
            def __init__(self, vocab=300, dim=32):
                super().__init__()
                self.wte = nn.Embedding(vocab, dim)
                self.lm = nn.Linear(dim, vocab)
                self.nsp = nn.Linear(dim, 2)

            def forward(self, input_ids=None, labels=None, next_sentence_label=None):
                h = self.wte(input_ids)
                scores, pair = self.lm(h), self.nsp(h[:, 0])
                if labels is not None and next_sentence_label is not None:
                    loss_fct = nn.CrossEntropyLoss()
                    return loss_fct(scores.view(-1, scores.size(-1)), labels.view(-1)) + loss_fct(
                        pair.view(-1, 2), next_sentence_label.view(-1))
                return scores, pair

        class SpanHead(nn.Module):
            def __init__(self, vocab=300, dim=32):
                super().__init__()
                self.wte = nn.Embedding(vocab, dim)
                self.qa = nn.Linear(dim, 2)

            def forward(self, input_ids=None, start_positions=None, end_positions=None):
                start, end = self.qa(self.wte(input_ids)).split(1, dim=-1)
                start, end = start.squeeze(-1), end.squeeze(-1)
                if start_positions is not None and end_positions is not None:
                    span_loss = nn.CrossEntropyLoss()
                    return span_loss(start, start_positions) + span_loss(end, end_positions)
                return start, end
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "loss_fct", "layer").input_shape == [17 * 13, 300]
    assert shape_of(report, "span_loss", "layer").input_shape == [17, 13]


def test_a_shared_embedding_tied_into_its_stacks_has_their_shapes(workspace):
    report = probe(workspace, """
        class Stack(nn.Module):
            def __init__(self, vocab, dim):
                super().__init__()
                self.embed_tokens = nn.Embedding(vocab, dim)
                self.norm = nn.LayerNorm(dim)

            def forward(self, input_ids):
                return self.norm(self.embed_tokens(input_ids))

        class Encoder(nn.Module):
            def __init__(self, vocab=100, dim=32):
                super().__init__()
                self.shared = nn.Embedding(vocab, dim)
                self.stack = Stack(vocab, dim)
                self.stack.embed_tokens.weight = self.shared.weight  # tied: one table

            def forward(self, input_ids):
                return self.stack(input_ids)

        m = Encoder()
    """)
    assert errors(report) == [], notes(report)
    shared = shape_of(report, "self.shared", "layer")
    assert (shared.input_shape, shared.output_shape) == ([17, 13], [17, 13, 32])
    assert not any("self.shared" in n for n in notes(report))


def test_a_wrapper_passing_args_and_kwargs_on_is_fed_what_its_inner_module_takes(workspace):
    report = probe(workspace, """
        class Decoder(nn.Module):
            def __init__(self, vocab=100, dim=32):
                super().__init__()
                self.embed_tokens = nn.Embedding(vocab, dim)
                self.out = nn.Linear(dim, vocab)

            def forward(self, input_ids=None, inputs_embeds=None):
                if inputs_embeds is None:
                    inputs_embeds = self.embed_tokens(input_ids)
                return self.out(inputs_embeds)

        class DecoderWrapper(nn.Module):
            def __init__(self):
                super().__init__()
                self.decoder = Decoder()

            def forward(self, *args, **kwargs):
                return self.decoder(*args, **kwargs)

        m = DecoderWrapper()
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.out", "layer").input_shape == [17, 13, 32]
    assert not any("DecoderWrapper" in n for n in notes(report)), notes(report)


def test_an_encoder_decoder_with_its_own_encoder_input_gets_decoder_ids_too(workspace):
    # The encoder reads features, the decoder ids: both are optional, and the decoder refuses
    # to run without one of its two alternative inputs.
    report = probe(workspace, """
        class SpeechToText(nn.Module):
            def __init__(self, mels=20, vocab=100, dim=32):
                super().__init__()
                self.conv = nn.Conv1d(mels, dim, 3, padding=1)
                self.embed_tokens = nn.Embedding(vocab, dim)
                self.proj_out = nn.Linear(dim, vocab)

            def forward(self, input_features=None, decoder_input_ids=None, decoder_inputs_embeds=None):
                memory = self.conv(input_features).mean(-1, keepdim=True).transpose(1, 2)
                if (decoder_input_ids is None) == (decoder_inputs_embeds is None):
                    raise ValueError("give exactly one of decoder_input_ids and decoder_inputs_embeds")
                if decoder_inputs_embeds is None:
                    decoder_inputs_embeds = self.embed_tokens(decoder_input_ids)
                return self.proj_out(decoder_inputs_embeds + memory)

        m = SpeechToText()
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.proj_out", "layer").input_shape == [17, 13, 32]


def test_a_block_taking_its_activation_by_name_and_its_widths_as_a_tuple_is_built(workspace):
    # Nothing builds it; the activation is a string looked up in a table the class never compares.
    report = probe(workspace, """
        ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU}

        class TinyEncoder(nn.Module):
            def __init__(self, in_channels: int, block_out_channels: tuple[int, ...], act_fn: str):
                super().__init__()
                layers, width = [], in_channels
                for out in block_out_channels:
                    layers += [nn.Conv2d(width, out, 3, padding=1), ACTIVATIONS[act_fn]()]
                    width = out
                self.layers = nn.Sequential(*layers)

            def forward(self, x):
                return self.layers(x)
    """)
    assert errors(report) == [], notes(report)
    conv = shape_of(report, "nn.Conv2d", "layer")
    assert conv.input_shape is not None and conv.output_shape is not None
    assert not any("cannot construct" in n for n in notes(report)), notes(report)


def test_a_pooler_reading_the_first_token_takes_a_sequence(workspace):
    report = probe(workspace, """
        class Pooler(nn.Module):
            def __init__(self, hidden_size=48):
                super().__init__()
                self.dense = nn.Linear(hidden_size, hidden_size)

            def forward(self, hidden_states):
                return torch.tanh(self.dense(hidden_states[:, 0]))

        class NamedPooler(nn.Module):
            def __init__(self, hidden_size=48):
                super().__init__()
                self.proj = nn.Linear(hidden_size, hidden_size)

            def forward(self, hidden_states):
                first_token = hidden_states[:, 0]
                return torch.tanh(self.proj(first_token))
    """)
    assert errors(report) == [], notes(report)
    for name in ("self.dense", "self.proj"):
        dense = shape_of(report, name, "layer")
        assert (dense.input_shape, dense.output_shape) == ([17, 48], [17, 48])
    assert not any("hidden_states" in n for n in notes(report)), notes(report)


def test_an_image_rescaled_before_its_first_layer_is_fed_from_that_layer(workspace):
    report = probe(workspace, """
        class Rescaled(nn.Module):
            def __init__(self, in_channels=3, width=16):
                super().__init__()
                self.layers = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
                self.head = nn.Conv2d(width, 1, 1)

            def forward(self, x):
                x = self.layers(x.add(1).div(2))
                return self.head(x * 2 - 1)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "nn.Conv2d", "layer").input_shape[:2] == [17, 3]


def test_an_input_held_under_another_name_by_a_default_helper_is_followed(workspace):
    report = probe(workspace, """
        def default(value, fallback):
            return value if value is not None else fallback

        class Pool(nn.Module):
            def __init__(self, dim=32, dim_context=24):
                super().__init__()
                self.queries = nn.Parameter(torch.randn(1, dim))
                self.to_k = nn.Linear(dim_context, dim)

            def forward(self, context, x=None):
                kv_input = default(context, x)
                q_input, k_input = self.queries, kv_input
                k = self.to_k(k_input)
                return (q_input @ k.transpose(-1, -2)).softmax(-1)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.to_k", "layer").input_shape[-1] == 24


def test_a_channels_first_input_flattened_channels_last_to_a_codebook_width(workspace):
    report = probe(workspace, """
        class Quantizer(nn.Module):
            def __init__(self, n_codes=64, code_dim=24):
                super().__init__()
                self.code_dim = code_dim
                self.codebook = nn.Embedding(n_codes, code_dim)

            def forward(self, z):
                z = z.permute(0, 2, 3, 1).contiguous()
                flat = z.view(-1, self.code_dim)
                idx = torch.cdist(flat, self.codebook.weight).argmin(dim=1)
                return self.codebook(idx).view(z.shape).permute(0, 3, 1, 2)
    """)
    assert errors(report) == [], notes(report)
    assert not any("`z` of Quantizer" in n for n in notes(report)), notes(report)
    assert shape_of(report, "self.codebook", "layer").output_shape[-1] == 24


def test_a_head_tied_to_the_embedding_by_a_functional_call_takes_the_weight_width(workspace):
    report = probe(workspace, """
        import torch.nn.functional as F

        class TiedHead(nn.Module):
            def __init__(self, vocab=300, dim=40):
                super().__init__()
                self.wte = nn.Embedding(vocab, dim)
                self.out_norm = nn.LayerNorm(vocab)

            def forward(self, hidden):
                return self.out_norm(F.linear(hidden, self.wte.weight))

        class NormedConv(nn.Module):
            def __init__(self, dim_in=6, dim_out=8):
                super().__init__()
                self.weight = nn.Parameter(torch.randn(dim_out, dim_in, 3, 3))
                self.bn = nn.BatchNorm2d(dim_out)

            def forward(self, x):
                weight = self.weight / self.weight.norm()
                return self.bn(F.conv2d(x, weight, padding=1))
    """)
    assert errors(report) == [], notes(report)
    assert not any("`hidden` of TiedHead" in n or "`x` of NormedConv" in n for n in notes(report)), notes(report)
    assert shape_of(report, "self.bn", "layer").input_shape[:2] == [17, 8]
    assert shape_of(report, "self.out_norm", "layer").input_shape[-1] == 300


def test_a_block_led_by_pooling_takes_what_the_block_after_it_takes(workspace):
    report = probe(workspace, """
        class TwoConvs(nn.Module):
            def __init__(self, in_channels, out_channels):
                super().__init__()
                self.convs = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(),
                                           nn.Conv2d(out_channels, out_channels, 3, padding=1))

            def forward(self, x):
                return self.convs(x)

        class Down(nn.Module):
            def __init__(self, in_channels, out_channels):
                super().__init__()
                self.pool_conv = nn.Sequential(nn.MaxPool2d(2), TwoConvs(in_channels, out_channels))

            def forward(self, x):
                return self.pool_conv(x)
    """)
    assert errors(report) == [], notes(report)
    assert not any("`x` of Down" in n for n in notes(report)), notes(report)
    pool = shape_of(report, "nn.MaxPool2d", "layer")
    assert pool.input_shape is not None and pool.output_shape is not None


def test_a_buffer_made_off_the_meta_device_meeting_one_on_it_is_a_probe_limit_not_an_error(workspace):
    # `torch.Tensor(list)` in __init__ makes a CPU buffer; the bias built from the made-up lengths
    # is on the meta device: real code runs both on one device.
    report = probe(workspace, """
        class Alibi(nn.Module):
            def __init__(self, heads=4):
                super().__init__()
                slopes = torch.Tensor([0.5 ** (i + 1) for i in range(heads)])
                self.register_buffer("slopes", slopes.view(heads, 1, 1), persistent=False)
                self.proj = nn.Linear(heads, heads)

            def forward(self, i, j):
                dev = self.slopes.device
                rel = torch.arange(j, device=dev)[None, :] - torch.arange(j - i, j, device=dev)[:, None]
                return self.proj((-rel.abs() * self.slopes).permute(1, 2, 0))
    """)
    assert errors(report) == []
    assert any("expected device meta" in n for n in notes(report)), notes(report)


def test_a_classifier_choosing_its_loss_by_the_targets_dtype_gets_both_losses_shaped(workspace):
    report = probe(workspace, """
        class Config:
            def __init__(self):
                self.problem_type = None

        class Classifier(nn.Module):
            def __init__(self, vocab=300, dim=32, num_labels=3):
                super().__init__()
                self.config = Config()
                self.num_labels = num_labels
                self.wte = nn.Embedding(vocab, dim)
                self.head = nn.Linear(dim, num_labels)

            def forward(self, input_ids=None, labels=None):
                logits = self.head(self.wte(input_ids).mean(1))
                if labels is None:
                    return logits
                if self.config.problem_type is None:
                    self.config.problem_type = "single" if labels.dtype == torch.long else "multi"
                if self.config.problem_type == "single":
                    ce_loss = nn.CrossEntropyLoss()
                    return ce_loss(logits, labels)
                bce_loss = nn.BCEWithLogitsLoss()
                return bce_loss(logits, labels)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "ce_loss", "layer").input_shape == [17, 3]
    assert shape_of(report, "bce_loss", "layer").input_shape == [17, 3]


CHANNEL_CHECKED = """
    class PatchEmbeddings(nn.Module):
        def __init__(self, num_channels=3, hidden=32, patch=4):
            super().__init__()
            self.num_channels = num_channels
            self.proj = nn.Conv2d({channels}, hidden, kernel_size=patch, stride=patch)

        def forward(self, pixel_values):
            if pixel_values.shape[1] != self.num_channels:
                raise ValueError("Make sure the channel dimension of the pixel values matches the configuration."
                                 f" Expected {{self.num_channels}} but got {{pixel_values.shape[1]}}.")
            return self.proj(pixel_values).flatten(2).transpose(1, 2)
"""


def test_a_first_layer_wider_than_the_models_own_channel_check_is_the_error(workspace):
    # The input follows the first layer (6 channels); the model's own check names the 3 it
    # expects, so the probe feeds 3 and the layer declared for 6 gets the error, on its argument.
    report = probe(workspace, CHANNEL_CHECKED.format(channels="num_channels * 2"))
    (err,) = errors(report)
    line = next(i for i, t in enumerate((HEAD + textwrap.dedent(CHANNEL_CHECKED)).splitlines()) if "nn.Conv2d" in t)
    assert err.range["start"]["line"] == line
    assert err.fixes and [e.new_text for e in err.fixes[0].edits] == ["num_channels"]
    # The consistent model is probed clean, with a shape.
    clean = probe(workspace, CHANNEL_CHECKED.format(channels="num_channels"))
    assert errors(clean) == [], notes(clean)
    assert shape_of(clean, "self.proj", "layer").input_shape is not None
