"""Notebooks without a worker: a notebook's cells as one program and back, IPython syntax
blanked, and the .ipynb file rewritten cell by cell with every other byte kept."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from shapelens.notebook.ipynb import NotebookError, read_notebook, with_sources
from shapelens.notebook.program import Cell, blank_ipython, localize, program_of
from shapelens.report.model import Finding, Fix, Related, TextEdit

NOTEBOOK = Path(__file__).parent / "data" / "notebooks" / "seed000_ex2.ipynb"


def rng(line: int, start: int, end: int) -> dict:
    return {"start": {"line": line, "character": start}, "end": {"line": line, "character": end}}


def test_code_cells_follow_each_other_and_markdown_is_left_out():
    program = program_of([Cell("# Title", code=False), Cell("import torch\n"), Cell("x = torch.zeros(2)")])
    assert program.text == "import torch\n\nx = torch.zeros(2)\n"
    # "import torch\n" is two lines in an editor (the newline starts an empty one), so cell 3 starts at 2
    assert program.starts == [None, 0, 2] and program.counts == [0, 2, 1]
    assert program.cell_at(2) == (2, 0) and program.cell_at(1) == (1, 1) and program.cell_at(3) is None
    assert program.program_line(2, 0) == 2 and program.program_line(0, 0) is None
    assert program.program_line(1, 2) is None  # past the cell's last line


@pytest.mark.parametrize("line", ["%matplotlib inline", "!pip install torch", "files = !ls", "x = %time f()",
                                  "model?", "model.linear??", "?model", "%%capture"])
def test_ipython_lines_are_blank(line):
    assert blank_ipython([line]) == [""]


def test_an_indented_magic_keeps_its_block_and_a_cell_magic_blanks_the_cell():
    assert blank_ipython(["for i in range(2):", "    !echo $i", "x = 1"]) == ["for i in range(2):", "    pass", "x = 1"]
    assert blank_ipython(["%%bash", "echo hi", "ls"]) == ["", "", ""]
    assert blank_ipython(["%%time", "x = 1", "%who"]) == ["", "x = 1", ""]  # its body runs as Python
    assert blank_ipython(["!pip install \\", "   torch", "y = 2"]) == ["", "", "y = 2"]
    # Python that only looks like it is kept
    kept = ["x = a % b", "if x != 2:", "    y = {'?': 1}", "z = f'{x!r}'"]
    assert blank_ipython(kept) == kept


def test_the_notebook_with_magics_parses_as_a_program():
    nb = read_notebook(NOTEBOOK.read_text())
    ast.parse(nb.program.text)
    assert [c.code for c in nb.cells] == [False, True, True, True]
    assert nb.program.text.splitlines()[0:2] == ["", ""]  # the two %magics of cell 2


def test_a_finding_moves_into_its_cell_with_its_related_locations_and_fix():
    program = program_of([Cell("md", code=False), Cell("import torch"), Cell("class A:\n    x = 1\n    y = 2")])
    finding = Finding.of("feature-mismatch", "/nb.ipynb", rng(3, 8, 9), "m",
                         related=[Related(rng(0, 0, 6), "there")],
                         fixes=[Fix("Change", [TextEdit(rng(3, 8, 9), "3")])])
    moved = localize(finding, program)
    assert (moved.path, moved.cell, moved.range) == ("/nb.ipynb", 3, rng(2, 8, 9))
    assert (moved.related[0].cell, moved.related[0].range) == (2, rng(0, 0, 6))
    assert moved.fixes[0].edits == [TextEdit(rng(2, 8, 9), "3", cell=3)]
    as_cells = localize(finding, program, name=lambda i: f"cell-{i}")
    assert (as_cells.path, as_cells.cell, as_cells.related[0].path) == ("cell-2", None, "cell-1")
    assert as_cells.fixes[0].path == "cell-2"


def test_a_fix_whose_edits_span_two_cells_is_dropped():
    program = program_of([Cell("a = 1"), Cell("b = 2")])
    finding = Finding.of("shape-error", "/nb.ipynb", rng(0, 0, 1), "m",
                         fixes=[Fix("Both", [TextEdit(rng(0, 4, 5), "3"), TextEdit(rng(1, 4, 5), "4")])])
    assert localize(finding, program).fixes == []


def test_a_rewrite_changes_only_the_edited_line_of_the_edited_cell():
    text = NOTEBOOK.read_text()
    nb = read_notebook(text)
    new_source = nb.cells[2].source.replace("nn.Linear(embed_dim, 256)", "nn.Linear(embed_dim * 2, 256)")
    new = with_sources(nb, {2: new_source})
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines()) if a != b]
    assert len(text.splitlines()) == len(new.splitlines()) and len(changed) == 1
    assert "embed_dim * 2, 256" in changed[0][1]
    before, after = json.loads(text), json.loads(new)
    after["cells"][2]["source"] = before["cells"][2]["source"]
    assert after == before


def test_a_rewrite_that_adds_lines_keeps_the_list_layout():
    text = NOTEBOOK.read_text()
    nb = read_notebook(text)
    new = with_sources(nb, {1: nb.cells[1].source + "\nimport math\n"})
    assert json.loads(new)["cells"][1]["source"][-2:] == ["import torch.nn as nn\n", "import math\n"]
    assert '    "import math\\n"\n   ]' in new  # items indented as Jupyter writes them
    start, end = new.index('"import math'), new.index("]", new.index('"import math'))
    assert new[:start].startswith(text[:text.index('"import torch.nn as nn"')])
    assert new[end:] == text[text.index("]", text.index('"import torch.nn as nn"')):]


def test_a_source_stored_as_one_string_stays_one_string():
    text = json.dumps({"cells": [{"cell_type": "code", "source": "x = 1\ny = 2", "metadata": {}, "outputs": []}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=2)
    nb = read_notebook(text)
    new = with_sources(nb, {0: "x = 1\ny = 3"})
    assert new == text.replace('"x = 1\\ny = 2"', '"x = 1\\ny = 3"')


@pytest.mark.parametrize("text, needle", [
    ('{"cells": [', "invalid JSON"),
    ("[1, 2]", "no `cells` list"),
    ('{"worksheets": [], "nbformat": 3}', "nbformat 3"),
    ('{"cells": [], "nbformat": 5}', "nbformat 5"),
    ('{"cells": [{"source": "x"}], "nbformat": 4}', "cell 1 has no `cell_type`"),
    ('{"cells": [{"cell_type": "code", "source": 3}], "nbformat": 4}', "cell 1's `source`"),
    ("[" * 100_000, "nested too deeply"),
])
def test_a_file_that_is_not_a_notebook_says_why(text, needle):
    with pytest.raises(NotebookError) as caught:
        read_notebook(text)
    assert needle in str(caught.value)


def test_another_language_s_notebook_has_no_program():
    text = json.dumps({"cells": [{"cell_type": "code", "source": "x <- 1", "metadata": {}, "outputs": []}],
                       "metadata": {"kernelspec": {"language": "R", "name": "ir"}}, "nbformat": 4, "nbformat_minor": 5})
    assert read_notebook(text).program.text == ""


def test_a_list_not_split_at_line_ends_is_rewritten_whole_and_nan_does_not_stop_the_reader():
    text = json.dumps({"cells": [{"cell_type": "code", "source": ["x = 1\ny", " = 2"], "metadata": {"v": float("nan")},
                                  "outputs": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)
    nb = read_notebook(text)
    assert nb.cells[0].source == "x = 1\ny = 2"
    new = with_sources(nb, {0: "x = 1\ny = 3"})
    assert json.loads(new)["cells"][0]["source"] == ["x = 1\n", "y = 3"] and "NaN" in new
