"""The server never dies: protocol abuse, an edit storm, random edits, and clean exits, all over
real pipes to the real server (a raw JSON-RPC client, so it can send what editors would not)."""

from __future__ import annotations

import random
import statistics
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, SAMPLES
from support.procs import alive, descendants
from support.rawlsp import LspClient, server_cmd

SEED = SAMPLES / "seed000_ex2_mismatched_embedding.py"
FIGURES: dict[str, int] = {"fuzz inputs tried": 0, "faults injected": 0, "faults survived": 0, "stale publishes": 0}


def open_doc(client: LspClient, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": version,
                                                             "text": path.read_text() if text is None else text}})
    return uri


def assert_clean_log(client: LspClient) -> None:
    log = client.server_log()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def server():
    client = LspClient(server_cmd(), cwd=str(ROOT))
    client.initialize(str(ROOT), {"debounce": 0})
    yield client
    client.close()
    print("\nreliability figures:", FIGURES)


def test_protocol_abuse_gets_errors_or_empty_results(server):
    uri = open_doc(server, SEED)
    server.wait_diagnostics(uri, 1)
    _, result, error = server.request("shapelens/noSuchMethod", {}).result(timeout=10)
    assert error and error["code"] == -32601  # MethodNotFound
    ghost = (ROOT / "no_such_file.py").as_uri()
    for method, params in [
        ("textDocument/hover", {"textDocument": {"uri": ghost}, "position": {"line": 0, "character": 0}}),
        ("textDocument/inlayHint", {"textDocument": {"uri": ghost}, "range": {"start": {"line": 0, "character": 0},
                                                                            "end": {"line": 5, "character": 0}}}),
        ("textDocument/codeAction", {"textDocument": {"uri": ghost}, "range": {"start": {"line": 0, "character": 0},
                                     "end": {"line": 0, "character": 1}}, "context": {"diagnostics": []}}),
        ("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 9999, "character": 0}}),
        ("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 9999}}),
        ("textDocument/inlayHint", {"textDocument": {"uri": uri}, "range": {"start": {"line": 500, "character": 0},
                                                                          "end": {"line": 900, "character": 0}}}),
    ]:
        _, result, error = server.request(method, params).result(timeout=10)
        assert error is None or error["code"] in (-32602, -32603, -32600), (method, error)
        assert not result, (method, result)
    _, _, error = server.request("textDocument/hover", {"textDocument": {"uri": uri}}).result(timeout=10)
    assert error is not None  # missing position: an InvalidParams error, not a crash
    pending = server.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                    "position": {"line": 12, "character": 10}})
    server.notify("$/cancelRequest", {"id": 424242})
    server.notify("$/cancelRequest", {"id": pending_id(server)})
    pending.result(timeout=10)
    # Still alive and answering.
    _, result, error = server.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                             "position": {"line": 12, "character": 10}}).result(timeout=10)
    assert error is None and result and "256" in str(result)
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert_clean_log(server)


def pending_id(client: LspClient) -> int:
    return client._id  # the id of the request just sent


def test_edit_storm(server, engine):
    """500 didChange in ~5 s across 3 documents while hovers are measured."""
    names = ["seed000_ex2_mismatched_embedding.py", "mha_embed_dim_mismatch.py", "seed001_ex3_out_of_vocab.py"]
    docs = {}
    for name in names:
        path = SAMPLES / name
        uri = open_doc(server, path)
        server.wait_diagnostics(uri, 1)
        # Publishes before this point belong to earlier tests sharing the server.
        docs[uri] = {"path": path, "text": path.read_text(), "version": 1, "seen": len(server.published[uri])}
    publishes: dict[str, list[int]] = {uri: [] for uri in docs}
    hover_ms: list[float] = []
    stop = threading.Event()

    def hovering():
        uri = next(iter(docs))
        while not stop.is_set():
            sent = time.perf_counter()
            got, _, _ = server.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                              "position": {"line": 12, "character": 10}}).result(timeout=30)
            hover_ms.append((got - sent) * 1000)
            time.sleep(0.01)

    thread = threading.Thread(target=hovering)
    thread.start()
    rng = random.Random(7)
    started = time.perf_counter()
    for i in range(500):
        uri = rng.choice(list(docs))
        doc = docs[uri]
        doc["version"] += 1
        lines = doc["path"].read_text().splitlines()
        extra = rng.choice(["", "# comment", "x_tmp = 1", "    ", "import torch"])
        doc["text"] = "\n".join(lines + [extra] * rng.randint(0, 3)) + "\n"
        server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": doc["version"]},
                                                 "contentChanges": [{"text": doc["text"]}]})
        time.sleep(max(0.0, started + (i + 1) * 0.01 - time.perf_counter()))
    sent_all = time.perf_counter() - started
    for uri, doc in docs.items():
        _, final = server.wait_diagnostics(uri, doc["version"], timeout=60)
        expected = engine.check(str(doc["path"]), doc["text"])
        got = sorted((d["code"], d["range"]["start"]["line"], d["range"]["start"]["character"]) for d in final["diagnostics"])
        want = sorted((f.code, f.range["start"]["line"], f.range["start"]["character"]) for f in expected.findings)
        assert got == want, uri
    stop.set()
    thread.join()
    time.sleep(0.5)  # anything published after the final version would be stale
    for uri in docs:
        publishes[uri] = [params.get("version") for _, params in server.published[uri][docs[uri]["seen"]:]]
    stale = sum(1 for versions in publishes.values() for a, b in zip(versions, versions[1:]) if b is None or a is None or b <= a)
    stale += sum(1 for uri, versions in publishes.items() if versions and versions[-1] != docs[uri]["version"])
    FIGURES["stale publishes"] += stale
    assert stale == 0, publishes
    assert sent_all < 8
    p95 = sorted(hover_ms)[int(0.95 * (len(hover_ms) - 1))]
    print(f"\nstorm: 500 edits in {sent_all:.1f} s, {len(hover_ms)} hovers, p95 {p95:.1f} ms, "
          f"median {statistics.median(hover_ms):.1f} ms")
    assert p95 <= 50
    for uri in docs:
        server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert_clean_log(server)


EDITS = st.lists(st.tuples(st.sampled_from(["delete", "insert", "duplicate", "swap", "chars"]),
                           st.integers(0, 10_000), st.integers(0, 10_000),
                           st.text(alphabet="()[]:,.=+-*/ \n\tabcxyz0123456789'\"#\\é€", max_size=12)),
                 min_size=1, max_size=6)
SAMPLE_TEXTS = {p.name: p.read_text() for p in sorted(SAMPLES.glob("*.py")) if p.name != "llama_7b.py"}


def mutate(text: str, edits) -> str:
    lines = text.splitlines()
    for op, a, b, chars in edits:
        if not lines:
            lines = [""]
        i, j = a % len(lines), b % len(lines)
        if op == "delete":
            del lines[i]
        elif op == "insert":
            lines.insert(i, chars)
        elif op == "duplicate":
            lines.insert(i, lines[j])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        else:
            line = lines[i]
            k = b % (len(line) + 1)
            lines[i] = line[:k] + chars + line[k:]
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(SAMPLE_TEXTS)), edits=EDITS)
def test_fuzzed_edits_never_break_the_server(server, name, edits):
    path = SAMPLES / name
    uri = open_doc(server, path, SAMPLE_TEXTS[name])
    server.wait_diagnostics(uri, 1)
    text = mutate(SAMPLE_TEXTS[name], edits)
    FIGURES["fuzz inputs tried"] += 1
    server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": text}]})
    _, params = server.wait_diagnostics(uri, 2, timeout=60)
    assert all(d.get("source") == "shapelens" for d in params["diagnostics"])
    _, _, error = server.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                        "position": {"line": 3, "character": 4}}).result(timeout=10)
    assert error is None
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert server.proc.poll() is None
    assert_clean_log(server)


FAULTS = {
    "hang": "while True:\n            x = x + 1",
    "abort": "os.abort()",
    "exit": "sys.exit(1)",
    "segfault": "ctypes.string_at(0)",
    "memory": "buffer = bytearray(10**12)",  # the meta device allocates no tensor memory; Python does
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_injected_faults_are_survived(server, tmp_path, fault):
    body = FAULTS[fault]
    text = ("import os, sys, ctypes\nimport torch\nimport torch.nn as nn\n\n\nclass Bad(nn.Module):\n"
            f"    def forward(self, x):\n        {body}\n        return x\n\n\nm = Bad()\ny = m(torch.zeros(2))\n")
    path = tmp_path / f"fault_{fault}.py"
    path.write_text(text)
    FIGURES["faults injected"] += 1
    uri = open_doc(server, path)
    _, params = server.wait_diagnostics(uri, 1, timeout=60)
    assert [d["code"] for d in params["diagnostics"]] == ["probe-incomplete"], params
    # The fault's line (the loop body for the hang), or the module-level call when a process
    # died without a trace.
    assert params["diagnostics"][0]["range"]["start"]["line"] in (7, 8, 12), params
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    # The next probe works.
    uri = open_doc(server, SEED)
    _, params = server.wait_diagnostics(uri, 1, timeout=60)
    assert [d["code"] for d in params["diagnostics"]] == ["feature-mismatch"]
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    FIGURES["faults survived"] += 1


def test_no_worker_outlives_shutdown_and_exit():
    client = LspClient(server_cmd(), cwd=str(ROOT))
    client.initialize(str(ROOT), {"debounce": 0})
    uri = open_doc(client, SEED)
    client.wait_diagnostics(uri, 1, timeout=120)
    procs = descendants(client.proc.pid)
    assert procs, "the server should have started its probe worker"
    client.close()
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(p) for p in procs):
        time.sleep(0.1)
    assert not [p for p in procs if alive(p)]
    assert client.proc.returncode == 0


def test_hover_and_inlay_hints_never_trigger_a_probe(server):
    """Every probe ends in a publish; a burst of requests must leave the publish count alone."""
    uri = open_doc(server, SEED)
    server.wait_diagnostics(uri, 1)
    published = len(server.published[uri])
    for line in range(20):
        server.request("textDocument/hover", {"textDocument": {"uri": uri},
                                              "position": {"line": line, "character": 10}}).result(timeout=10)
        server.request("textDocument/inlayHint", {"textDocument": {"uri": uri}, "range": {
            "start": {"line": 0, "character": 0}, "end": {"line": 30, "character": 0}}}).result(timeout=10)
    time.sleep(1.0)  # longer than the debounce (0 here) plus a probe of this file
    assert len(server.published[uri]) == published
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
