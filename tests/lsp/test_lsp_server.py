"""End to end: the real `shapelens serve` over pipes, the real probe worker and torch, the real
sample files. One server is shared by the whole module (the worker start and Jedi's first look at
torch cost seconds); each test closes the documents it opens."""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from shapelens.report.fixes import apply_edits
from shapelens.report.model import TextEdit

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
DATA = Path(__file__).resolve().parent / "data"
EX2 = SAMPLES / "seed000_ex2_mismatched_embedding.py"
EX3 = SAMPLES / "seed000_ex3_correct_embedding.py"
SLOW = DATA / "slow_forward.py"
TIMEOUT = 60  # seconds; generous for a loaded machine, never reached when things work

pytestmark = pytest.mark.asyncio(loop_scope="module")


# -- client ----------------------------------------------------------------------------------------
def make_client() -> LanguageClient:
    """pytest-lsp's client, also keeping every publishDiagnostics (with its version), every
    shapelens/status notification and inlay hint refresh requests."""
    client = LanguageClient(converter_factory=default_converter)
    client.published = []
    client.statuses = []
    client.inlay_refreshes = 0

    def publish(ls: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        ls.diagnostics[params.uri] = params.diagnostics
        ls.published.append(params)

    def status(ls: LanguageClient, params) -> None:
        ls.statuses.append(plain(params))

    def inlay_refresh(ls: LanguageClient, params) -> None:
        ls.inlay_refreshes += 1

    features = {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: publish,
                "shapelens/status": status, types.WORKSPACE_INLAY_HINT_REFRESH: inlay_refresh}
    register_lsp_features(client, features)
    return client


def plain(value):
    """pygls hands custom notification params over as namedtuples."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    return [plain(v) for v in value] if isinstance(value, list) else value


def capabilities() -> types.ClientCapabilities:
    caps = client_capabilities("visual-studio-code")
    caps.text_document.publish_diagnostics.version_support = True
    caps.text_document.inlay_hint = types.InlayHintClientCapabilities()
    caps.workspace.inlay_hint = types.InlayHintWorkspaceClientCapabilities(refresh_support=True)
    return caps


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "shapelens", "serve"], client_factory=make_client))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=ROOT.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=ROOT.as_uri(), name="shapelens")],
        initialization_options={"shapelens": {"debounce": 50, "probeTimeout": 10}}))
    yield
    await lsp_client.shutdown_session()


# -- helpers ---------------------------------------------------------------------------------------
def rng(line: int, start: int, end: int, end_line: int | None = None) -> types.Range:
    return types.Range(start=types.Position(line=line, character=start),
                       end=types.Position(line=line if end_line is None else end_line, character=end))


async def until(predicate, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def diagnostics(client: LanguageClient, uri: str, version: int | None, since: int = 0) -> list[types.Diagnostic]:
    """The diagnostics of `uri` at `version` published after the `since`-th publish (tests reuse
    documents, so an older open can have published the same version)."""
    found = await until(lambda: [p for p in client.published[since:] if p.uri == uri and p.version == version],
                        f"diagnostics of {uri} v{version}")
    return list(found[-1].diagnostics)


def did_open(client: LanguageClient, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))


def did_change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


@asynccontextmanager
async def opened(client: LanguageClient, path: Path, text: str | None = None):
    """Open a document (the file's text unless given), wait for its first diagnostics, close it."""
    uri = path.as_uri()
    since = len(client.published)
    did_open(client, uri, path.read_text() if text is None else text)
    try:
        yield uri, await diagnostics(client, uri, 1, since)
    finally:
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))


async def hover(client: LanguageClient, uri: str, line: int, character: int) -> types.Hover | None:
    return await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character)))


def configure(client: LanguageClient, **settings) -> None:
    """Pushed settings apply before the server reads its next message."""
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"shapelens": settings}))


def apply(text: str, edit: types.WorkspaceEdit, uri: str) -> str:
    (change,) = [c for c in edit.document_changes if c.text_document.uri == uri]
    return apply_edits(text, [TextEdit({"start": {"line": e.range.start.line, "character": e.range.start.character},
                                        "end": {"line": e.range.end.line, "character": e.range.end.character}},
                                       e.new_text) for e in change.edits])


# -- lifecycle -------------------------------------------------------------------------------------
async def test_worker_starts_at_initialize_before_any_document(client: LanguageClient):
    ready = await until(lambda: [s for s in client.statuses if s["state"] == "ready"], "the worker's ready status")
    assert not client.published, "the worker was ready before a document was opened"
    assert ready[0]["worker"]["starts"] == 1 and ready[0]["worker"]["pid"]


# -- diagnostics -----------------------------------------------------------------------------------
SAMPLE_DIAGNOSTICS = {
    "seed000_ex1_simple_embedding.py": [],
    "seed000_ex2_mismatched_embedding.py": [("feature-mismatch", rng(8, 32, 41), types.DiagnosticSeverity.Error)],
    "seed000_ex3_correct_embedding.py": [],
    "seed001_ex3_out_of_vocab.py": [("index-out-of-range", rng(6, 35, 39), types.DiagnosticSeverity.Error)],
    "mha_embed_dim_mismatch.py": [("embed-dim-mismatch", rng(8, 42, 51), types.DiagnosticSeverity.Error)],
    "index_dtype.py": [("index-dtype", rng(4, 6, 37), types.DiagnosticSeverity.Error)],
    "invalid_layer_config.py": [("invalid-layer-config", rng(8, 51, 56), types.DiagnosticSeverity.Error)],
    "shape_error.py": [("shape-error", rng(11, 15, 28), types.DiagnosticSeverity.Error)],
    "probe_incomplete.py": [("probe-incomplete", rng(3, 6, 10), types.DiagnosticSeverity.Information)],
}


@pytest.mark.parametrize("name", sorted(SAMPLE_DIAGNOSTICS))
async def test_diagnostics_of_each_sample_have_exact_ranges_codes_and_severities(client: LanguageClient, name):
    async with opened(client, SAMPLES / name) as (_, diags):
        assert [(d.code, d.range, d.severity) for d in diags] == SAMPLE_DIAGNOSTICS[name]
        for d in diags:
            assert d.source == "shapelens"
            assert d.code_description.href.endswith(f"/docs/codes.md#{d.code}")


async def test_a_diagnostic_points_at_the_producing_layer_and_carries_its_fix(client: LanguageClient):
    async with opened(client, EX2) as (uri, (diag,)):
        related = diag.related_information[0]  # then the steps of the chain (test_lsp_symbolic.py)
        assert related.location.uri == uri and related.location.range == rng(7, 8, 61)
        assert "256 features come from self.projection" in related.message
        (fix,) = diag.data["fixes"]
        assert fix["title"] == "Change in_features to embed_dim * 2" and diag.data["version"] == 1
        assert fix["edits"] == [{"range": {"start": {"line": 8, "character": 32}, "end": {"line": 8, "character": 41}},
                                 "newText": "embed_dim * 2"}]


async def test_close_clears_the_diagnostics(client: LanguageClient):
    async with opened(client, EX2) as (uri, diags):
        assert diags
        seen = len(client.published)
    cleared = await until(lambda: [p for p in client.published[seen:] if p.uri == uri], "the clearing publish")
    assert list(cleared[-1].diagnostics) == []


async def test_a_finding_in_an_imported_file_is_published_to_that_file(client: LanguageClient):
    blocks = (DATA / "blocks.py").as_uri()
    since = len(client.published)
    async with opened(client, DATA / "uses_blocks.py") as (uri, own):
        assert own == []
        (diag,) = await diagnostics(client, blocks, None, since)  # not open: no version
        assert diag.code == "invalid-layer-config" and diag.range == rng(7, 47, 52)
        # `heads` is a parameter of Block: the fix edits the literal where Block is built,
        # not Block itself (which every user of Block shares).
        assert diag.data["fixes"][0]["uri"] == uri
        since = len(client.published)
    assert await diagnostics(client, blocks, None, since) == []  # its source closed


# -- hovers ----------------------------------------------------------------------------------------
LINEAR = ("**self.linear** · `Linear(in_features=128, out_features=256, bias=True)`\n\n"
          "input `[1, 10, 256]` → output `[1, 10, 256]`\n\n33,024 parameters · 129.0 KiB of weights")


async def test_hover_on_a_layer_its_constructor_and_its_use(client: LanguageClient):
    async with opened(client, EX2) as (uri, _):
        target = await hover(client, uri, 8, 12)  # `self.linear = ...`
        constructor = await hover(client, uri, 8, 25)  # `nn.Linear(embed_dim, 256)`
        use = await hover(client, uri, 13, 20)  # `return self.linear(projected)`
    assert target.contents.value == constructor.contents.value == use.contents.value == LINEAR
    assert target.range == rng(8, 8, 19)
    assert use.range == rng(13, 15, 26)


async def test_hover_on_a_tensor_at_its_assignment_and_its_use(client: LanguageClient):
    async with opened(client, EX2) as (uri, _):
        assigned = await hover(client, uri, 12, 10)  # `projected = self.projection(embedded)`
        used = await hover(client, uri, 13, 30)  # `return self.linear(projected)`
        embedded = await hover(client, uri, 12, 40)  # `embedded` used as the argument
    assert assigned.contents.value == used.contents.value == "**projected** · `[1, 10, 256]` float32"
    assert used.range == rng(13, 27, 36)
    assert embedded.contents.value == "**embedded** · `[1, 10, 128]` float32"


async def test_hover_names_the_dims_the_probe_assumed(client: LanguageClient):
    async with opened(client, SAMPLES / "invalid_layer_config.py") as (uri, _):
        x = await hover(client, uri, 11, 8)  # `x = self.embed(ids)`, ids made up as [B, T]
        encoder = await hover(client, uri, 4, 8)
    assert x.contents.value == ("**x** · `[B, T, 100]` float32\n\n`B`, `T`: sizes the probe assumed "
                                "(probed as B=17, T=13); numbers come from the file.")
    assert "| embed | Embedding | [B, T] | [B, T, 100] | 100,000 |" in encoder.contents.value
    assert "Inputs the probe made up: B=17, T=13." in encoder.contents.value


async def test_hover_on_an_embedding_explains_the_table_on_the_users_numbers(client: LanguageClient):
    async with opened(client, SAMPLES / "seed001_ex3_out_of_vocab.py") as (uri, _):
        layer = await hover(client, uri, 3, 3)
        use = await hover(client, uri, 9, 15)  # `embeddings = embedding_layer(input_indices)`
    text = layer.contents.value
    assert text.startswith("**embedding_layer** · `Embedding(2000, 100, padding_idx=0)`")
    for part in ("A lookup table of **2,000 rows × 100 columns**: weight shape `(2000, 100)`.",
                 "`num_embeddings=2000` rows: one per index; valid indices are 0..1999",
                 "`embedding_dim=100` columns: each index becomes a vector of 100 numbers",
                 "`padding_idx=0`: row 0 stays zero", "200,000 parameters · 781.2 KiB of weights",
                 "Each index of the input `[3]` picks one row, so the output is `[3, 100]`."):
        assert part in text
    assert use.contents.value == text


async def test_hover_on_a_module_class_is_a_summary_table(client: LanguageClient):
    async with opened(client, EX2) as (uri, _):
        summary = await hover(client, uri, 3, 10)
    assert summary.range == rng(3, 6, 30)
    assert summary.contents.value == (
        "**MismatchedEmbeddingModel** · 194,048 parameters · 758.0 KiB of weights\n\n"
        "input `[1, 10]` → output `[1, 10, 256]`\n\n"
        "| layer | type | input | output | params |\n|:--|:--|:--|:--|--:|\n"
        "| embedding | Embedding | [1, 10] | [1, 10, 128] | 128,000 |\n"
        "| projection | Linear | [1, 10, 128] | [1, 10, 256] | 33,024 |\n"
        "| linear | Linear | [1, 10, 256] | [1, 10, 256] | 33,024 |\n\n"
        "Probed on the meta device: shapes only, no parameter memory was allocated.")


async def test_model_summary_command(client: LanguageClient):
    async with opened(client, EX2) as (uri, _):
        inside_forward = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="shapelens.modelSummary", arguments=[uri, {"line": 12, "character": 8}]))
        outside = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="shapelens.modelSummary", arguments=[uri, {"line": 0, "character": 0}]))
    assert inside_forward.startswith("**MismatchedEmbeddingModel** · 194,048 parameters")
    assert "| linear | Linear | [1, 10, 256] | [1, 10, 256] | 33,024 |" in inside_forward
    assert outside is None


async def model_view(client: LanguageClient, uri: str, line: int, character: int, **extra):
    return plain(await client.protocol.send_request_async("shapelens/modelView", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character}, **extra}))


async def test_model_view_collapses_repeated_blocks_and_marks_the_mismatch_row(client: LanguageClient):
    path = DATA / "repeated_blocks.py"
    async with opened(client, path) as (uri, (diag,)):
        view = await model_view(client, uri, 24, 10)  # inside Tower.forward
        in_block = await model_view(client, uri, 12, 10)  # Block.forward: Block's own table
        ranges = plain(await client.protocol.send_request_async("shapelens/classRanges", {"textDocument": {"uri": uri}}))
    assert (view["name"], view["device"], view["input"], view["output"]) == ("Tower", "meta", "[2, 16]", "[2, 16, 10]")
    embed, blocks, head = view["rows"]
    (group,) = blocks["children"]
    assert (group["type"], group["count"], len(group["members"])) == ("Block", 12, 12)
    assert [m["name"] for m in group["members"]][:3] == ["blocks.0", "blocks.1", "blocks.2"]
    assert [c["name"] for c in group["children"]] == ["blocks.0.norm", "blocks.0.mlp"]
    # Each row points at the statement that builds it; the Block's rows at Block's __init__.
    assert (embed["line"], blocks["line"], head["line"]) == (19, 20, 21)
    assert [c["line"] for c in group["children"]] == [9, 10]
    assert head["mismatch"] == diag.message and embed["mismatch"] is None and view["mismatches"] == 1
    assert head["line"] == diag.range.start.line
    assert in_block["name"] == "Block" and in_block["rows"][0]["name"] == "norm"
    assert [(r["name"], r["range"]["start"]["line"], r["range"]["end"]["line"]) for r in ranges] == [
        ("Block", 6, 13), ("Tower", 16, 27)]


async def test_model_view_follows_edits_and_answers_null_outside_a_class(client: LanguageClient):
    path = DATA / "repeated_blocks.py"
    text = path.read_text().replace("depth=12", "depth=3").replace("dim * 2, classes", "dim, classes")
    async with opened(client, path, "# a new first line\n" + text) as (uri, diags):
        view = await model_view(client, uri, 25, 10)
        outside = await model_view(client, uri, 0, 0)
        followed = await model_view(client, uri, 0, 0, className="Tower")
    assert diags == [] and view["mismatches"] == 0
    assert view["rows"][1]["children"][0]["count"] == 3
    assert view["rows"][2]["line"] == 22  # shifted by the inserted line
    assert outside is None and followed["name"] == "Tower"


async def test_hover_and_model_view_say_which_constructor_arguments_were_assumed(client: LanguageClient):
    path = DATA / "library_encoder.py"
    async with opened(client, path) as (uri, diags):
        on_head = await hover(client, uri, 10, 14)  # self.head = nn.Linear(...)
        view = await model_view(client, uri, 15, 10)
    assert [d for d in diags if d.severity == types.DiagnosticSeverity.Error] == []
    args = view["assumedArgs"]
    assert set(args) == {"dim", "depth", "mlp_dim", "num_classes"}
    head = view["rows"][-1]
    assert head["name"] == "head" and head["output"].endswith(f"{args['num_classes']}]")
    assert f"mlp_dim={args['mlp_dim']}" in on_head.contents.value
    assert "Nothing in the workspace builds `Encoder`" in on_head.contents.value


# -- code actions ----------------------------------------------------------------------------------
async def quick_fixes(client: LanguageClient, uri: str, diag: types.Diagnostic) -> list[types.CodeAction]:
    return await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diag.range,
        context=types.CodeActionContext(diagnostics=[diag], only=[types.CodeActionKind.QuickFix])))


async def test_quickfix_edit_gives_a_clean_recheck(client: LanguageClient):
    text = EX2.read_text()
    async with opened(client, EX2) as (uri, (diag,)):
        actions = await quick_fixes(client, uri, diag)
        action, ignore = actions  # the fix first, then *Ignore `code` on this line*
        assert ignore.title == "Ignore `feature-mismatch` on this line" and not ignore.is_preferred
        assert action.kind == types.CodeActionKind.QuickFix and action.is_preferred
        assert action.title == "Change in_features to embed_dim * 2" and list(action.diagnostics) == [diag]
        (change,) = action.edit.document_changes
        assert change.text_document.version == 1  # the version the fix was computed for
        fixed = apply(text, action.edit, uri)
        assert "self.linear = nn.Linear(embed_dim * 2, 256)" in fixed
        since = len(client.published)
        did_change(client, uri, fixed, 2)
        assert await diagnostics(client, uri, 2, since) == []


async def test_code_actions_honour_context_only(client: LanguageClient):
    async with opened(client, EX2) as (uri, (diag,)):
        async def kinds(only):
            actions = await client.text_document_code_action_async(types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), range=diag.range,
                context=types.CodeActionContext(diagnostics=[diag], only=only)))
            return [a.kind for a in actions or []]

        assert await kinds(None) == [types.CodeActionKind.QuickFix] * 2 + ["source.fixAll.shapelens"]
        assert await kinds([types.CodeActionKind.Source]) == ["source.fixAll.shapelens"]
        assert await kinds([types.CodeActionKind.Refactor]) == []


async def test_fix_all_source_action_fixes_every_mismatch(client: LanguageClient):
    path = DATA / "two_mismatches.py"
    async with opened(client, path) as (uri, diags):
        assert sorted(d.code for d in diags) == ["feature-mismatch", "index-out-of-range"]
        (action,) = await client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=rng(0, 0, 0),
            context=types.CodeActionContext(diagnostics=[], only=[types.CodeActionKind.SourceFixAll])))
        assert action.kind == "source.fixAll.shapelens" and action.title == "Fix all shape mismatches"
        fixed = apply(path.read_text(), action.edit, uri)
        assert "num_embeddings=151" in fixed and "nn.Linear(8, 4)" in fixed
        since = len(client.published)
        did_change(client, uri, fixed, 2)
        assert await diagnostics(client, uri, 2, since) == []


# -- inlay hints -----------------------------------------------------------------------------------
async def inlay_hints(client: LanguageClient, uri: str) -> list[tuple[int, int, str]]:
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=rng(0, 0, 0, end_line=40)))
    return [(h.position.line, h.position.character, h.label) for h in hints or []]


async def test_inlay_hints_show_shapes_after_forward_assignments_and_toggle(client: LanguageClient):
    async with opened(client, EX2) as (uri, _):
        assert await inlay_hints(client, uri) == [(11, 16, ": [1, 10, 128]"), (12, 17, ": [1, 10, 256]")]
        refreshes = client.inlay_refreshes
        configure(client, inlayHints=False)
        try:
            assert await inlay_hints(client, uri) == []
            assert client.inlay_refreshes > refreshes
        finally:
            configure(client, inlayHints=True)
        assert len(await inlay_hints(client, uri)) == 2


async def test_inlay_hints_use_symbolic_dims(client: LanguageClient):
    async with opened(client, SAMPLES / "invalid_layer_config.py") as (uri, _):
        assert await inlay_hints(client, uri) == [(11, 9, ": [B, T, 100]"), (12, 11, ": [B, T, 100]")]


# -- settings --------------------------------------------------------------------------------------
async def test_a_bad_setting_gets_a_message_and_falls_back_to_the_default(client: LanguageClient):
    seen = len(client.messages)
    configure(client, debounce="fast", device="gpu")
    try:
        messages = await until(lambda: client.messages[seen:] if len(client.messages) >= seen + 2 else None,
                               "two warnings")
        assert all(m.type == types.MessageType.Warning for m in messages)
        assert "`debounce` = \"fast\" ignored" in messages[0].message and "using the default 300" in messages[0].message
        assert "`device` = \"gpu\" ignored" in messages[1].message
        async with opened(client, EX2) as (_, diags):  # still probing, with the defaults
            assert [d.code for d in diags] == ["feature-mismatch"]
    finally:
        configure(client, debounce=50)


async def test_a_device_change_reprobes_open_documents(client: LanguageClient):
    async with opened(client, EX3) as (uri, _):
        before = len(client.published)
        configure(client, device="cpu")
        try:
            await until(lambda: [p for p in client.published[before:] if p.uri == uri], "a re-probe")
            summary = (await hover(client, uri, 3, 10)).contents.value
            assert summary.startswith("**CorrectEmbeddingModel** · 226,816 parameters")
            assert "meta device" not in summary  # probed on real CPU tensors now
        finally:
            configure(client, device="meta")


async def test_settings_pulled_when_the_change_notification_carries_none(client: LanguageClient):
    async with opened(client, EX2) as (uri, _):
        client.set_configuration({"inlayHints": False}, section="shapelens")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        try:
            for _ in range(100):  # the server pulls workspace/configuration, then applies it
                if await inlay_hints(client, uri) == []:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the pulled setting inlayHints=false was not applied")
        finally:
            configure(client, inlayHints=True)


async def test_untrusted_workspace_says_shapes_are_unavailable(client: LanguageClient):
    async with opened(client, EX2) as (uri, _):
        configure(client, trusted=False)
        try:
            text = (await hover(client, uri, 8, 12)).contents.value
            assert "shapes are unavailable because the workspace is untrusted" in text
            assert [s for s in client.statuses if s["state"] == "untrusted"]
        finally:
            configure(client, trusted=True)


# -- background probing ----------------------------------------------------------------------------
async def test_two_quick_edits_publish_only_the_second(client: LanguageClient):
    uri = (DATA / "_quick_edits.py").as_uri()  # an unsaved buffer: nothing on disk
    did_open(client, uri, EX2.read_text(), version=1)
    did_change(client, uri, EX3.read_text(), version=2)
    try:
        assert await diagnostics(client, uri, 2) == []
        await asyncio.sleep(0.5)
        assert [p.version for p in client.published if p.uri == uri] == [2]
    finally:
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))


async def test_an_edit_cancels_the_running_probe_and_its_result_is_never_published(client: LanguageClient):
    uri = (DATA / "_cancelled.py").as_uri()
    did_open(client, uri, SLOW.read_text(), version=1)  # would publish a feature-mismatch after ~1 s
    await asyncio.sleep(0.4)  # past the debounce: the slow probe is running
    did_change(client, uri, EX2.read_text(), version=2)
    try:
        (diag,) = await diagnostics(client, uri, 2)
        assert diag.range == rng(8, 32, 41)
        await asyncio.sleep(1.5)  # longer than the slow probe would have needed
        assert [p.version for p in client.published if p.uri == uri] == [2]
    finally:
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))


async def test_hover_is_answered_while_a_slow_probe_runs_and_progress_is_reported(client: LanguageClient):
    async with opened(client, EX2) as (uri, _):
        tokens_before = set(client.progress_reports)
        did_open(client, SLOW.as_uri(), SLOW.read_text())
        try:
            await asyncio.sleep(0.3)
            for _ in range(5):
                started = time.monotonic()
                answer = await hover(client, uri, 8, 12)
                assert time.monotonic() - started < 0.5 and answer.contents.value == LINEAR
                assert not [p for p in client.published if p.uri == SLOW.as_uri()], "the slow probe already ended"
                await asyncio.sleep(0.05)
            (diag,) = await diagnostics(client, SLOW.as_uri(), 1)
            assert diag.code == "feature-mismatch"
        finally:
            client.text_document_did_close(types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=SLOW.as_uri())))
    (token,) = set(client.progress_reports) - tokens_before
    begin, *_, end = client.progress_reports[token]
    assert isinstance(begin, types.WorkDoneProgressBegin) and begin.message == "probing slow_forward.py"
    assert isinstance(end, types.WorkDoneProgressEnd)


async def test_a_syntax_error_is_a_hint_where_it_is_not_a_squiggle(client: LanguageClient):
    async with opened(client, DATA / "_broken.py", text="import torch\nx = torch.zeros(2,\n") as (_, diags):
        assert [(d.code, d.range.start, d.severity) for d in diags] == [
            ("syntax-error", types.Position(line=1, character=15), types.DiagnosticSeverity.Hint)]
        assert "syntax error" in diags[0].message


# -- suppressions and [tool.shapelens] ---------------------------------------------------------------
async def test_the_ignore_quick_fix_silences_the_line(client: LanguageClient):
    text = EX2.read_text()
    async with opened(client, EX2) as (uri, (diag,)):
        actions = await quick_fixes(client, uri, diag)
        (ignore,) = [a for a in actions if a.title.startswith("Ignore")]
        silenced = apply(text, ignore.edit, uri)
        assert "nn.Linear(embed_dim, 256) # Using the incorrect embed_dim  # shapelens: ignore[feature-mismatch]\n" \
            in silenced
        since = len(client.published)
        did_change(client, uri, silenced, 2)
        assert await diagnostics(client, uri, 2, since) == []


async def test_project_config_applies_and_a_bad_key_is_a_window_message(client: LanguageClient, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.shapelens]\nshow-unused-ignores = true\nselct = ["shape-error"]\n'
        '[tool.shapelens.severity]\nfeature-mismatch = "warning"\n')
    path = tmp_path / "model.py"
    path.write_text(EX2.read_text() + "x = 1  # shapelens: ignore\n")
    seen = len(client.messages)
    async with opened(client, path) as (_, diags):
        assert [(d.code, d.severity) for d in diags] == [("feature-mismatch", types.DiagnosticSeverity.Warning),
                                                         ("unused-ignore", types.DiagnosticSeverity.Hint)]
        warning = await until(lambda: [m for m in client.messages[seen:] if "selct" in m.message], "the warning")
        assert warning[0].type == types.MessageType.Warning
        assert "[tool.shapelens] selct: unknown key" in warning[0].message


async def test_one_worker_process_serves_the_whole_session(client: LanguageClient):
    workers = {(s["worker"]["pid"], s["worker"]["starts"]) for s in client.statuses if s["worker"]}
    assert len(workers) == 1 and next(iter(workers))[1] == 1


async def test_changing_the_interpreter_restarts_the_worker_in_it(client: LanguageClient):
    (old_pid,) = {s["worker"]["pid"] for s in client.statuses if s["worker"]}
    seen = len(client.statuses)
    configure(client, interpreter=sys.executable)
    try:
        ready = await until(lambda: [s for s in client.statuses[seen:] if s["state"] == "ready"], "a new worker")
        assert ready[0]["worker"]["pid"] != old_pid and ready[0]["worker"]["python"] == sys.executable
        async with opened(client, EX2) as (_, diags):  # and it probes
            assert [d.code for d in diags] == ["feature-mismatch"]
    finally:
        configure(client, interpreter=None)
