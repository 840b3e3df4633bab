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


def test_timm_vision_transformer_parts_stand_in_with_their_shapes_and_a_note(workspace):
    # DiT and mae build everything from `timm.models.vision_transformer`; without timm no class
    # of theirs was probed. The stand-ins take timm's arguments (mae's retired `qk_scale` too) and
    # give the attributes callers read.
    report = probe(workspace, """
        from timm.models.vision_transformer import PatchEmbed, Attention, Block, Mlp

        class Tiny(nn.Module):
            def __init__(self, img_size=32, patch_size=4, dim=64, heads=4):
                super().__init__()
                self.patch_embed = PatchEmbed(img_size, patch_size, 3, dim)
                self.pos = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches, dim))
                self.block = Block(dim, heads, 4.0, qkv_bias=True, qk_scale=None, norm_layer=nn.LayerNorm)
                self.attn = Attention(dim, num_heads=heads, qkv_bias=True)
                self.mlp = Mlp(in_features=dim, hidden_features=dim * 2, act_layer=lambda: nn.GELU(approximate="tanh"))
                self.head = nn.Linear(dim, patch_size ** 2 * 3)

            def forward(self, x):
                x = self.patch_embed(x) + self.pos
                return self.head(self.mlp(self.attn(self.block(x))))
    """)
    assert errors(report) == []
    head = next(s for s in report.shapes if s.kind == "layer" and s.name == "self.head")
    assert head.input_shape[1:] == [64, 64] and head.output_shape[-1] == 48
    (note,) = [f for f in report.findings if "stand-in" in f.message]
    assert all(f"`{n}`" in note.message for n in ("PatchEmbed", "Attention", "Block", "Mlp"))


def test_a_generic_name_stands_in_only_for_timm(workspace):
    report = probe(workspace, """
        from some_missing_package_xyz import Attention

        class Net(nn.Module):
            def __init__(self, dim=32):
                super().__init__()
                self.attn = Attention(dim)

            def forward(self, x):
                return self.attn(x)
    """)
    assert errors(report) == []
    assert not [s for s in report.shapes if s.kind == "layer" and s.name == "self.attn" and s.input_shape]
    assert any("some_missing_package_xyz" in f.message and "unknown to the probe" in f.message
               for f in report.findings)


def test_an_import_error_fallback_runs_as_python_runs_it(workspace):
    # mamba's `try: from causal_conv1d import causal_conv1d_fn` / `except ImportError:
    # causal_conv1d_fn = None`, then `if causal_conv1d_fn is None:` takes the plain-torch path.
    report = probe(workspace, """
        try:
            from missing_fast_kernels_xyz import fused_conv
            HAS_FAST = True
        except ImportError:
            fused_conv, HAS_FAST = None, False


        class Mixer(nn.Module):
            def __init__(self, d_model=32):
                super().__init__()
                self.conv = nn.Conv1d(d_model, d_model, 3, padding=1)
                self.out = nn.Linear(d_model, d_model)

            def forward(self, x):
                if fused_conv is None and not HAS_FAST:
                    x = self.conv(x)
                else:
                    x = fused_conv(x, self.conv.weight)
                return self.out(x.transpose(1, 2))
    """)
    assert errors(report) == []
    shaped = {s.name for s in report.shapes if s.kind == "layer" and s.input_shape is not None}
    assert {"self.conv", "self.out"} <= shaped
    # The file handles the missing package itself: nothing to tell.
    assert not [f for f in report.findings if "missing_fast_kernels_xyz" in f.message]


def test_the_nearest_try_decides_and_an_else_body_is_skipped_with_the_rest():
    import ast

    from shapelens.analysis.source import stmt_key
    from shapelens.probe.worker.fallbacks import import_fallbacks

    tree = ast.parse(
        "try:\n"
        "    import a\n"
        "    try:\n"
        "        import b\n"
        "    except ImportError:\n"
        "        print('no b')\n"
        "except ImportError:\n"
        "    a = None\n"
        "try:\n"
        "    from flash_attn import f\n"
        "except ImportError:\n"
        "    f = None\n"
        "else:\n"
        "    HAS = True\n")
    imports = {n.names[0].name: n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))}
    found = import_fallbacks(tree)
    assert stmt_key(imports["a"]) in found
    assert stmt_key(imports["b"]) not in found  # its own handler prints: no fallback, not the outer one
    has = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "HAS")
    assert stmt_key(has) in found[stmt_key(imports["f"])].skipped


def test_a_stand_in_patch_embed_s_size_check_leads_the_size_search(workspace):
    # timm's PatchEmbed asserts its img_size; 96 is no size the search starts with. Its check is a
    # rejection of the made-up input (the size it names is tried), not a shape error.
    report = probe(workspace, """
        from timm.models.vision_transformer import PatchEmbed

        class Tiny(nn.Module):
            def __init__(self):
                super().__init__()
                self.patch_embed = PatchEmbed(img_size=80, patch_size=16, in_chans=3, embed_dim=32)
                self.pos = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches, 32))
                self.head = nn.Linear(32, 10)

            def forward(self, x):
                return self.head(self.patch_embed(x) + self.pos)
    """)
    assert errors(report) == []
    assert next(s for s in report.shapes if s.kind == "layer" and s.name == "self.head").input_shape[1] == 25
    assert not [s for s in report.shapes if s.path.endswith("timmlike.py")]
