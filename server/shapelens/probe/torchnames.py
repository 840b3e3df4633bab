"""torch's public names and what they are, for the planner (editor side, torch-free).

The table comes from the probe worker, which builds it from the real objects
(`shapelens.probe.worker.names`), once per torch installation: it is kept under the user cache
dir, keyed by torch's version and location, which the worker says before it imports torch. So a
plan can use it while the worker is still importing torch, and the editor process never imports
torch itself. Jedi stays in charge of everything else (the workspace's own names, re-exports).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

from shapelens.probe.client import WorkerClient, WorkerUnavailable

FORMAT = 1  # bump when the worker's table changes shape


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "shapelens" / "torch-names"


def cache_file(version: str, origin: str, folder: Path | None = None) -> Path:
    digest = hashlib.sha256(f"{FORMAT}\0{version}\0{os.path.realpath(origin)}".encode()).hexdigest()[:16]
    return (folder or cache_dir()) / f"torch-{version.replace(os.sep, '_')}-{digest}.json"


class TorchNames:
    """Public dotted name (`torch.nn.Linear`) -> (canonical name, kind), or None when unknown."""

    def __init__(self, worker: WorkerClient, folder: Path | None = None, wait_s: float = 120.0) -> None:
        self.worker = worker
        self.folder = folder
        self.wait_s = wait_s
        self.source: str | None = None  # "disk" or "worker" once loaded (tests check which)
        self._names: dict[str, list[str]] | None = None
        self._failed = False
        self._lock = threading.Lock()

    def lookup(self, dotted: str) -> tuple[str, str] | None:
        names = self.names()
        entry = names.get(dotted) if names else None
        return (entry[0], entry[1]) if entry else None

    def names(self) -> dict[str, list[str]] | None:
        with self._lock:
            if self._names is None and not self._failed:
                self._names = self._load()
                self._failed = self._names is None
            return self._names

    def _load(self) -> dict[str, list[str]] | None:
        try:
            self.worker.start(wait=False)
        except WorkerUnavailable:
            return None
        hello = self.worker.wait_hello(self.wait_s)
        version, origin = hello.get("torch_version"), hello.get("torch_origin")
        if not (isinstance(version, str) and isinstance(origin, str)):
            return None  # no torch in that interpreter (the probe says so) or an old worker
        path = cache_file(version, origin, self.folder)
        names = _read(path, version, origin)
        if names is not None:
            self.source = "disk"
            return names
        try:
            _, fut = self.worker.request("torch_names")
            answer = fut.result(self.wait_s)
        except (WorkerUnavailable, TimeoutError, OSError):
            return None
        result = answer.get("result") if answer.get("ok") else None
        if not isinstance(result, dict) or not isinstance(result.get("names"), dict):
            return None
        _write(path, {"format": FORMAT, "version": version, "origin": os.path.realpath(origin),
                      "names": result["names"]})
        self.source = "worker"
        return result["names"]


def _read(path: Path, version: str, origin: str) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (isinstance(data, dict) and data.get("format") == FORMAT and data.get("version") == version
          and data.get("origin") == os.path.realpath(origin) and isinstance(data.get("names"), dict))
    return data["names"] if ok else None


def _write(path: Path, data: dict) -> None:
    """Atomically (another process may read it meanwhile); a cache that cannot be written is
    only slower next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        pass
