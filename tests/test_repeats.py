"""Collapsing repeated blocks of a model table (report/repeats.py): pure, on hand-made rows."""

from __future__ import annotations

from dataclasses import dataclass

from shapelens.report.repeats import collapse_rows, tree


@dataclass
class Row:
    name: str
    depth: int
    kind: str
    width: int = 0


def key(r: Row) -> tuple:
    return (r.kind, r.width)


def block(i: int, width: int = 64, depth: int = 2, prefix: str = "blocks") -> list[Row]:
    base = f"{prefix}.{i}"
    return [Row(base, depth, "Block", width), Row(f"{base}.norm", depth + 1, "LayerNorm", width),
            Row(f"{base}.mlp", depth + 1, "Sequential", width), Row(f"{base}.mlp.0", depth + 2, "Linear", width),
            Row(f"{base}.mlp.1", depth + 2, "GELU", width)]


def shape(runs) -> list:
    """(name, count, children) per run: what a reader of the table sees."""
    return [(r.first.row.name, r.count, shape(r.children)) for r in runs]


def test_twelve_identical_blocks_are_one_run_with_the_first_blocks_children():
    rows = [Row("embed", 1, "Embedding"), Row("blocks", 1, "ModuleList")]
    for i in range(12):
        rows += block(i)
    rows.append(Row("head", 1, "Linear"))
    runs = collapse_rows(rows, key)
    assert shape(runs) == [
        ("embed", 1, []),
        ("blocks", 1, [("blocks.0", 12, [("blocks.0.norm", 1, []),
                                         ("blocks.0.mlp", 1, [("blocks.0.mlp.0", 1, []), ("blocks.0.mlp.1", 1, [])])])]),
        ("head", 1, []),
    ]
    (group,) = runs[1].children
    assert [m.row.name for m in group.members] == [f"blocks.{i}" for i in range(12)]


def test_a_block_that_differs_breaks_the_run():
    rows = [Row("blocks", 1, "ModuleList"), *block(0), *block(1), *block(2, width=32), *block(3), *block(4)]
    assert [(r.first.row.name, r.count) for r in collapse_rows(rows, key)[0].children] == [
        ("blocks.0", 2), ("blocks.2", 1), ("blocks.3", 2)]


def test_a_difference_deep_inside_a_block_breaks_the_run_too():
    changed = block(1)
    changed[3] = Row("blocks.1.mlp.0", 4, "Conv1d", 64)
    rows = [Row("blocks", 1, "ModuleList"), *block(0), *changed, *block(2)]
    assert [r.count for r in collapse_rows(rows, key)[0].children] == [1, 1, 1]


def test_named_siblings_that_look_alike_stay_apart():
    # q, k, v projections are the same layer type and width, but distinct roles: never `q × 3`.
    rows = [Row("q", 1, "Linear", 64), Row("k", 1, "Linear", 64), Row("v", 1, "Linear", 64)]
    assert [r.count for r in collapse_rows(rows, key)] == [1, 1, 1]


def test_a_bare_sequential_of_identical_layers_collapses_at_the_top():
    rows = [Row(str(i), 1, "Linear", 8) for i in range(5)]
    assert [(r.first.row.name, r.count) for r in collapse_rows(rows, key)] == [("0", 5)]


def test_tree_nests_a_depth_jump_under_the_nearest_shallower_row():
    (root,) = tree([Row("a", 1, "A"), Row("a.b.c", 3, "C"), Row("a.d", 2, "D")])
    assert [c.row.name for c in root.children] == ["a.b.c", "a.d"]
