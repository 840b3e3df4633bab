"""[tool.shapelens] as the CLI and the language server read it: every key applied, every unknown
key or bad value a warning that names it, never an exception."""

from __future__ import annotations

import pytest

from shapelens.config import ConfigCache, glob_matches, load_config, parse_section


def test_a_full_section_applies_every_key(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.shapelens]\n'
        'select = ["feature-mismatch", "shape-error", "probe-incomplete"]\n'
        'ignore = ["shape-error"]\n'
        'extend-exclude = ["legacy/**", "scratch"]\n'
        'show-unused-ignores = true\n'
        'sizes = { B = 4 }\n'
        '[tool.shapelens.per-file-ignores]\n'
        '"tests/*.py" = ["probe-incomplete"]\n'
        '[tool.shapelens.severity]\n'
        'probe-incomplete = "warning"\n')
    cfg = load_config(str(tmp_path))
    assert cfg.warnings == []
    model, test = str(tmp_path / "model.py"), str(tmp_path / "tests" / "test_model.py")
    assert cfg.enabled(model, "feature-mismatch") and not cfg.enabled(model, "index-dtype")
    assert not cfg.enabled(model, "shape-error")  # ignore wins over select
    assert cfg.enabled(model, "probe-incomplete") and not cfg.enabled(test, "probe-incomplete")
    assert cfg.enabled(model, "syntax-error")  # a file that does not parse is always reported
    assert cfg.enabled(model, "unused-ignore")
    assert cfg.severity_of("probe-incomplete", "information") == "warning"
    assert cfg.excluded(str(tmp_path / "legacy" / "old" / "m.py"))
    assert cfg.excluded(str(tmp_path / "pkg" / "scratch" / "m.py"))
    assert cfg.excluded(str(tmp_path / "build" / "m.py"))  # the default excludes stay with extend-exclude
    assert not cfg.excluded(model)


def test_exclude_replaces_the_defaults_and_a_named_folder_is_still_walked(tmp_path):
    cfg = parse_section({"exclude": ["gen"]}, str(tmp_path))
    assert not cfg.excluded(str(tmp_path / "build" / "m.py"))
    assert cfg.excluded(str(tmp_path / "gen" / "m.py"))
    # `shapelens check gen/`: the folder the user named is not excluded by its own name
    assert not cfg.excluded(str(tmp_path / "gen" / "m.py"), inside=str(tmp_path / "gen"))
    assert cfg.excluded(str(tmp_path / "gen" / "gen" / "m.py"), inside=str(tmp_path / "gen"))


@pytest.mark.parametrize("section, needle", [
    ({"ignroe": ["shape-error"]}, "ignroe: unknown key"),
    ({"image_sizes": [32], "per_file_ignores": {}}, "per_file_ignores: unknown key; did you mean 'per-file-ignores'"),
    ({"select": ["feature-mismatch", "F401"]}, "select: unknown code 'F401'"),
    ({"ignore": "shape-error,index-dtype"}, "ignore: unknown code 'shape-error,index-dtype'"),
    ({"exclude": "build"}, "exclude: expected a list of glob patterns"),
    ({"severity": {"shape-error": "fatal"}}, "severity.shape-error: expected error, warning, information or hint"),
    ({"severity": {"bogus": "error"}}, "severity.bogus: unknown code"),
    ({"per-file-ignores": {"tests/*": ["nope"]}}, "per-file-ignores.'tests/*': unknown code 'nope'"),
    ({"show-unused-ignores": "yes"}, "show-unused-ignores: expected true or false"),
    ({"sizes": {"B": -1}}, "sizes.B: expected a positive whole number"),
    ({"models": {"GPT": {"init": "GPT()", "kwarg": {}}}}, "models.GPT.kwarg: unknown key"),
])
def test_each_bad_key_or_value_is_a_warning_naming_it(tmp_path, section, needle):
    cfg = parse_section(section, str(tmp_path))
    assert any(needle in w for w in cfg.warnings), cfg.warnings


def test_a_broken_pyproject_is_a_warning_not_an_exception(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.shapelens\nselect = [")
    cfg = load_config(str(tmp_path))
    assert len(cfg.warnings) == 1 and "cannot read [tool.shapelens]" in cfg.warnings[0]
    assert cfg.enabled(str(tmp_path / "m.py"), "shape-error")  # the defaults still apply


def test_the_cache_rereads_a_changed_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.shapelens]\nignore = ["shape-error"]\n')
    cache = ConfigCache()
    first, fresh = cache.get(str(tmp_path))
    assert fresh and first.ignore == {"shape-error"}
    assert cache.get(str(tmp_path)) == (first, False)
    pyproject.write_text('[tool.shapelens]\nignore = ["index-dtype"]\nbogus = 1\n')
    import os
    os.utime(pyproject, ns=(1, 1))
    second, fresh = cache.get(str(tmp_path))
    assert fresh and second.ignore == {"index-dtype"} and "bogus" in second.warnings[0]


@pytest.mark.parametrize("pattern, path, expect", [
    ("build", "a/build/x.py", True),
    ("build", "a/builder/x.py", False),
    ("*.gen.py", "pkg/m.gen.py", True),
    ("tests/*.py", "tests/test_a.py", True),
    ("tests/*.py", "tests/sub/test_a.py", False),
    ("tests/**/*.py", "tests/sub/deep/test_a.py", True),
    ("tests/**/*.py", "tests/test_a.py", True),
    ("legacy/", "legacy/m.py", True),
    ("/legacy", "src/legacy/m.py", False),
    ("src/[ab]*.py", "src/alpha.py", True),
    ("src/[!ab]*.py", "src/alpha.py", False),
])
def test_glob_patterns(pattern, path, expect):
    assert glob_matches(pattern, path) is expect
