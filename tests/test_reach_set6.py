"""Patterns of held-out set 6 (Time-Series-Library, cleanrl), each in a model written here: a
config object passed down from the workspace's command line (`Model(configs)`, built by a
registry), a Conv1d over a permuted sequence, an input the forecast never reads, a second input
whose rank only its Linear tells, and a config parameter named for what it describes (`env`)."""

from __future__ import annotations

import textwrap

from helpers import errors, probe, shape_of


def notes(report):
    return [f.message for f in report.findings if f.code == "probe-incomplete"]


RUN = """\
import argparse

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='forecasting')
    parser.add_argument('--task_name', type=str, required=True, default='forecast')
    parser.add_argument('--seq_len', type=int, default=96)
    parser.add_argument('--enc_in', type=int, default=7)
    parser.add_argument('--d_model', type=int, default=40)
    parser.add_argument('--freq', type=str, default='h')
    args = parser.parse_args()
    # exp = Exp(args): the model is built from a registry, `model_dict[args.model].Model(args)`
"""

EMBED = """\
import torch.nn as nn


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super().__init__()
        self.conv = nn.Conv1d(c_in, d_model, kernel_size=3, padding=1)

    def forward(self, x):
        return self.conv(x.permute(0, 2, 1)).transpose(1, 2)


class DataEmbedding(nn.Module):
    def __init__(self, c_in, d_model, freq='h'):
        super().__init__()
        marks = {'h': 4, 't': 5}
        self.value = TokenEmbedding(c_in, d_model)
        self.temporal = nn.Linear(marks[freq], d_model)

    def forward(self, x, x_mark):
        return self.value(x) + self.temporal(x_mark)
"""

MODEL = """\
import torch.nn as nn
from layers.embed import DataEmbedding


class Model(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.task_name = configs.task_name
        self.embedding = DataEmbedding(configs.enc_in, configs.d_model, configs.freq)
        self.projection = nn.Linear(configs.d_model, configs.enc_in)

    def forecast(self, x_enc, x_mark_enc):
        means = x_enc.mean(1, keepdim=True).detach()
        x_enc = x_enc - means
        return self.projection(self.embedding(x_enc, x_mark_enc))

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec, mask=None):
        if self.task_name == 'forecast':
            return self.forecast(x_enc, x_mark_enc)
        return None
"""


def _forecaster(workspace, model: str = MODEL) -> None:
    workspace.write("run.py", RUN)
    workspace.write("layers/__init__.py", "")
    workspace.write("layers/embed.py", EMBED)
    workspace.write("models/__init__.py", "")
    workspace.write("models/model.py", model)


def test_a_config_object_takes_the_defaults_of_the_workspace_command_line(workspace):
    _forecaster(workspace)
    report = workspace.check("models/model.py")
    assert errors(report) == [], notes(report)
    # enc_in=7 and d_model=40 are run.py's defaults, freq='h' picks the 4 time features
    assert shape_of(report, "self.projection", "layer").output_shape[-1] == 7
    assert shape_of(report, "self.temporal", "layer").input_shape[-1] == 4
    assert any("run.py's command-line options" in n for n in notes(report)), notes(report)


def test_a_slip_under_the_command_line_defaults_is_an_error(workspace):
    _forecaster(workspace, MODEL.replace("nn.Linear(configs.d_model, configs.enc_in)",
                                         "nn.Linear(configs.d_model + 1, configs.enc_in)"))
    report = workspace.check("models/model.py")
    assert [f.code for f in errors(report)] == ["feature-mismatch"], notes(report)


def test_a_conv1d_over_a_permuted_sequence_takes_it_channels_last(workspace):
    report = probe(workspace, """
        class Tokens(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv1d(7, 32, kernel_size=3, padding=1)

            def forward(self, x):
                return self.conv(x.permute(0, 2, 1)).transpose(1, 2)
    """)
    assert errors(report) == [], notes(report)
    conv = shape_of(report, "self.conv", "layer")
    assert conv.input_shape[1] == 7 and len(conv.input_shape) == 3


def test_an_input_forward_never_reads_is_left_none(workspace):
    report = probe(workspace, """
        class Forecaster(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(12, 24)

            def forward(self, x_enc, x_dec):
                return self.fc(x_enc)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.fc", "layer").output_shape[-1] == 24


def test_an_input_left_none_that_forward_needs_is_told_not_an_error(workspace):
    report = probe(workspace, """
        class Scaled(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(12, 24)

            def forward(self, x, scale):
                return self.fc(x) * scale.exp()
    """)
    assert errors(report) == []
    assert any("cannot tell what `scale` of Scaled.forward" in n for n in notes(report)), notes(report)


def test_a_parameter_read_only_for_its_attributes_is_a_config(workspace):
    # cleanrl's `QNetwork(env)`, TSLib's `TimesBlock(configs)`: no rule knows the name, yet the
    # constructor only reads attributes of it.
    report = probe(workspace, textwrap.dedent("""
        class QNetwork(nn.Module):
            def __init__(self, env):
                super().__init__()
                self.fc = nn.Linear(env.obs_dim, 84)
                self.head = nn.Linear(84, env.num_actions)

            def forward(self, x):
                return self.head(torch.relu(self.fc(x)))
    """))
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.head", "layer").input_shape[-1] == 84
    assert any("env.obs_dim=" in n for n in notes(report)), notes(report)


def test_a_config_attribute_is_not_a_local_of_the_same_name(workspace):
    # minGPT: `config.model_type` is None or the widths are given; `from_pretrained(cls,
    # model_type)` compares its own local of that name with strings, which says nothing of the config.
    report = probe(workspace, """
        class GPT(nn.Module):
            def __init__(self, config):
                super().__init__()
                type_given = config.model_type is not None
                params_given = all([config.n_layer is not None, config.n_embd is not None])
                assert type_given ^ params_given
                self.wte = nn.Embedding(config.vocab_size, config.n_embd)
                self.head = nn.Linear(config.n_embd, config.vocab_size)

            @classmethod
            def from_pretrained(cls, model_type):
                assert model_type in {'gpt2', 'gpt2-medium'}
                return None

            def forward(self, idx):
                return self.head(self.wte(idx))
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.head", "layer").input_shape[-1] == shape_of(report, "self.wte", "layer").output_shape[-1]


AGENT = """
    import numpy as np


    def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
        torch.nn.init.orthogonal_(layer.weight, std)
        torch.nn.init.constant_(layer.bias, bias_const)
        return layer


    class Agent(nn.Module):
        def __init__(self, envs):
            super().__init__()
            self.network = nn.Sequential(
                layer_init(nn.Conv2d(4, 32, 8, stride=4)),
                nn.ReLU(),
                layer_init(nn.Conv2d(32, 64, 4, stride=2)),
                nn.ReLU(),
                nn.Flatten(),
                layer_init(nn.Linear(64 * 9 * 9, 256)),
            )
            self.actor = layer_init(nn.Linear(256, envs.single_action_space.n), std=0.01)

        def get_value(self, x):
            return self.actor(self.network(x / 255.0))


    class QNetwork(nn.Module):
        def __init__(self, env):
            super().__init__()
            self.fc = nn.Linear(np.array(env.single_observation_space.shape).prod(), 120)
            self.head = nn.Linear(120, env.single_action_space.n)

        def forward(self, x):
            return self.head(torch.relu(self.fc(x)))
"""


def test_an_rl_agent_is_probed_through_the_method_it_is_called_by(workspace):
    # cleanrl: no forward, an `envs` from gym, widths from numpy, 84x84 frames nothing lists
    report = probe(workspace, AGENT)
    assert errors(report) == [], notes(report)
    flat = shape_of(report, "nn.Linear", "layer")  # the Linear after the convs: the side was solved for
    assert flat.input_shape[-1] == 64 * 9 * 9, flat
    assert shape_of(report, "nn.Linear", "layer", nth=1).input_shape[-1] == 256  # self.actor
    head = shape_of(report, "self.head", "layer")
    assert head.input_shape[-1] == 120 and isinstance(head.output_shape[-1], int)
    assert any("an assumed environment" in n for n in notes(report)), notes(report)


def test_a_slip_in_an_rl_agent_is_an_error(workspace):
    report = probe(workspace, AGENT.replace("nn.Linear(120, env.single_action_space.n)",
                                            "nn.Linear(128, env.single_action_space.n)"))
    assert [f.code for f in errors(report)] == ["feature-mismatch"], notes(report)


def test_numpy_arithmetic_is_pure_and_its_readers_are_not(workspace):
    from shapelens.analysis.plan import build_plan
    from shapelens.analysis.resolve import Resolver

    path = workspace.write("m.py", "import numpy as np\n\nSTD = np.sqrt(2)\nDATA = np.load('weights.npy')\n"
                                   "RAW = np.fromfile('weights.bin')\n")
    plan = build_plan(Resolver(str(workspace.root)), str(path), path.read_text())
    skipped = {key.split(":")[0] for key, _ in plan.files[0].skipped}
    assert "3" not in skipped and {"4", "5"} <= skipped, plan.files[0].skipped


def test_a_slip_in_an_agent_called_by_name_is_confirmed_by_the_second_assumption(workspace):
    # The second assumption runs in a helper probe: the agent is called through get_value there too.
    report = probe(workspace, AGENT.replace("nn.Linear(256, envs.single_action_space.n)",
                                            "nn.Linear(250, envs.single_action_space.n)"))
    assert [f.code for f in errors(report)] == ["feature-mismatch"], notes(report)


def test_a_channels_first_norm_and_a_masked_conv_block(workspace):
    # vits: a LayerNorm over channels that transposes first, and blocks fed `x * x_mask`
    report = probe(workspace, """
        class ChannelNorm(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.channels = channels
                self.gamma = nn.Parameter(torch.ones(channels))
                self.beta = nn.Parameter(torch.zeros(channels))

            def forward(self, x):
                x = x.transpose(1, -1)
                x = F.layer_norm(x, (self.channels,), self.gamma, self.beta)
                return x.transpose(1, -1)


        class MaskedBlock(nn.Module):
            def __init__(self, in_channels, hidden_channels):
                super().__init__()
                self.conv = nn.Conv1d(in_channels, hidden_channels, 3, padding=1)
                self.norm = ChannelNorm(hidden_channels)
                self.proj = nn.Conv1d(hidden_channels, in_channels, 1)

            def forward(self, x, x_mask):
                x = self.norm(self.conv(x * x_mask))
                return self.proj(x) * x_mask
    """)
    assert errors(report) == [], notes(report)
    conv = shape_of(report, "self.conv", "layer")
    assert conv.output_shape[1] == shape_of(report, "self.proj", "layer").input_shape[1]
    assert not any("ChannelNorm" in n and "made up" in n for n in notes(report)), notes(report)


def test_a_leading_permute_before_a_linear_gives_the_input_before_it(workspace):
    # TSLib's DataEmbedding_inverted: `x = x.permute(0, 2, 1)`, then a Linear over time
    report = probe(workspace, """
        class Inverted(nn.Module):
            def __init__(self):
                super().__init__()
                self.value = nn.Linear(96, 32)

            def forward(self, x):
                x = x.permute(0, 2, 1)
                return self.value(x)
    """)
    assert errors(report) == [], notes(report)
    value = shape_of(report, "self.value", "layer")
    assert len(value.input_shape) == 3 and value.input_shape[-1] == 96


def test_guesses_about_untold_inputs_stay_notes(workspace):
    # Review guards: an input left None that forward converts or tests, a reorder undone later in
    # the body, a transpose by negative dims, a channels-last mask, and a training step.
    report = probe(workspace, """
        class Scale(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(12, 16)

            def forward(self, x, scale):
                scale = torch.as_tensor(scale)
                return self.fc(x) * scale


        class Marks(nn.Module):
            def __init__(self):
                super().__init__()
                self.norm = nn.LayerNorm(7)
                self.fc = nn.Linear(11, 16)

            def forward(self, x, x_mark):
                x = self.norm(x)
                if x_mark is not None:
                    x = torch.cat([x, x_mark], -1)
                return self.fc(x)


        class Back(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)

            def forward(self, x):
                x = x.transpose(1, 2)
                x = x.cumsum(-1)
                x = x.transpose(1, 2)
                return self.fc(x)


        class OverTime(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(96, 24)

            def forward(self, x):
                out = self.fc(x.transpose(-1, -2)).transpose(-1, -2)
                return out[:, -24:, :]


        class MaskedTokens(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(32, 32)

            def forward(self, x, x_mask):
                B, T, C = x.shape
                return self.proj(x * x_mask)


        class Learner(nn.Module):
            def __init__(self):
                super().__init__()
                self.q = nn.Linear(4, 2)
                self.opt = torch.optim.Adam(self.q.parameters())

            def learn(self, obs):
                loss = self.q(obs).sum()
                loss.backward()
                self.opt.step()
    """)
    assert errors(report) == [], [f.message for f in errors(report)]
    over = shape_of(report, "self.fc", "layer", nth=3)
    assert over.input_shape is None or over.input_shape[-1] == 96


def test_an_untold_input_of_an_entry_method_is_named_by_that_method(workspace):
    report = probe(workspace, """
        class Critic(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(12, 1)

            def get_q(self, obs, act):
                return self.fc(torch.cat([obs, act], 1))
    """)
    assert errors(report) == []
    assert any("of Critic.get_q looks like" in n for n in notes(report)), notes(report)
