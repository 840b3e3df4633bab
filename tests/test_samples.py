"""Each sample gives exactly its expected findings and shapes (real worker, real torch)."""

from __future__ import annotations

import pytest

from conftest import SAMPLES
from helpers import locate, shape_of
from shapelens.report.fixes import apply_edits


def check(engine, name):
    path = SAMPLES / name
    return engine.check(str(path), path.read_text())


@pytest.mark.parametrize("name", ["seed000_ex1_simple_embedding.py", "seed000_ex3_correct_embedding.py",
                                  "seed001_ex1_word_embedding.py", "seed001_ex2_batch_embedding.py",
                                  "llama_7b.py"])
def test_correct_samples_have_no_diagnostic(engine, name):
    report = check(engine, name)
    assert report.findings == []


def test_seed000_ex2_reports_the_linear_mismatch_on_embed_dim(engine):
    path = SAMPLES / "seed000_ex2_mismatched_embedding.py"
    report = check(engine, path.name)
    assert [f.code for f in report.findings] == ["feature-mismatch"]
    finding = report.findings[0]
    assert finding.range == locate(path, "self.linear = nn.Linear(embed_dim, 256)", "embed_dim")
    assert finding.severity == "error"
    assert "in_features=128" in finding.message and "256" in finding.message
    # Related information points at the layer that produced the 256 features, then at each step
    # of the flow from the input (tests/test_symbolic.py checks the steps).
    assert len(finding.related) == 1 + 3
    assert finding.related[0].range["start"]["line"] == locate(path, "self.projection = nn.Linear", "self")["start"]["line"]
    assert "self.projection" in finding.related[0].message
    fix = finding.fixes[0]
    assert [e.new_text for e in fix.edits] == ["embed_dim * 2"]
    fixed = apply_edits(path.read_text(), fix.edits)
    assert "self.linear = nn.Linear(embed_dim * 2, 256)" in fixed


def test_seed000_ex2_shapes(engine):
    report = check(engine, "seed000_ex2_mismatched_embedding.py")
    assert shape_of(report, "embedded").shape == [1, 10, 128]
    assert shape_of(report, "projected").shape == [1, 10, 256]
    assert shape_of(report, "projected").symbolic is None  # dims come from the file, not assumed
    assert shape_of(report, "projected").dtype == "float32"
    linear = shape_of(report, "self.linear", "layer")
    assert linear.input_shape == [1, 10, 256]  # what it really receives, before the probe repairs it
    assert linear.output_shape == [1, 10, 256]
    assert linear.params == 128 * 256 + 256


def test_fix_makes_seed000_ex2_clean(engine, workspace):
    src = (SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text()
    report = check(engine, "seed000_ex2_mismatched_embedding.py")
    workspace.write("m.py", apply_edits(src, report.findings[0].fixes[0].edits))
    assert workspace.check("m.py").findings == []


def test_seed001_shapes(engine):
    assert shape_of(check(engine, "seed001_ex1_word_embedding.py"), "embedding").shape == [1, 32]
    assert shape_of(check(engine, "seed001_ex2_batch_embedding.py"), "embeddings").shape == [2, 3, 64]


def test_seed001_ex3_index_out_of_range_on_the_literal(engine):
    path = SAMPLES / "seed001_ex3_out_of_vocab.py"
    report = check(engine, path.name)
    assert [f.code for f in report.findings] == ["index-out-of-range"]
    finding = report.findings[0]
    assert finding.range == locate(path, "input_indices = torch.tensor([100, 2001, 500])", "2001")
    assert "2000" in finding.message and "0..1999" in finding.message
    assert finding.related and "num_embeddings" in finding.related[0].message


def test_mha_embed_dim_mismatch(engine):
    path = SAMPLES / "mha_embed_dim_mismatch.py"
    report = check(engine, path.name)
    assert [f.code for f in report.findings] == ["embed-dim-mismatch"]
    finding = report.findings[0]
    assert finding.range == locate(path, "self.attn = nn.MultiheadAttention(embed_dim", "embed_dim")
    assert "embed_dim_to_check" in finding.message
    assert finding.fixes and finding.fixes[0].edits[0].new_text == "in_dim * 2"


def test_index_dtype(engine):
    path = SAMPLES / "index_dtype.py"
    report = check(engine, path.name)
    assert [f.code for f in report.findings] == ["index-dtype"]
    finding = report.findings[0]
    assert finding.range == locate(path, "ids = torch.tensor", "torch.tensor([[1.0, 5.0, 7.0]])")
    fixed = apply_edits(path.read_text(), finding.fixes[0].edits)
    assert "torch.tensor([[1.0, 5.0, 7.0]], dtype=torch.long)" in fixed


def test_invalid_layer_config(engine):
    path = SAMPLES / "invalid_layer_config.py"
    report = check(engine, path.name)
    assert [f.code for f in report.findings] == ["invalid-layer-config"]
    finding = report.findings[0]
    assert finding.range == locate(path, "self.attn = nn.MultiheadAttention(d_model, heads", "heads")
    assert "divisible" in finding.message
    # The model is still probed with a repaired head count: shapes exist after the bad layer.
    assert shape_of(report, "out").shape[-1] == 100


def test_shape_error_on_the_failing_line(engine):
    path = SAMPLES / "shape_error.py"
    report = check(engine, path.name)
    assert [f.code for f in report.findings] == ["shape-error"]
    finding = report.findings[0]
    assert finding.range["start"]["line"] == locate(path, "return h.view(-1, 7)", "h")["start"]["line"]
    assert "[-1, 7]" in finding.message


def test_probe_incomplete_says_which_hint_helps(engine):
    path = SAMPLES / "probe_incomplete.py"
    report = check(engine, path.name)
    assert [f.code for f in report.findings] == ["probe-incomplete"]
    finding = report.findings[0]
    assert finding.severity == "information"
    assert finding.range == locate(path, "class Head", "Head")
    assert "# shapelens: Head(width=...)" in finding.message
