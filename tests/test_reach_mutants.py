"""One-width slips in library-style classes (nothing builds them: their arguments are assumed)
are reported on the argument that is wrong, with a fix that makes the file consistent again."""

from __future__ import annotations

from test_breadth import assert_fix_cleans, only_error, probe, text_at


def test_the_mismatch_lands_on_the_producer_whose_width_differs_from_the_rest(workspace):
    # fc1's out_features and fc2's in_features disagree; fixing either makes the file consistent.
    # Every other width is written `hidden`: the odd `hidden * 3` is taken for the slip.
    report = probe(workspace, """
        class Mixer(nn.Module):
            def __init__(self, dim, hidden):
                super().__init__()
                self.norm = nn.LayerNorm(dim)
                self.fc1 = nn.Linear(dim, hidden * 3)
                self.act = nn.GELU()
                self.fc2 = nn.Linear(hidden, dim)
                self.gate = nn.Linear(dim, hidden)
                self.out = nn.Linear(hidden, dim)

            def forward(self, x):
                h = self.fc2(self.act(self.fc1(self.norm(x))))
                return self.out(self.gate(h)) + x
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "hidden * 3"
    assert err.fixes[0].edits[0].new_text == "hidden"
    assert_fix_cleans(workspace, err)


def test_the_consumer_is_fixed_when_it_is_the_odd_one(workspace):
    report = probe(workspace, """
        class Head(nn.Module):
            def __init__(self, dim, hidden):
                super().__init__()
                self.proj = nn.Linear(dim, hidden)
                self.mid = nn.Linear(hidden, hidden)
                self.back = nn.Linear(hidden * 2, dim)

            def forward(self, x):
                return self.back(self.mid(self.proj(x)))
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "hidden * 2"
    assert err.fixes[0].edits[0].new_text == "hidden"
    assert_fix_cleans(workspace, err)


def test_an_image_size_the_model_rejects_does_not_hide_the_width_error_of_the_next_size(workspace):
    # 28 is the first side the size search tries: the patch check rejects it. At 32 the probe runs
    # into the wrong width (and stops at the residual add): that, not the rejection, is reported.
    report = probe(workspace, """
        class PatchNet(nn.Module):
            def __init__(self, dim, patch):
                super().__init__()
                self.patch = patch
                self.embed = nn.Conv2d(3, dim * 2, patch, stride=patch)
                self.norm = nn.LayerNorm(dim)
                self.pos = nn.Parameter(torch.zeros(1, 1, dim))

            def forward(self, img):
                if img.shape[-1] % 8:
                    raise ValueError("image size must be a multiple of the patch size")
                x = self.embed(img).flatten(2).transpose(1, 2)
                x = self.norm(x)
                return x + self.pos
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "dim * 2"
    assert not any("rejects the inputs" in f.message for f in report.findings)
    assert_fix_cleans(workspace, err)


ATTENTION = """
    class Attention(nn.Module):
        def __init__(self, dim, heads, dim_head):
            super().__init__()
            inner = heads * dim_head
            self.heads = heads
            self.norm = nn.LayerNorm(dim)
            self.to_qkv = nn.Linear(dim, QKV, bias=False)
            self.to_out = nn.Linear(inner, dim)

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
            q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
            attn = (q @ k.transpose(-1, -2)).softmax(dim=-1)
            out = (attn @ v).transpose(1, 2).reshape(b, n, -1)
            return self.to_out(out) + x
"""


def test_a_wrong_qkv_width_is_traced_through_chunk_heads_and_attention_to_its_linear(workspace):
    report = probe(workspace, ATTENTION.replace("QKV", "inner * 6"))
    err = only_error(report)
    assert text_at(workspace, err) == "inner * 6"
    assert err.fixes[0].edits[0].new_text == "inner * 3"
    assert_fix_cleans(workspace, err)


def test_an_einsum_whose_letter_names_two_widths_is_reported_on_the_linear_that_made_the_odd_one(workspace):
    report = probe(workspace, """
        class CrossAttention(nn.Module):
            def __init__(self, dim, heads, dim_head):
                super().__init__()
                inner = heads * dim_head
                self.heads = heads
                self.to_q = nn.Linear(dim, inner, bias=False)
                self.to_kv = nn.Linear(dim, inner * 4, bias=False)
                self.to_out = nn.Linear(inner, dim)

            def forward(self, x):
                b, n, _ = x.shape
                q = self.to_q(x).reshape(b, n, self.heads, -1)
                k, v = self.to_kv(x).chunk(2, dim=-1)
                k, v = (t.reshape(b, n, self.heads, -1) for t in (k, v))
                attn = torch.einsum("b i h d, b j h d -> b h i j", q, k).softmax(dim=-1)
                out = torch.einsum("b h i j, b j h d -> b i h d", attn, v).reshape(b, n, -1)
                return self.to_out(out)
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "inner * 4"
    assert "einsum" in err.message
    assert err.fixes[0].edits[0].new_text == "inner * 2"
    assert_fix_cleans(workspace, err)


def test_a_wrong_width_on_the_norm_the_made_up_input_follows_is_reported_on_that_norm(workspace):
    # The input is made up to fit the first layer, the LayerNorm: its width is the odd one.
    report = probe(workspace, """
        class Embed(nn.Module):
            def __init__(self, in_dim, dim):
                super().__init__()
                self.net = nn.Sequential(nn.LayerNorm(in_dim * 2), nn.Linear(in_dim, dim), nn.LayerNorm(dim))

            def forward(self, x):
                return self.net(x)
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "in_dim * 2"
    assert err.fixes[0].edits[0].new_text == "in_dim"
    assert_fix_cleans(workspace, err)


def test_the_attention_block_without_a_slip_has_no_error(workspace):
    report = probe(workspace, ATTENTION.replace("QKV", "inner * 3"))
    assert [f for f in report.findings if f.severity == "error"] == []


def test_of_two_sizes_with_one_error_each_the_one_that_got_further_is_reported(workspace):
    # The rejection of 28 names 224, tried next: there the position table is too short, an error
    # of that size alone, early in forward. At 32 forward gets to the real slip, `dim * 2`.
    report = probe(workspace, """
        class Tiny(nn.Module):
            def __init__(self, dim, hidden):
                super().__init__()
                self.embed = nn.Conv2d(3, dim, 8, stride=8)
                self.pos = nn.Parameter(torch.zeros(1, 16, dim))
                self.fc1 = nn.Linear(dim, hidden)
                self.fc2 = nn.Linear(hidden, dim * 2)
                self.scale = nn.Parameter(torch.ones(1, 1, dim))

            def forward(self, img):
                if img.shape[-1] % 8:
                    raise ValueError("the side must be a multiple of 8, such as 224")
                x = self.embed(img).flatten(2).transpose(1, 2)
                x = x + self.pos
                return self.fc2(self.fc1(x)) * self.scale
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "dim * 2"
    assert_fix_cleans(workspace, err)


def test_a_residual_add_of_two_layers_widths_ends_the_size_search_at_once(workspace):
    # Both sides of the add are one layer's out_channels: no input size can make them agree, so
    # the error is told at the first size that reaches it, on the odd layer.
    report = probe(workspace, """
        class Res(nn.Module):
            def __init__(self, channels, filters):
                super().__init__()
                self.conv1 = nn.Conv2d(channels, filters, 3, padding=1)
                self.conv2 = nn.Conv2d(filters, filters * 2, 3, padding=1)
                self.conv3 = nn.Conv2d(filters, channels, 3, padding=1)

            def forward(self, x):
                out1 = self.conv1(x)
                out = torch.add(out1, self.conv2(out1))
                return self.conv3(out)
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "filters * 2"
    assert "no plausible input size" not in err.message
    assert_fix_cleans(workspace, err)


def test_an_error_a_second_assumption_of_the_outer_class_misses_is_confirmed_on_the_inner_one(workspace):
    # Under the second assumption (all widths equal) Block skips its conv and its input is made
    # up differently: the error in Layer is not confirmed there, so Layer is probed on its own.
    report = probe(workspace, """
        class Layer(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.q = nn.Linear(c, c)
                self.k = nn.Linear(c * 2, c)

            def forward(self, x):
                return self.q(x) + self.k(x)


        class Block(nn.Module):
            def __init__(self, c1, c2):
                super().__init__()
                self.conv = None
                if c1 != c2:
                    self.conv = nn.Conv2d(c1, c2, 1)
                self.linear = nn.Linear(c2, c2)
                self.tr = Layer(c2)

            def forward(self, x):
                if self.conv is not None:
                    x = self.conv(x)
                b, _, w, h = x.shape
                p = x.flatten(2).permute(2, 0, 1)
                return self.tr(p + self.linear(p))
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "c * 2"
    assert "second assumption gives the same mismatch" in err.message
    assert_fix_cleans(workspace, err)


def test_split_sizes_that_do_not_add_up_land_on_the_layer_that_made_the_width(workspace):
    # mamba's `dt, B, C = torch.split(self.x_proj(x), [self.dt_rank, self.d_state, self.d_state],
    # dim=-1)`: torch's message names no layer; the width is x_proj's out_features.
    report = probe(workspace, """
        class Mixer(nn.Module):
            def __init__(self, d_inner=32, dt_rank=4, d_state=8):
                super().__init__()
                self.dt_rank, self.d_state = dt_rank, d_state
                self.x_proj = nn.Linear(d_inner, (dt_rank + d_state * 2) * 2, bias=False)
                self.dt_proj = nn.Linear(dt_rank, d_inner)

            def forward(self, x):
                x_dbl = self.x_proj(x)
                dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
                return self.dt_proj(dt) * B.sum(-1, keepdim=True) * C.sum(-1, keepdim=True)
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "(dt_rank + d_state * 2) * 2"
    assert "add up to 20" in err.message
    assert_fix_cleans(workspace, err)


def test_a_weight_used_without_calling_its_layer_traces_to_that_layer(workspace):
    # mamba's `xz = self.in_proj.weight @ rearrange(hidden_states, "b l d -> d (b l)")`: the
    # weight's columns are in_features.
    report = probe(workspace, """
        class Mamba(nn.Module):
            def __init__(self, d_model=32, expand=2):
                super().__init__()
                self.d_model = d_model
                self.d_inner = expand * d_model
                self.in_proj = nn.Linear(self.d_model * 2, self.d_inner * 2, bias=False)
                self.out_proj = nn.Linear(self.d_inner, self.d_model)

            def forward(self, hidden_states):
                batch, seqlen, dim = hidden_states.shape
                xz = self.in_proj.weight @ hidden_states.reshape(batch * seqlen, dim).t()
                x, z = xz.t().chunk(2, dim=-1)
                return self.out_proj(x * z).reshape(batch, seqlen, -1)
    """)
    err = only_error(report)
    assert text_at(workspace, err) == "self.d_model * 2"
    assert err.fixes[0].edits[0].new_text == "self.d_model"
    assert_fix_cleans(workspace, err)
