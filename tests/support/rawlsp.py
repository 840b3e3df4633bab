"""A minimal LSP client over pipes (benchmark and protocol tests): JSON-RPC framing, requests
with futures, diagnostics collected with their arrival time. Deliberately independent of the
server's own libraries, so it can also send what a well-behaved client would not."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path


class LspClient:
    def __init__(self, cmd: list[str], cwd: str | None = None) -> None:
        self.stderr_path = tempfile.NamedTemporaryFile(prefix="shapelens-server-", suffix=".log", delete=False).name
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     cwd=cwd)
        self._id = 0
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        # Every publishDiagnostics, in arrival order: (time, params), by document URI.
        self.published: dict[str, list[tuple[float, dict]]] = {}
        self._cursor: dict[str, int] = {}
        self.messages: list[str] = []  # window/showMessage and logMessage texts, in arrival order
        self._arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.decode().strip()
                if not line:
                    break
                key, _, value = line.partition(":")
                headers[key.lower()] = value.strip()
            body = json.loads(out.read(int(headers["content-length"])))
            now = time.perf_counter()
            if "id" in body and "method" not in body:
                fut = self._pending.pop(body["id"], None)
                if fut:
                    fut.set_result((now, body.get("result"), body.get("error")))
            elif body.get("method") == "textDocument/publishDiagnostics":
                with self._arrived:
                    self.published.setdefault(body["params"]["uri"], []).append((now, body["params"]))
                    self._arrived.notify_all()
            elif body.get("method") in ("window/showMessage", "window/logMessage"):
                self.messages.append(body["params"].get("message", ""))
            elif "id" in body:  # a request from the server (progress, config): answer null
                self._send({"jsonrpc": "2.0", "id": body["id"], "result": None})

    def _send(self, msg: dict) -> None:
        data = json.dumps(msg).encode()
        with self._lock:
            self.proc.stdin.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
            self.proc.stdin.flush()

    def request(self, method: str, params) -> Future:
        with self._lock:
            self._id += 1
            rid = self._id
        fut: Future = Future()
        self._pending[rid] = fut
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return fut

    def notify(self, method: str, params) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def initialize(self, root: str, options: dict) -> None:
        self.request("initialize", {"processId": None, "rootUri": Path(root).as_uri(),
                                    "capabilities": {"textDocument": {"publishDiagnostics": {"versionSupport": True},
                                                                      "hover": {}, "inlayHint": {}}},
                                    "initializationOptions": options}).result(timeout=120)
        self.notify("initialized", {})

    def wait_diagnostics(self, uri: str, version: int | None, timeout: float = 60) -> tuple[float, dict]:
        """The next publish for `uri` (for `version`, when given) not returned before."""
        deadline = time.perf_counter() + timeout
        with self._arrived:
            while True:
                history = self.published.get(uri, [])
                while self._cursor.get(uri, 0) < len(history):
                    t, params = history[self._cursor.get(uri, 0)]
                    self._cursor[uri] = self._cursor.get(uri, 0) + 1
                    if version is None or params.get("version") == version:
                        return t, params
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"no diagnostics for {uri} v{version}")
                self._arrived.wait(left)

    def server_log(self) -> str:
        self._stderr.flush()
        return Path(self.stderr_path).read_text(errors="replace")

    def close(self) -> None:
        try:
            self.request("shutdown", None).result(timeout=10)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def server_cmd() -> list[str]:
    return [sys.executable, "-m", "shapelens", "serve"]
