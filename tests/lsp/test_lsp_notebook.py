"""Notebooks over LSP 3.17 (the real server, worker and torch): seed 000 example 2 split into
cells (markdown / imports with magics / the class / construction and forward). Diagnostics go to
the class cell with ranges inside it, hovers and inlay hints answer in cells, the quick fix edits
the cell, an edit that fixes the cell clears the squiggle, and a result for an older notebook
version is never published."""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_lsp_server import ROOT, apply, capabilities, did_change, make_client, plain, rng, until

pytestmark = pytest.mark.asyncio(loop_scope="module")
NOTEBOOK = ROOT / "tests" / "data" / "notebooks" / "seed000_ex2.ipynb"
SLOW = Path(__file__).resolve().parent / "data" / "slow_forward.py"
CLASS_CELL = 2  # 0-based index of the class cell (the markdown cell counts)


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "shapelens", "serve"], client_factory=make_client))
async def client(lsp_client: LanguageClient):
    caps = capabilities()
    caps.notebook_document = types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities())
    result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=caps, root_uri=ROOT.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=ROOT.as_uri(), name="shapelens")],
        initialization_options={"shapelens": {"debounce": 50, "probeTimeout": 10}}))
    lsp_client.server_capabilities = result.capabilities
    yield
    await lsp_client.shutdown_session()


def cells_of(path: Path) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"])) for c in json.loads(path.read_text())["cells"]]


def cell_uri(path: Path, index: int) -> str:
    return f"vscode-notebook-cell:{path.as_posix()}#W{index}sZmlsZQ%3D%3D"  # as VS Code spells them


def open_notebook(client: LanguageClient, path: Path, cells: list[tuple[str, str]], version: int = 1) -> list[str]:
    uris = [cell_uri(path, i) for i in range(len(cells))]
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(
            uri=path.as_uri(), notebook_type="jupyter-notebook", version=version,
            cells=[types.NotebookCell(kind=types.NotebookCellKind.Code if kind == "code" else types.NotebookCellKind.Markup,
                                      document=uri) for uri, (kind, _) in zip(uris, cells)]),
        cell_text_documents=[types.TextDocumentItem(uri=uri, language_id="python" if kind == "code" else "markdown",
                                                    version=1, text=text)
                             for uri, (kind, text) in zip(uris, cells)]))
    return uris


def edit_cell(client: LanguageClient, path: Path, version: int, uri: str, text: str, cell_version: int) -> None:
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(version=version, uri=path.as_uri()),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
            types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=uri, version=cell_version),
                changes=[types.TextDocumentContentChangeWholeDocument(text=text)])]))))


async def published(client: LanguageClient, uris: list[str], since: int,
                    version: int = 1) -> dict[str, list[types.Diagnostic]]:
    """The diagnostics of every cell, once each cell got a publish for its `version` after the
    `since`-th (a closed notebook's clearing publishes have no version)."""
    def of(u: str) -> list:
        return [p for p in client.published[since:] if p.uri == u and p.version == version]

    await until(lambda: all(of(u) for u in uris), "a publish per cell")
    return {u: list(of(u)[-1].diagnostics) for u in uris}


@asynccontextmanager
async def notebook(client: LanguageClient, path: Path, cells: list[tuple[str, str]] | None = None):
    cells = cells or cells_of(NOTEBOOK)
    since = len(client.published)
    uris = open_notebook(client, path, cells)
    try:
        yield uris, await published(client, uris, since)
    finally:
        client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=path.as_uri()),
            cell_text_documents=[types.TextDocumentIdentifier(uri=u) for u in uris]))


async def test_the_server_declares_notebook_sync_for_python_cells(client: LanguageClient):
    sync = client.server_capabilities.notebook_document_sync
    (selector,) = sync.notebook_selector
    assert selector.notebook == "jupyter-notebook" and [c.language for c in selector.cells] == ["python"]


async def test_the_mismatch_is_published_to_the_class_cell_at_embed_dim(client: LanguageClient):
    async with notebook(client, NOTEBOOK) as (uris, diags):
        (diag,) = diags[uris[CLASS_CELL]]
        assert all(diags[u] == [] for u in uris if u != uris[CLASS_CELL])  # the magics did not break parsing
        # `embed_dim` in `        self.linear = nn.Linear(embed_dim, 256)`, line 5 of the cell
        assert (diag.code, diag.range) == ("feature-mismatch", rng(5, 32, 41))
        related = diag.related_information[0]
        assert related.location.uri == uris[CLASS_CELL] and related.location.range == rng(4, 8, 61)
        assert any(r.location.uri == uris[3] for r in diag.related_information)  # the input, in the last cell
        assert diag.data["version"] == 1 and diag.data["fixes"][0]["uri"] == uris[CLASS_CELL]


async def test_hover_and_inlay_hints_answer_in_cells(client: LanguageClient):
    async with notebook(client, NOTEBOOK) as (uris, _):
        found = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uris[CLASS_CELL]),
            position=types.Position(line=9, character=10)))  # `projected` in `projected = self.projection(...)`
        assert "[1, 10, 256]" in found.contents.value and found.range == rng(9, 8, 17)
        hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uris[CLASS_CELL]), range=rng(0, 0, 0, 20)))
        labels = {(h.position.line, h.label) for h in hints}
        assert (9, ": [1, 10, 256]") in labels and all(line < 11 for line, _ in labels)
        elsewhere = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uris[0]), position=types.Position(line=0, character=3)))
        assert elsewhere is None  # the markdown cell


async def test_the_quick_fix_edits_the_cell_and_the_fixed_cell_is_clean(client: LanguageClient):
    cells = cells_of(NOTEBOOK)
    async with notebook(client, NOTEBOOK, cells) as (uris, diags):
        (diag,) = diags[uris[CLASS_CELL]]
        actions = await client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uris[CLASS_CELL]), range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag], only=[types.CodeActionKind.QuickFix])))
        fix = actions[0]
        assert fix.title == "Change in_features to embed_dim * 2" and fix.is_preferred
        (change,) = fix.edit.document_changes
        assert change.text_document.uri == uris[CLASS_CELL] and change.text_document.version == 1
        fixed = apply(cells[CLASS_CELL][1], fix.edit, uris[CLASS_CELL])
        assert "self.linear = nn.Linear(embed_dim * 2, 256)" in fixed
        since = len(client.published)
        edit_cell(client, NOTEBOOK, 2, uris[CLASS_CELL], fixed, 2)
        after = await published(client, uris[CLASS_CELL:CLASS_CELL + 1], since, version=2)
        assert after == {uris[CLASS_CELL]: []}


async def test_fix_all_and_the_model_summary_work_in_the_cell(client: LanguageClient):
    async with notebook(client, NOTEBOOK) as (uris, diags):
        (action,) = await client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uris[CLASS_CELL]), range=rng(0, 0, 0),
            context=types.CodeActionContext(diagnostics=[], only=[types.CodeActionKind.SourceFixAll])))
        assert [e.new_text for c in action.edit.document_changes for e in c.edits] == ["embed_dim * 2"]
        table = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="shapelens.modelSummary", arguments=[uris[CLASS_CELL], {"line": 3, "character": 8}]))
        assert "MismatchedEmbeddingModel" in table and "Linear" in table
        ranges = plain(await client.protocol.send_request_async(
            "shapelens/classRanges", {"textDocument": {"uri": uris[CLASS_CELL]}}))
        assert [(r["name"], r["range"]["start"]["line"], r["range"]["end"]["line"]) for r in ranges] == [
            ("MismatchedEmbeddingModel", 0, 10)]
        view = plain(await client.protocol.send_request_async("shapelens/modelView", {
            "textDocument": {"uri": uris[CLASS_CELL]}, "position": {"line": 8, "character": 10}}))
        assert view["name"] == "MismatchedEmbeddingModel" and [r["line"] for r in view["rows"]] == [3, 4, 5]


async def test_a_class_in_a_cell_with_magics_has_its_range_in_that_cell(client: LanguageClient):
    cells = cells_of(NOTEBOOK)
    cells[CLASS_CELL] = ("code", "%%writefile model.py\n" + cells[CLASS_CELL][1])  # written to a file, never run
    cells[1] = ("code", cells[1][1] + "\n\n" + cells_of(NOTEBOOK)[CLASS_CELL][1])  # the class after magics
    async with notebook(client, NOTEBOOK.with_name("_magics.ipynb"), cells) as (uris, _):
        ranges = plain(await client.protocol.send_request_async(
            "shapelens/classRanges", {"textDocument": {"uri": uris[1]}}))
        in_magic_cell = plain(await client.protocol.send_request_async(
            "shapelens/classRanges", {"textDocument": {"uri": uris[CLASS_CELL]}}))
        table = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="shapelens.modelSummary", arguments=[uris[1], {"line": 8, "character": 8}]))
    # cell 2 is `%load_ext`, `%autoreload`, two imports, a blank line, then the class
    assert [(r["name"], r["range"]["start"]["line"]) for r in ranges] == [("MismatchedEmbeddingModel", 5)]
    assert in_magic_cell == [] and "MismatchedEmbeddingModel" in table


async def test_a_result_for_an_older_notebook_version_is_never_published(client: LanguageClient):
    path = NOTEBOOK.with_name("_stale.ipynb")
    cells = [("code", SLOW.read_text())]  # its probe takes about a second
    since = len(client.published)
    (uri,) = open_notebook(client, path, cells)
    try:
        await asyncio.sleep(0.4)  # past the debounce: the slow probe is running
        fixed = "import torch\nfrom torch import nn\n\nlayer = nn.Linear(4, 8)\ny = layer(torch.zeros(2, 4))\n"
        edit_cell(client, path, 2, uri, fixed, 2)
        await until(lambda: [p for p in client.published[since:] if p.uri == uri], "the cell's publish")
        await asyncio.sleep(1.5)  # longer than the slow probe would have needed
        assert [(p.version, list(p.diagnostics)) for p in client.published[since:] if p.uri == uri] == [(2, [])]
    finally:
        client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=path.as_uri()),
            cell_text_documents=[types.TextDocumentIdentifier(uri=uri)]))


async def test_growing_another_cell_keeps_the_squiggle_inside_the_class_cell(client: LanguageClient):
    cells = cells_of(NOTEBOOK)
    async with notebook(client, NOTEBOOK, cells) as (uris, _):
        since = len(client.published)
        edit_cell(client, NOTEBOOK, 2, uris[1], cells[1][1] + "\nimport math\nimport os\n%time x = 1", 2)
        after = await published(client, uris[CLASS_CELL:CLASS_CELL + 1], since, version=1)
        await until(lambda: [p for p in client.published[since:] if p.uri == uris[1] and p.version == 2], "cell 2")
        (diag,) = after[uris[CLASS_CELL]]
        assert diag.range == rng(5, 32, 41)  # the program's lines moved by three; the cell's did not


async def test_an_ignore_comment_in_a_cell_silences_its_line(client: LanguageClient):
    cells = cells_of(NOTEBOOK)
    cells[CLASS_CELL] = ("code", cells[CLASS_CELL][1].replace(
        "# Using the incorrect embed_dim", "# shapelens: ignore[feature-mismatch]"))
    async with notebook(client, NOTEBOOK.with_name("_ignored.ipynb"), cells) as (uris, diags):
        assert all(d == [] for d in diags.values())


async def test_a_cell_s_own_did_change_probes_its_notebook(client: LanguageClient):
    cells = cells_of(NOTEBOOK)
    async with notebook(client, NOTEBOOK, cells) as (uris, _):
        since = len(client.published)
        fixed = cells[CLASS_CELL][1].replace("nn.Linear(embed_dim, 256)", "nn.Linear(embed_dim * 2, 256)")
        did_change(client, uris[CLASS_CELL], fixed, 2)  # as a client without notebook sync for cells would
        assert await published(client, uris[CLASS_CELL:CLASS_CELL + 1], since, version=2) == {uris[CLASS_CELL]: []}


async def test_close_clears_every_cell(client: LanguageClient):
    async with notebook(client, NOTEBOOK) as (uris, diags):
        assert diags[uris[CLASS_CELL]]
        since = len(client.published)
    cleared = await until(lambda: [p for p in client.published[since:] if p.uri == uris[CLASS_CELL]], "the clearing")
    assert list(cleared[-1].diagnostics) == []
