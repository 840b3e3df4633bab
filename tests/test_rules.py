"""The rule table (probe/worker/rules.py): every rule has a case that probes a mismatch through
the real worker, and the table's entries are consistent with the layers they describe."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from shapelens.probe.worker.layer_rule import failed_checks
from shapelens.probe.worker.origin import ctor_params
from shapelens.probe.worker.rules import RULES, rule_for
from shapelens.report.codes import CODES, FEATURE_MISMATCH, INDEX_OUT_OF_RANGE
from test_breadth import LAYER_CASES, assert_fix_cleans, only_error, probe, text_at

# The rules test_breadth.LAYER_CASES does not reach: (body, code, text the finding is on, fix text).
EXTRA_CASES = {
    "conv-transpose1d": ("up = nn.ConvTranspose1d(16, 8, 2)\ny = up(torch.randn(2, 12, 9))\n",
                         FEATURE_MISMATCH, "16", "12"),
    "conv-transpose3d": ("up = nn.ConvTranspose3d(4, 2, 2)\ny = up(torch.randn(1, 6, 3, 3, 3))\n",
                         FEATURE_MISMATCH, "4", "6"),
    "decoder-layer": ("layer = nn.TransformerDecoderLayer(d_model=64, nhead=4, batch_first=True)\n"
                      "y = layer(torch.randn(2, 9, 48), torch.randn(2, 7, 48))\n", "embed-dim-mismatch", "64", "48"),
    "embedding": ("emb = nn.Embedding(10, 4)\ny = emb(torch.tensor([[1, 12]]))\n", INDEX_OUT_OF_RANGE, "12", "13"),
    "embedding-bag": ("bag = nn.EmbeddingBag(10, 4)\ny = bag(torch.tensor([[1, 11]]))\n",
                      INDEX_OUT_OF_RANGE, "11", "12"),
    "rnn-cell": ("cell = nn.RNNCell(12, 8)\nh = cell(torch.randn(3, 10))\n", FEATURE_MISMATCH, "12", "10"),
    "gru-cell": ("cell = nn.GRUCell(12, 8)\nh = cell(torch.randn(3, 12), torch.randn(3, 6))\n", FEATURE_MISMATCH,
                 "8", "6"),
    "lstm-cell": ("cell = nn.LSTMCell(12, 8)\nh, c = cell(torch.randn(3, 16))\n", FEATURE_MISMATCH, "12", "16"),
}


def _built(body: str) -> set[str]:
    return set(re.findall(r"nn\.(\w+)\(", body))


def test_every_rule_has_a_case():
    covered = set().union(*(_built(body) for body, *_ in [*LAYER_CASES.values(), *EXTRA_CASES.values()]))
    missing = sorted(r.cls.__name__ for r in RULES if r.cls.__name__ not in covered)
    assert missing == [], f"add a case to tests/test_rules.py EXTRA_CASES for {missing}"


@pytest.mark.parametrize("case", sorted(EXTRA_CASES))
def test_each_remaining_rule_reports_on_its_argument(workspace, case):
    body, code, where, new_text = EXTRA_CASES[case]
    finding = only_error(probe(workspace, body))
    assert finding.code == code
    assert text_at(workspace, finding) == where
    assert finding.fixes and finding.fixes[0].edits[0].new_text == new_text
    assert_fix_cleans(workspace, finding)


# -- the table itself, without the worker --------------------------------------------------------
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.cls.__name__)
def test_a_rule_names_only_arguments_its_layer_takes(rule):
    params = set(ctor_params(rule.cls, rule))
    named = {rule.in_param, rule.out_param, *rule.widths, *(p for _, _, p in rule.params),
             *(i.param for i in rule.inputs), *(c.param for c in rule.checks)} - {None}
    assert named <= params, named - params
    assert rule.code in CODES
    assert (rule.in_param is None) == (rule.in_width is None)


def test_a_subclass_of_a_layer_gets_its_rule():
    class Wide(nn.Linear):
        pass

    assert rule_for(Wide) is rule_for(nn.Linear) and rule_for(nn.Linear).cls is nn.Linear
    assert rule_for(nn.ReLU) is None


@pytest.mark.parametrize("cls, values, param, repaired", [
    (nn.GroupNorm, {"num_groups": 5, "num_channels": 32}, "num_groups", 4),
    (nn.TransformerEncoderLayer, {"d_model": 100, "nhead": 8}, "nhead", 5),
    (nn.Conv2d, {"in_channels": 6, "out_channels": 8, "groups": 4}, "groups", 2),
    (nn.MultiheadAttention, {"embed_dim": 30, "num_heads": 4}, "num_heads", 3),
])
def test_a_config_check_repairs_to_the_nearest_value_torch_accepts(cls, values, param, repaired):
    failed = list(failed_checks(rule_for(cls), values))
    assert [(c.param, r) for c, _, r in failed] == [(param, repaired)]
    assert values[param] == repaired  # the layer is built with the repaired value


def test_a_config_check_passes_arguments_torch_accepts_and_ignores_odd_types():
    assert list(failed_checks(rule_for(nn.GroupNorm), {"num_groups": 4, "num_channels": 32})) == []
    assert list(failed_checks(rule_for(nn.GroupNorm), {"num_groups": "4", "num_channels": 32})) == []


def test_an_embedding_padding_index_outside_the_table_has_no_fix():
    (check, message, _), = failed_checks(rule_for(nn.Embedding), {"num_embeddings": 10, "padding_idx": 10})
    assert not check.fixable and "valid: -10..9" in message


def test_a_bidirectional_rnn_hidden_size_is_half_its_output_width():
    with torch.device("meta"):
        lstm = nn.LSTM(4, 8, bidirectional=True)
    rule = rule_for(nn.LSTM)
    assert rule.out_to_param(lstm, 16) == 8 and rule.out_to_param(lstm, 15) is None
    assert rule_for(nn.Linear).out_to_param(nn.Linear(2, 3), 7) == 7


def test_specs_follow_the_layer_layout():
    with torch.device("meta"):
        seq = nn.GRU(6, 3, batch_first=True)
        conv = nn.Conv3d(2, 4, 3)
    assert rule_for(nn.GRU).spec(seq).dims == ("B", "T", 6)
    assert rule_for(nn.Conv3d).spec(conv).dims == ("B", 2, "D", "H", "W")
    emb = rule_for(nn.Embedding).spec(nn.Embedding(7, 2))
    assert emb.dtype == torch.long and emb.high == 7
