"""Patterns of held-out set 7 (BasicSR, latent-diffusion, pytorch-tutorial), each in a model
written here: a test that builds the class wrongly on purpose (`with pytest.raises(...)`), a
squeeze factor that an assumed width too small divides down to 0, widths named `num_feat`, and a
super-resolution model whose forward subtracts an RGB mean from its input; and the worker runs the
hub libraries offline, so a `from_pretrained` fails at once instead of retrying until the timeout."""

from __future__ import annotations

from pathlib import Path

from helpers import errors, probe, shape_of


def notes(report):
    return [f.message for f in report.findings if f.code == "probe-incomplete"]


DISCRIMINATOR = """\
import torch.nn as nn


class Discriminator(nn.Module):
    def __init__(self, num_in_ch, num_feat, input_size=128):
        super().__init__()
        self.input_size = input_size
        assert self.input_size == 128 or self.input_size == 256, (
            f"input size must be 128 or 256, but received {input_size}")
        self.conv0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.down = nn.Sequential(*[nn.Conv2d(num_feat, num_feat, 4, 2, 1) for _ in range(5)])
        if self.input_size == 256:
            self.conv5 = nn.Conv2d(num_feat, num_feat, 4, 2, 1)
        self.linear = nn.Linear(num_feat * 4 * 4, 100)

    def forward(self, x):
        assert x.size(2) == self.input_size, f"Input size must be identical to input_size, but received {x.size()}."
        feat = self.down(self.conv0(x))
        if self.input_size == 256:
            feat = self.conv5(feat)
        return self.linear(feat.view(feat.size(0), -1))


class PatchDiscriminator(nn.Module):
    def __init__(self, num_in_ch, num_feat=64):
        super().__init__()
        self.conv0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.conv1 = nn.Conv2d(num_feat, 1, 3, 1, 1)

    def forward(self, x):
        return self.conv1(self.conv0(x))
"""

DISCRIMINATOR_TEST = """\
import pytest
import torch
from archs.disc import Discriminator


def test_discriminator():
    net = Discriminator(num_in_ch=3, num_feat=4).cuda()
    assert net(torch.rand(1, 3, 128, 128)).shape == (1, 1)
    net = Discriminator(num_in_ch=3, num_feat=4, input_size=256).cuda()
    assert net(torch.rand(1, 3, 256, 256)).shape == (1, 1)
    with pytest.raises(AssertionError):
        net = Discriminator(num_in_ch=3, num_feat=4, input_size=64)
"""


def test_a_call_a_test_expects_to_fail_is_no_call_site(workspace):
    workspace.write("archs/__init__.py", "")
    workspace.write("archs/disc.py", DISCRIMINATOR)
    workspace.write("tests/test_disc.py", DISCRIMINATOR_TEST)
    report = workspace.check("archs/disc.py")
    assert errors(report) == [], notes(report)
    # built as the test's first call builds it: 3 channels in, 4 features
    assert shape_of(report, "self.conv0", "layer").input_shape[1] == 3
    assert shape_of(report, "self.linear", "layer").input_shape[-1] == 4 * 4 * 4


def test_a_width_an_assumption_divides_to_zero_is_assumed_again(workspace):
    report = probe(workspace, """
        class ChannelAttention(nn.Module):
            def __init__(self, num_feat, squeeze_factor=16):
                super().__init__()
                self.attention = nn.Sequential(
                    nn.AdaptiveAvgPool2d(1), nn.Conv2d(num_feat, num_feat // squeeze_factor, 1),
                    nn.ReLU(inplace=True), nn.Conv2d(num_feat // squeeze_factor, num_feat, 1), nn.Sigmoid())

            def forward(self, x):
                return x * self.attention(x)
    """)
    assert errors(report) == [], notes(report)
    squeeze = shape_of(report, "nn.Conv2d", "layer")
    assert squeeze.input_shape[1] >= 16 and squeeze.output_shape[1] >= 1, squeeze


def test_num_feat_is_a_width_and_an_image_model_takes_three_channels(workspace):
    report = probe(workspace, """
        class SuperRes(nn.Module):
            def __init__(self, num_in_ch, num_out_ch, num_feat=64, img_range=255.,
                         rgb_mean=(0.4488, 0.4371, 0.4040)):
                super().__init__()
                self.img_range = img_range
                self.mean = torch.Tensor(rgb_mean).view(1, 3, 1, 1)
                self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
                self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

            def forward(self, x):
                self.mean = self.mean.type_as(x)
                x = (x - self.mean) * self.img_range
                x = self.conv_last(self.conv_first(x))
                return x / self.img_range + self.mean


        class Block(nn.Module):
            def __init__(self, num_feat):
                super().__init__()
                self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

            def forward(self, x):
                return x + self.conv(x)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.conv_first", "layer").input_shape[1] == 3
    assert shape_of(report, "self.conv_last", "layer").output_shape[1] == 3
    # `num_feat` is a width (a multiple of 16), not a count of 2 or 3
    assert shape_of(report, "self.conv", "layer").input_shape[1] % 16 == 0


def test_the_worker_runs_the_hub_libraries_offline(tmp_path):
    from shapelens.probe.client import OFFLINE_ENV, WorkerClient

    client = WorkerClient()
    try:
        client.start()
        environ = Path(f"/proc/{client._proc.pid}/environ").read_bytes().split(b"\0")
    finally:
        client.close()
    seen = dict(e.decode().split("=", 1) for e in environ if b"=" in e)
    assert {k: seen.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")} == {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    assert set(OFFLINE_ENV) <= set(seen)



ATTENTION = """
    import torch.nn.functional as F


    class Attention(nn.Module):
        def __init__(self, dim, num_heads=4):
            super().__init__()
            self.num_heads = num_heads
            self.fused_attn = hasattr(F, "scaled_dot_product_attention")
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn_drop = nn.Dropout(0.1)
            self.proj = nn.Linear(dim, dim)
            {extra}

        def forward(self, x):
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            if self.fused_attn:
                x = F.scaled_dot_product_attention(q, k, v)
            else:
                attn = (q @ k.transpose(-2, -1)) * (C // self.num_heads) ** -0.5{mask}
                attn = self.attn_drop(attn.softmax(dim=-1))
                x = attn @ v
            return self.proj(x.transpose(1, 2).reshape(B, N, C))


    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(64)
            self.attn = Attention(64)

        def forward(self, x):
            return x + self.attn(self.norm(x))
"""


def test_a_kernel_flag_is_flipped_to_shape_the_layers_of_its_other_side(workspace):
    report = probe(workspace, ATTENTION.format(extra="", mask=""))
    assert errors(report) == [], notes(report)
    drop = shape_of(report, "self.attn_drop", "layer")
    assert drop.input_shape is not None and len(drop.input_shape) == 4, drop  # [B, heads, N, N]
    assert drop.input_shape[-1] == drop.input_shape[-2]


def test_a_flipped_side_that_needs_what_init_did_not_build_is_taken_back(workspace):
    # nanoGPT: the causal mask is registered only without the fused kernel
    extra = 'if not self.fused_attn:\n                self.register_buffer("bias", torch.ones(1, 1, 8, 8))'
    mask = '\n                attn = attn.masked_fill(self.bias == 0, float("-inf"))'
    report = probe(workspace, ATTENTION.format(extra=extra, mask=mask))
    assert errors(report) == [], notes(report)
    assert not any("bias" in n for n in notes(report)), notes(report)
    assert shape_of(report, "self.proj", "layer").output_shape[-1] == 64


SCRIPT = """
    class Net(nn.Module):
        def __init__(self, input_size, hidden_size, num_classes):
            super().__init__()
            self.fc1 = nn.Linear(input_size, hidden_size)
            self.fc2 = nn.Linear(hidden_size, num_classes)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))


    model = Net(784, 500, 10)
    criterion = nn.CrossEntropyLoss()
    regression = nn.MSELoss()
    train_loader = load_data()  # not run: data

    for epoch in range(5):
        for i, (images, labels) in enumerate(train_loader):
            outputs = model(images.reshape(-1, 28 * 28))
            loss = criterion(outputs, labels) + regression(model(images), labels.float())
            loss.backward()
"""


def test_a_training_loops_losses_are_fed_from_the_model_it_runs(workspace):
    report = probe(workspace, SCRIPT)
    assert errors(report) == [], notes(report)
    ce = shape_of(report, "criterion", "layer")
    assert ce.input_shape[-1] == 10 and ce.output_shape == [], ce
    assert shape_of(report, "regression", "layer").input_shape[-1] == 10
    assert not any("called only inside the loop" in n for n in notes(report)), notes(report)


def test_a_loss_is_fed_through_the_loops_reshape_from_a_model_that_did_not_run(workspace):
    report = probe(workspace, """
        class LM(nn.Module):
            def __init__(self, vocab_size, embed_size):
                super().__init__()
                self.embed = nn.Embedding(vocab_size, embed_size)
                self.linear = nn.Linear(embed_size, vocab_size)

            def forward(self, x, h):
                return self.linear(self.embed(x)), h


        ids = read_corpus("train.txt")  # not run: data
        vocab_size = len(ids)
        model = LM(vocab_size, 64).to("cpu")
        criterion = nn.CrossEntropyLoss()

        for i in range(0, ids.size(1) - 30, 30):
            outputs, states = model(ids[:, i:i + 30], None)
            loss = criterion(outputs.view(-1, outputs.size(-1)), ids[:, i + 1:i + 31].reshape(-1))
    """)
    assert errors(report) == [], notes(report)
    ce = shape_of(report, "criterion", "layer")
    # the model's [B, T, vocab] scores through the loop's `view(-1, outputs.size(-1))`
    assert len(ce.input_shape) == 2 and ce.input_shape[-1] == shape_of(report, "self.linear", "layer").output_shape[-1]


def test_numpys_axis_is_the_dim_torch_joins_along(workspace):
    report = probe(workspace, """
        class Pool(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(4, 8)
                self.b = nn.Linear(4, 16)
                self.out = nn.Linear(24, 2)

            def forward(self, x):
                return self.out(torch.cat([self.a(x), self.b(x)], axis=-1))
    """)
    assert errors(report) == [], [f.message for f in errors(report)]
    assert shape_of(report, "self.out", "layer").input_shape[-1] == 24


RESTORER = """
    class Restorer(nn.Module):
        def __init__(self, dim=32, resi_connection="1conv", upsampler=""):
            super().__init__()
            self.upsampler = upsampler
            if resi_connection == "1conv":
                self.conv_after_body = nn.Conv2d(dim, dim, 3, 1, 1)
            elif resi_connection == "3conv":
                self.conv_after_body = nn.Sequential(nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2),
                                                     nn.Conv2d(dim // 4, {width}, 3, 1, 1))
            if self.upsampler == "pixelshuffle":
                self.upsample = nn.Sequential(nn.Conv2d(dim, 4 * dim, 3, 1, 1), nn.PixelShuffle(2))
            else:
                self.conv_last = nn.Conv2d(dim, 3, 3, 1, 1)

        def forward(self, x):
            x = x + self.conv_after_body(x)
            if self.upsampler == "pixelshuffle":
                return self.upsample(x)
            return self.conv_last(x)


    if __name__ == "__main__":
        model = Restorer(dim=32, resi_connection="1conv")
        print(model(torch.randn(1, 32, 16, 16)).shape)
"""


def test_a_class_the_file_builds_is_probed_again_down_its_other_branches(workspace):
    report = probe(workspace, RESTORER.format(width="dim"))
    assert errors(report) == [], notes(report)
    assert shape_of(report, "nn.PixelShuffle", "layer").output_shape[1] == 32  # `self.upsampler == ...` taken too
    convs = [s for s in report.shapes if s.kind == "layer" and s.name == "nn.Conv2d" and s.input_shape]
    assert any(s.output_shape[1] == 8 for s in convs), convs  # the 3conv branch's dim // 4


def test_what_other_branches_of_a_built_class_find_is_said_not_reported(workspace):
    report = probe(workspace, RESTORER.format(width="dim * 2"))
    assert errors(report) == [], [f.message for f in errors(report)]
    assert any("not reported as an error, as the workspace builds `Restorer` with other values" in n
               for n in notes(report)), notes(report)


CONDITIONED = """
    class Generator(nn.Module):
        def __init__(self, conv_dim=64, c_dim=5):
            super().__init__()
            self.main = nn.Sequential(
                nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
                nn.InstanceNorm2d(conv_dim, affine=True), nn.ReLU(inplace=True),
                nn.Conv2d({width}, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh())

        def forward(self, x, c):
            c = c.view(c.size(0), c.size(1), 1, 1)
            c = c.repeat(1, 1, x.size(2), x.size(3))
            x = torch.cat([x, c], dim=1)
            return self.main(x)


    class Critic(nn.Module):
        def __init__(self, obs_dim=11, act_dim=3):
            super().__init__()
            self.fc1 = nn.Linear(obs_dim + act_dim, 256)
            self.fc2 = nn.Linear(256, 1)

        def forward(self, x, a):
            return self.fc2(torch.relu(self.fc1(torch.cat([x, a], 1))))
"""


def test_inputs_joined_before_a_layer_take_the_parts_of_its_width_sum(workspace):
    report = probe(workspace, CONDITIONED.format(width="conv_dim"))
    assert errors(report) == [], notes(report)
    first = shape_of(report, "nn.Conv2d", "layer")
    assert first.input_shape[1] == 8 and len(first.input_shape) == 4, first  # 3 image channels + 5 labels
    assert shape_of(report, "self.fc1", "layer").input_shape == [first.input_shape[0], 14]
    assert not any("cannot tell" in n for n in notes(report)), notes(report)


def test_a_slip_after_a_join_is_still_an_error(workspace):
    report = probe(workspace, CONDITIONED.format(width="conv_dim * 2"))
    assert [f.code for f in errors(report)] == ["feature-mismatch"], [f.message for f in errors(report)]


def test_layers_zipped_in_a_loop_and_an_activation_of_the_input_reach_it(workspace):
    report = probe(workspace, """
        class ResBlock(nn.Module):
            def __init__(self, channels, kernel_size=3, dilation_rate=2, n_layers=2):
                super().__init__()
                self.convs1 = nn.ModuleList([nn.Conv1d(channels, channels, kernel_size, 1, dilation=dilation_rate ** i,
                                                       padding=dilation_rate ** i) for i in range(n_layers)])
                self.convs2 = nn.ModuleList([nn.Conv1d(channels, channels, kernel_size, 1, padding=1)
                                             for i in range(n_layers)])

            def forward(self, x):
                for c1, c2 in zip(self.convs1, self.convs2):
                    xt = F.leaky_relu(x, 0.1)
                    xt = c2(F.leaky_relu(c1(xt), 0.1))
                    x = xt + x
                return x


        class Dilated(nn.Module):
            def __init__(self, hidden_channels, kernel_size, dilation_rate, n_layers):
                super().__init__()
                self.layers = nn.ModuleList([nn.Conv1d(hidden_channels, hidden_channels, kernel_size,
                                                       dilation=dilation_rate ** i, padding="same")
                                             for i in range(n_layers)])

            def forward(self, x):
                for layer in self.layers:
                    x = x + layer(x)
                return x
    """)
    assert errors(report) == [], notes(report)
    assert not any("cannot tell" in n or "could not run" in n for n in notes(report)), notes(report)
    shaped = [s for s in report.shapes if s.kind == "layer" and s.input_shape]
    assert len(shaped) >= 3 and all(len(s.input_shape) == 3 for s in shaped), shaped


def test_a_part_that_went_through_a_layer_before_the_join_keeps_its_layout(workspace):
    # A U-Net's up block: x1 is upsampled first, so it is no [B, width] condition vector.
    report = probe(workspace, """
        class Up(nn.Module):
            def __init__(self, in_ch=64, skip_ch=32, out_ch=32):
                super().__init__()
                self.up = nn.Upsample(scale_factor=2)
                self.conv = nn.Conv2d(in_ch + skip_ch, out_ch, 3, padding=1)

            def forward(self, x1, x2):
                x1 = self.up(x1)
                return self.conv(torch.cat([x2, x1], dim=1))
    """)
    assert errors(report) == [], [f.message for f in errors(report)]


def test_a_branch_on_an_option_left_none_is_probed_with_a_value_assumed_by_name(workspace):
    report = probe(workspace, """
        class UNet(nn.Module):
            def __init__(self, model_channels=32, num_classes=None):
                super().__init__()
                self.num_classes = num_classes
                self.time_embed = nn.Linear(model_channels, model_channels * 4)
                if self.num_classes is not None:
                    self.label_emb = nn.Embedding(num_classes, model_channels * 4)

            def forward(self, t, y):
                emb = self.time_embed(t)
                if self.num_classes is not None:
                    emb = emb + self.label_emb(y)
                return emb
    """)
    assert errors(report) == [], notes(report)
    assert any("also probed with num_classes=" in n for n in notes(report)), notes(report)
    assert shape_of(report, "self.label_emb", "layer").output_shape[-1] == 128


TUTORIAL = """
    input_size, hidden_size, num_classes = 784, 500, 10


    class NeuralNet(nn.Module):
        def __init__(self, input_size, hidden_size, num_classes):
            super().__init__()
            self.fc1 = nn.Linear({first}, hidden_size)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(hidden_size, num_classes)

        def forward(self, x):
            return self.fc2(self.relu(self.fc1(x)))


    model = NeuralNet(input_size, hidden_size, num_classes)
    criterion = nn.CrossEntropyLoss()
    train_loader = get_loader()  # not run: data

    for epoch in range(5):
        for i, (images, labels) in enumerate(train_loader):
            images = images.reshape(-1, 28 * 28)
            outputs = model(images)
            loss = criterion(outputs, labels)
"""


def test_the_width_a_training_loop_feeds_its_model_is_checked(workspace):
    good = probe(workspace, TUTORIAL.format(first="input_size"))
    assert errors(good) == [], notes(good)
    assert shape_of(good, "self.fc1", "layer").input_shape[-1] == 784
    bad = probe(workspace, TUTORIAL.format(first="input_size * 2"))
    (err,) = errors(bad)
    assert err.code == "feature-mismatch" and "feeds it [784] per sample" in err.message, err.message
    lines = (workspace.root / "m.py").read_text().splitlines()
    assert "input_size * 2" in lines[err.range["start"]["line"]]  # on the layer that declares the width
    assert [e.new_text for e in err.fixes[0].edits] == ["input_size"], err.fixes


def test_a_model_the_loop_rebinds_is_not_the_module_level_one(workspace):
    report = probe(workspace, TUTORIAL.format(first="input_size * 2").replace(
        "            outputs = model(images)", "            model = ensemble[i % 2]\n            outputs = model(images)"))
    assert errors(report) == [], [f.message for f in errors(report)]


def test_joins_the_width_sum_cannot_tie_to_their_parts_are_left_alone(workspace):
    # A review found each of these guessed wrong by position: a part the body makes itself (an
    # embedding), a sum written in another order than the join, a width dim an unsqueeze makes.
    report = probe(workspace, """
        class LabelGenerator(nn.Module):
            def __init__(self, latent_dim=100, n_classes=10):
                super().__init__()
                self.label_emb = nn.Embedding(n_classes, n_classes)
                self.fc = nn.Linear(latent_dim + n_classes, 128)

            def forward(self, noise, labels):
                return self.fc(torch.cat((self.label_emb(labels), noise), -1))


        class ValueCritic(nn.Module):
            def __init__(self, state_dim=11, action_dim=3):
                super().__init__()
                self.q = nn.Linear(action_dim + state_dim, 1)
                self.v = nn.Linear(state_dim, 1)

            def forward(self, state, action):
                return self.v(state) + self.q(torch.cat([state, action], dim=-1))


        class ScoreNet(nn.Module):
            def __init__(self, data_dim=2):
                super().__init__()
                self.net = nn.Linear(data_dim + 1, data_dim)

            def forward(self, x, t):
                t = t.unsqueeze(-1).float()
                return self.net(torch.cat([x, t], dim=-1))
    """)
    assert errors(report) == [], [f.message for f in errors(report)]
    assert shape_of(report, "self.v", "layer").input_shape[-1] == 11  # tied by name: state_dim to state


def test_a_loop_reads_no_width_another_statement_may_have_changed(workspace):
    # Found in review: a module-level width bound twice (a second dataset), and views under if/else.
    report = probe(workspace, """
        class MLP(nn.Module):
            def __init__(self, input_size, num_classes=10):
                super().__init__()
                self.fc1 = nn.Linear(input_size, 256)
                self.fc2 = nn.Linear(256, num_classes)

            def forward(self, x):
                return self.fc2(torch.relu(self.fc1(x)))


        arch = "mlp"
        input_size = 28 * 28
        mnist_model = MLP(input_size)
        for images, labels in mnist_loader:
            outputs = mnist_model(images.view(-1, input_size))
        input_size = 3 * 32 * 32
        cifar_model = MLP(input_size)
        for images, labels in cifar_loader:
            if arch == "rnn":
                images = images.view(-1, 32, 96)
            else:
                images = images.view(-1, 3 * 32 * 32)
            outputs = cifar_model(images)
    """)
    assert errors(report) == [], [f.message for f in errors(report)]


def test_an_option_given_a_value_for_its_branch_finds_no_error_of_the_inputs_it_goes_with(workspace):
    # Found in review: a cross-attention built only when `cross_attention_dim` is given, fed the
    # optional context, which the probe leaves None (so `x` stands in for it).
    report = probe(workspace, """
        class Attention(nn.Module):
            def __init__(self, query_dim, context_dim=None):
                super().__init__()
                context_dim = context_dim if context_dim is not None else query_dim
                self.to_q = nn.Linear(query_dim, query_dim)
                self.to_k = nn.Linear(context_dim, query_dim)

            def forward(self, x, context=None):
                context = x if context is None else context
                return (self.to_q(x) @ self.to_k(context).transpose(-1, -2)).softmax(-1)


        class Block(nn.Module):
            def __init__(self, dim=320, cross_attention_dim=None):
                super().__init__()
                self.norm1 = nn.LayerNorm(dim)
                self.attn1 = Attention(dim)
                if cross_attention_dim is not None:
                    self.norm2 = nn.LayerNorm(dim)
                    self.attn2 = Attention(dim, cross_attention_dim)
                else:
                    self.attn2 = None

            def forward(self, hidden_states, encoder_hidden_states=None):
                hidden_states = hidden_states + self.attn1(self.norm1(hidden_states)) @ hidden_states
                if self.attn2 is not None:
                    hidden_states = hidden_states + self.attn2(self.norm2(hidden_states), encoder_hidden_states) @ hidden_states
                return hidden_states
    """)
    assert errors(report) == [], [f.message for f in errors(report)]


def test_a_model_written_for_one_sample_at_a_time_is_probed_with_one(workspace):
    report = probe(workspace, """
        class Decoder(nn.Module):
            def __init__(self, hidden_size=32, output_size=20):
                super().__init__()
                self.embedding = nn.Embedding(output_size, hidden_size)
                self.gru = nn.GRU(hidden_size, hidden_size)
                self.out = nn.Linear(hidden_size, output_size)

            def forward(self, input, hidden):
                output = self.embedding(input).view(1, 1, -1)
                output, hidden = self.gru(output, hidden)
                return self.out(output[0]), hidden


        class Stepper(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.RNN(input_size=5, hidden_size=5, batch_first=True)

            def forward(self, hidden, x):
                x = x.view(1, 1, 5)
                out, hidden = self.rnn(x, hidden)
                return hidden, out.view(-1, 5)
    """)
    assert errors(report) == [], [f.message for f in errors(report)]
    assert shape_of(report, "self.gru", "layer").input_shape == [1, 1, 32]
    assert shape_of(report, "self.rnn", "layer").input_shape == [1, 1, 5]


def test_a_side_is_solved_only_where_every_factor_stays_positive(workspace):
    # An inception aux head takes 17x17 maps: (H/3 - 5) squared is 1 at H=12 too, yet no map of
    # side -1 exists; the side that fits is 17 or 18.
    report = probe(workspace, """
        class AuxHead(nn.Module):
            def __init__(self, in_channels, num_classes):
                super().__init__()
                self.conv0 = nn.Conv2d(in_channels, 128, kernel_size=1)
                self.conv1 = nn.Conv2d(128, 768, kernel_size=5)
                self.fc = nn.Linear(768, num_classes)

            def forward(self, x):
                x = F.avg_pool2d(x, kernel_size=5, stride=3)
                x = self.conv1(self.conv0(x))
                return self.fc(x.view(x.size(0), -1))
    """)
    assert errors(report) == [], [f.message for f in errors(report)]
    assert shape_of(report, "self.fc", "layer").input_shape[-1] == 768


def test_a_module_level_layer_under_a_branch_the_probe_did_not_take_is_told(workspace):
    report = probe(workspace, """
        model = nn.Sequential(nn.Linear(8, 4))
        if torch.cuda.device_count() > 8:
            model = nn.DataParallel(model)
    """)
    assert errors(report) == []
    assert any("`model` got no shape: not built, `if torch.cuda.device_count() > 8:` (line " in n
               for n in notes(report)), notes(report)
