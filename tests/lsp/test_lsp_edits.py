"""Over LSP (the real server, worker and torch): what a warm edit redoes. An edit inside one class
re-plans only that top-level statement and re-probes only that class; a burst of edits settles on
the diagnostics a cold probe of the final text gives, fix re-probes included (the first answer to
an edit skips them, the same version is then probed again with them)."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_lsp_server import DATA, ROOT, TIMEOUT, capabilities, diagnostics, did_change, did_open, make_client, plain

pytestmark = pytest.mark.asyncio(loop_scope="module")
MODELS = DATA / "two_models.py"
TEXT = MODELS.read_text()
TYPED = "        h = torch.relu(h)\n"  # a new line in Head.forward
AT = TEXT.index("        return self.fc2(h)")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "shapelens", "serve"], client_factory=make_client))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=ROOT.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=ROOT.as_uri(), name="shapelens")],
        initialization_options={"shapelens": {"debounce": 50, "probeTimeout": 10}}))
    yield
    await lsp_client.shutdown_session()


def line_of(text: str, needle: str) -> int:
    """1-based, as the plan numbers statements."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


async def stats(client: LanguageClient, uri: str) -> dict:
    return plain(await client.protocol.send_request_async("shapelens/probeStats", {"textDocument": {"uri": uri}}))


async def settled(client: LanguageClient, uri: str, version: int) -> list[types.Diagnostic]:
    """The diagnostics of `version` once nothing more is coming for it: its first probe needed
    no fix re-probes, or the refining probe that made them is in."""
    await diagnostics(client, uri, version)

    async def done():
        s = await stats(client, uri)
        return s if s and s["version"] == version and (s["refine"] or not s.get("unverified")) else None

    deadline = time.monotonic() + TIMEOUT
    while await done() is None:  # (`until` takes a plain predicate: the request is polled here)
        assert time.monotonic() < deadline, f"{uri} v{version} never settled"
        await asyncio.sleep(0.05)
    return list(client.diagnostics.get(uri, []))


def close(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))


def key(d: types.Diagnostic) -> tuple:
    fixes = [f["title"] for f in (d.data or {}).get("fixes", [])]
    related = [(r.location.range, r.message) for r in d.related_information or []]
    return d.code, d.range, d.severity, d.message, fixes, related


async def test_an_edit_inside_one_class_replans_and_reprobes_only_that_class(client: LanguageClient):
    uri = MODELS.as_uri()
    did_open(client, uri, TEXT)
    await settled(client, uri, 1)
    opened = await stats(client, uri)
    assert opened["reused_classes"] == [] and opened["probed"] == 2
    try:
        did_change(client, uri, TEXT[:AT] + TYPED + TEXT[AT:], 2)
        assert await settled(client, uri, 2) == []
        edited = await stats(client, uri)
        # 5 top-level statements: the docstring, two imports and Encoder come from the cache.
        assert edited["replanned"] == [line_of(TEXT, "class Head")], edited["replanned"]
        assert edited["reused_statements"] == 4
        assert edited["reused_classes"] == ["Encoder"] and edited["probed"] == 1
    finally:
        close(client, uri)


async def test_a_burst_of_edits_settles_on_what_a_cold_probe_of_the_final_text_says(client: LanguageClient):
    uri = MODELS.as_uri()
    did_open(client, uri, TEXT)
    await settled(client, uri, 1)
    # Typed one keystroke at a time with no pause (each edit supersedes the last one's probe),
    # ending in a wrong fc1 width: unverified, two errors (on norm and fc2); the fix re-probes
    # find that one fix on fc1 resolves both.
    texts = [TEXT[:AT] + TYPED[:n] + TEXT[AT:] for n in range(9, len(TYPED) + 1)]
    final = texts[-1].replace("nn.Linear(dim, 64)", "nn.Linear(dim, 48)")
    texts.append(final)
    try:
        for version, text in enumerate(texts, 2):
            did_change(client, uri, text, version)
        last = len(texts) + 1
        warm = await settled(client, uri, last)
        assert (await stats(client, uri))["refine"], "the final version's first probe had fixes to choose among"
    finally:
        close(client, uri)
    # Cold: the same text under a name this server never planned or probed.
    cold_uri = (DATA / "two_models_cold_copy.py").as_uri()
    did_open(client, cold_uri, final)
    try:
        cold = await settled(client, cold_uri, 1)
        cold_stats = await stats(client, cold_uri)
        assert cold_stats["reused_classes"] == [] and not cold_stats["refine"]
    finally:
        close(client, cold_uri)
    assert [(d.code, d.range.start.line) for d in warm] == [("feature-mismatch", line_of(final, "self.fc1 =") - 1)]
    assert [key(d) for d in warm] == [key(d) for d in cold]
