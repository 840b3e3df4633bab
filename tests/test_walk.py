"""Which files a folder walk covers: a real git repository with an ignored folder (through git,
and through the .gitignore reader used where git is missing), --no-respect-gitignore, config
excludes, and files named on the command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from shapelens.cli.files import WalkOptions, collect_files
from shapelens.config import load_config


def configs(path: str):
    from shapelens.engine import find_root
    return load_config(find_root(path))


@pytest.fixture
def repo(tmp_path):
    """src/ (checked), data/ (git-ignored), generated/keep.py (re-included by `!`), a tracked and an
    untracked file, nested .gitignore, build/ (excluded by default)."""
    for rel in ("src/model.py", "src/untracked.py", "data/cache.py", "src/gen/out.py", "src/gen/keep.py",
                "build/lib.py", "logs/run.py", "src/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("# generated stuff\ndata/\n*.log\n/logs\n")
    (tmp_path / "src" / ".gitignore").write_text("gen/*\n!gen/keep.py\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'r'\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "src/model.py", ".gitignore", "src/.gitignore"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=tmp_path, check=True)
    return tmp_path


def names(files, root) -> list[str]:
    return sorted(Path(os.path.relpath(f, root)).as_posix() for f in files)


EXPECTED = ["src/gen/keep.py", "src/model.py", "src/untracked.py"]


def test_git_ignored_folders_are_skipped(repo):
    assert names(collect_files([str(repo)], configs, WalkOptions()), repo) == EXPECTED


def test_without_git_the_gitignore_files_are_read(repo, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no git binary: the fallback reader
    assert names(collect_files([str(repo)], configs, WalkOptions()), repo) == EXPECTED


def test_no_respect_gitignore_checks_everything_but_the_default_excludes(repo):
    got = names(collect_files([str(repo)], configs, WalkOptions(respect_gitignore=False)), repo)
    assert got == ["data/cache.py", "logs/run.py", "src/gen/keep.py", "src/gen/out.py", "src/model.py",
                   "src/untracked.py"]


def test_config_can_turn_gitignore_off_and_exclude_more(repo):
    (repo / "pyproject.toml").write_text('[tool.shapelens]\nrespect-gitignore = false\nextend-exclude = ["src/gen"]\n')
    got = names(collect_files([str(repo)], configs, WalkOptions()), repo)
    assert got == ["data/cache.py", "logs/run.py", "src/model.py", "src/untracked.py"]


@pytest.mark.parametrize("git", [True, False])
def test_a_named_file_is_checked_unless_force_exclude(repo, monkeypatch, git):
    if not git:
        monkeypatch.setenv("PATH", "/nonexistent")
    ignored = str(repo / "data" / "cache.py")
    assert collect_files([ignored], configs, WalkOptions()) == [ignored]
    assert collect_files([ignored, str(repo / "build" / "lib.py")], configs, WalkOptions(force_exclude=True)) == []
    kept = str(repo / "src" / "model.py")
    assert collect_files([kept], configs, WalkOptions(force_exclude=True)) == [kept]


def test_a_named_excluded_folder_is_walked(repo):
    assert names(collect_files([str(repo / "build")], configs, WalkOptions()), repo) == ["build/lib.py"]


@pytest.mark.parametrize("git", [True, False])
def test_a_named_ignored_folder_is_walked(repo, monkeypatch, git):
    if not git:
        monkeypatch.setenv("PATH", "/nonexistent")
    assert names(collect_files([str(repo / "data")], configs, WalkOptions()), repo) == ["data/cache.py"]
