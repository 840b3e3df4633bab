"""Inputs whose rank the forward body says, not the first layer: `B, T, C = x.size()` in front of
an nn.Linear is a 3-D input; probing it 2-D would be a false error. And scalar bookkeeping in
`__init__` (`.item()` over a linspace) works on the meta device."""

from __future__ import annotations

import ast
import textwrap

import pytest

from shapelens.probe.worker.bodyrank import rank_of
from test_breadth import errors, probe


def test_a_block_unpacking_three_dims_is_probed_3d_without_a_false_error(workspace):
    report = probe(workspace, """
        class SelfAttention(nn.Module):
            def __init__(self, n_embd=48, n_head=4):
                super().__init__()
                self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                self.c_proj = nn.Linear(n_embd, n_embd)
                self.n_head = n_head

            def forward(self, x):
                B, T, C = x.size()
                q, k, v = self.c_attn(x).split(C, dim=2)
                q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                y = F.scaled_dot_product_attention(q, k, v)
                return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
    """)
    assert errors(report) == []
    attn = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.c_attn")
    assert len(attn.input_shape) == 3 and attn.input_shape[-1] == 48
    assert attn.output_shape[-1] == 144


def test_a_subscript_after_a_rank_keeping_layer_gives_the_rank(workspace):
    report = probe(workspace, """
        class Pool(nn.Module):
            def __init__(self, dim=32):
                super().__init__()
                self.proj = nn.Linear(dim, dim)
                self.fc = nn.Linear(dim, 5)

            def forward(self, x):
                x = self.proj(x)
                cls = x[:, 0, :]
                return self.fc(cls)
    """)
    assert errors(report) == []
    proj = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.proj")
    assert len(proj.input_shape) == 3


@pytest.mark.parametrize("body, rank", [
    ("b, c, h, w = x.shape", (4, True)),
    ("q = rearrange(x, 'b n (h d) -> b h n d', h=4)", (3, True)),
    ("y = rearrange(x, 'b ... d -> b d ...')", (2, False)),
    ("n = x.shape[-3]", (3, False)),
    ("y = x.permute(0, 2, 3, 1)", (4, True)),
    ("y = x.transpose(1, 2)", (3, False)),
    ("x = x.view(-1, 8)\nb, t, c = x.shape", None),  # after a reshape the body no longer speaks of the input
])
def test_rank_read_from_the_body(body, rank):
    fn = ast.parse("def forward(self, x):\n" + textwrap.indent(body, "    ") + "\n    return x\n").body[0]
    assert rank_of(fn, "x") == rank


def test_a_real_mismatch_is_still_found_at_the_body_rank(workspace):
    report = probe(workspace, """
        class Block(nn.Module):
            def __init__(self, dim=32):
                super().__init__()
                self.fc1 = nn.Linear(dim, dim * 2)
                self.fc2 = nn.Linear(dim, dim)

            def forward(self, x):
                B, N, C = x.shape
                return self.fc2(self.fc1(x))
    """)
    errs = errors(report)
    assert [f.code for f in errs] == ["feature-mismatch"]
    fc1 = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.fc1")
    assert len(fc1.input_shape) == 3


def test_item_over_a_linspace_in_init_works_on_meta(workspace):
    report = probe(workspace, """
        class Stack(nn.Module):
            def __init__(self, dim=32, depth=3, drop_path_rate=0.1):
                super().__init__()
                rates = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
                steps = torch.linspace(0, 1, depth).tolist()
                assert len(steps) == depth and rates[-1] > 0.09
                self.blocks = nn.ModuleList([nn.Linear(dim, dim) for _ in rates])

            def forward(self, x):
                for blk in self.blocks:
                    x = blk(x)
                return x
    """)
    assert report.findings == []
    assert report.stats["device"] == "meta"
    block = next(s for s in report.shapes if s.kind == "layer" and s.name == "nn.Linear")
    assert block.output_shape[-1] == 32


def test_a_dict_batch_is_made_up_entry_by_entry(workspace):
    report = probe(workspace, """
        class TwoTower(nn.Module):
            def __init__(self, vocab=50, dim=16):
                super().__init__()
                self.conv = nn.Conv2d(3, dim, 3, padding=1)
                self.pool = nn.AdaptiveAvgPool2d(1)
                self.tok = nn.Embedding(vocab, dim)

            def forward(self, batch, mask=None):
                image = batch["image"]
                img = self.pool(self.conv(image)).flatten(1)
                txt = self.tok(batch["ids"]).mean(1)
                return img * txt
    """)
    assert errors(report) == []
    conv = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.conv")
    tok = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.tok")
    assert conv.input_shape[1] == 3 and len(conv.input_shape) == 4
    assert len(tok.input_shape) == 2 and tok.output_shape[-1] == 16


def test_a_tuple_input_is_unpacked_entry_by_entry(workspace):
    report = probe(workspace, """
        class Pair(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(8, 4)
                self.b = nn.Linear(6, 4)

            def forward(self, inputs):
                left, right = inputs
                return self.a(left) + self.b(right)
    """)
    assert errors(report) == []
    b = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.b")
    assert b.input_shape[-1] == 6


LIBRARY_FORWARD = """
    class Embeddings(nn.Module):
        def __init__(self, vocab=100, dim=16):
            super().__init__()
            self.word = nn.Embedding(vocab, dim)

        def forward(self, input_ids=None, inputs_embeds=None):
            return self.word(input_ids) if inputs_embeds is None else inputs_embeds

    class Model(nn.Module):
        def __init__(self, dim=16):
            super().__init__()
            self.embeddings = Embeddings(dim=dim)
            self.out = nn.Linear(dim, 3)

        def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
            if (input_ids is None) ^ (inputs_embeds is not None):
                raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
            return self.out(self.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds))
"""


def test_all_optional_inputs_feed_the_main_one_through_keyword_calls(workspace):
    report = probe(workspace, LIBRARY_FORWARD)
    assert errors(report) == []
    out = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.out")
    assert out.output_shape is not None and out.output_shape[-1] == 3
    word = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.word")
    assert len(word.input_shape) == 2


def test_a_raise_against_made_up_inputs_is_a_note_but_against_the_files_own_input_an_error(workspace):
    report = probe(workspace, """
        class Strict(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 2)

            def forward(self, x):
                if x.shape[0] != 4:
                    raise ValueError("batches of exactly 4, please")
                return self.fc(x)
    """)
    assert errors(report) == []
    note = next(f for f in report.findings if f.code == "probe-incomplete")
    assert "inputs the probe made up" in note.message and "batches of exactly 4" in note.message
    report = probe(workspace, """
        class Strict(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 2)

            def forward(self, x):
                if x.shape[0] != 4:
                    raise ValueError("batches of exactly 4, please")
                return self.fc(x)

        m = Strict()
        y = m(torch.randn(3, 8))
    """)
    assert [f.code for f in errors(report)] == ["shape-error"]
