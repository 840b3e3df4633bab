"""Shared fixtures: one real probe worker for the whole session (real torch, real processes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def worker():
    from shapelens.probe.client import WorkerClient

    client = WorkerClient()
    client.start()
    yield client
    client.close()


@pytest.fixture(scope="session")
def engine(worker):
    from shapelens.engine import Engine

    return Engine(str(ROOT), worker=worker)


@pytest.fixture
def workspace(tmp_path, worker):
    """A fresh workspace folder with its own engine (sharing the session's worker)."""
    from shapelens.engine import Engine

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ws'\n")

    class Workspace:
        root = tmp_path

        def write(self, name: str, text: str) -> Path:
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return path

        def check(self, name: str, **options):
            from shapelens.engine import ProbeOptions

            path = tmp_path / name
            eng = Engine(str(tmp_path), worker=worker)
            return eng.check(str(path), path.read_text(), ProbeOptions(**options) if options else None)

    return Workspace()
