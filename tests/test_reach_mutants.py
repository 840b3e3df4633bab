"""One-width slips in library-style classes (nothing builds them: their arguments are assumed)
are reported on the argument that is wrong, with a fix that makes the file consistent again."""

from __future__ import annotations

from helpers import locate
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
    # The fix on the layer that takes the width is still offered, second.
    path = workspace.root / "m.py"
    assert any(e.range == locate(path, "self.fc2 = nn.Linear(hidden, dim)", "hidden")
               for fix in err.fixes[1:] for e in fix.edits)
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
