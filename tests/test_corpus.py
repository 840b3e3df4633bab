"""The corpus of classic architectures (tests/corpus/): each file probes with no error and a shape
for every layer; each mutant that breaks a model (one declared width doubled, see mutants.py) is
caught with exactly one error on a layer's width argument, whose fix makes the file clean."""

from __future__ import annotations

import shutil

import pytest

from helpers import errors
from mutants import CORPUS, clean_reports, evaluate, mutants_of
from shapelens.report.fixes import apply_edits

FILES = sorted(p.name for p in CORPUS.glob("*.py"))


@pytest.fixture(scope="module")
def clean(engine):
    return clean_reports(engine)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_probes_clean_with_a_shape_for_every_layer(clean, name):
    report = clean[name]
    assert errors(report) == [], [f.message for f in errors(report)]
    layers = [s for s in report.shapes if s.kind == "layer" and s.path == str(CORPUS / name)]
    unshaped = [(s.name, s.range["start"]["line"] + 1) for s in layers if s.input_shape is None or s.output_shape is None]
    assert layers and unshaped == []


def test_the_corpus_covers_what_it_claims():
    texts = {name: (CORPUS / name).read_text() for name in FILES}
    assert len(FILES) >= 14
    assert any("@dataclass" in t for t in texts.values())
    assert any("from mnist_cnn import Net" in t for t in texts.values())
    assert sum("class " not in t for t in texts.values()) >= 2  # script-style files
    assert sum(len(mutants_of(CORPUS / name)) for name in FILES) >= 150


def test_mutants_are_caught_with_one_fixable_error_and_no_false_errors(engine, clean):
    outcomes = evaluate(engine)
    breaking = [o for o in outcomes if not o.equivalent]
    caught = [o for o in breaking if o.caught]
    false = [o for o in outcomes if o.equivalent and o.errors]
    missed = "\n".join(o.describe() for o in breaking if not o.caught)
    print(f"\nmutants caught: {len(caught)} / {len(breaking)}; equivalent: {len(outcomes) - len(breaking)}; "
          f"false errors: {sum(len(o.errors) for o in false)}\nmissed:\n{missed}")
    assert false == [], "\n".join(o.describe() for o in false)
    assert len(breaking) >= 150
    assert len(caught) / len(breaking) >= 0.95, missed


def test_a_mutant_in_an_imported_file_is_fixed_in_that_file(workspace):
    for name in ("mnist_cnn.py", "train_mnist.py"):
        shutil.copy(CORPUS / name, workspace.root / name)
    model = workspace.root / "mnist_cnn.py"
    model.write_text(model.read_text().replace("nn.Linear(9216, 128)", "nn.Linear(9216, 100)"))
    report = workspace.check("train_mnist.py")
    [finding] = errors(report)
    assert finding.path == str(model.resolve())
    assert "fc2" in finding.message or "fc1" in finding.message
    assert any(s.path == str(model.resolve()) and s.name == "self.conv2" and s.output_shape == [64, 64, 24, 24]
               for s in report.shapes)  # shapes (hovers) in the imported file, for the batch made here
    edits = finding.fixes[0].edits
    model.write_text(apply_edits(model.read_text(), edits))
    assert errors(workspace.check("train_mnist.py")) == []
