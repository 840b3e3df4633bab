"""Helpers of packages the probe's interpreter lacks get stand-ins whose effect on shapes is
known, so the classes using them are still probed: DropPath and initialisers as the identity,
timm's registry decorator, and tensor-parallel layers as their nn equivalents."""

from __future__ import annotations

from test_breadth import errors, probe


def test_timm_helpers_stand_in_and_the_class_using_them_is_probed(workspace):
    report = probe(workspace, """
        from timm.models.layers import DropPath, to_2tuple, trunc_normal_
        from timm.models.registry import register_model
        import timm_missing_package_xyz as extra

        class Block(nn.Module):
            def __init__(self, dim=32, drop_path=0.1, img_size=32, patch=4):
                super().__init__()
                h, w = to_2tuple(img_size)
                self.num_patches = (h // patch) * (w // patch)
                self.pos = nn.Parameter(torch.zeros(1, self.num_patches, dim))
                trunc_normal_(self.pos, std=.02)
                self.fc = nn.Linear(dim, dim)
                self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

            def forward(self, x):
                h = self.fc(x) + self.pos  # a learned table of num_patches rows: the input is that long
                return x + self.drop_path(h)

        @register_model
        def block_tiny(**kwargs):
            return Block(**kwargs)
    """)
    assert errors(report) == []
    fc = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.fc")
    assert fc.input_shape[1:] == [64, 32]
    notes = [f.message for f in report.findings if f.code == "probe-incomplete"]
    # The package without stand-ins is still said; the timm helpers are not unknown.
    assert any("timm_missing_package_xyz" in n for n in notes)
    assert not any("DropPath" in n or "trunc_normal_" in n for n in notes)


def test_tensor_parallel_layers_are_probed_as_their_nn_equivalents(workspace):
    report = probe(workspace, """
        from fairscale.nn.model_parallel.layers import ColumnParallelLinear, ParallelEmbedding, RowParallelLinear

        class FeedForward(nn.Module):
            def __init__(self, dim=64, hidden_dim=172, vocab=100):
                super().__init__()
                self.tok = ParallelEmbedding(vocab, dim, init_method=lambda x: x)
                self.w1 = ColumnParallelLinear(dim, hidden_dim, bias=False, gather_output=False, init_method=lambda x: x)
                self.w2 = RowParallelLinear(dim, dim, bias=False, input_is_parallel=True, init_method=lambda x: x)

            def forward(self, tokens):
                return self.w2(F.silu(self.w1(self.tok(tokens))))
    """)
    errs = errors(report)
    # A real mismatch in the parallel layers is found like one in nn.Linear: w2 takes hidden_dim.
    assert [f.code for f in errs] == ["feature-mismatch"]
    w1 = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.w1")
    assert w1.output_shape[-1] == 172
