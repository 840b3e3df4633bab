"""Over LSP (the real server, worker and torch): symbolic dims read the same in hovers, inlay
hints and the model summary; a mismatch's chain is in relatedInformation and in the squiggle's
hover; twelve identical blocks fold into one row; hints hold still while a name is half-typed."""

from __future__ import annotations

import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_lsp_server import (
    DATA,
    EX2,
    ROOT,
    capabilities,
    diagnostics,
    did_change,
    did_open,
    hover,
    inlay_hints,
    make_client,
    opened,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
CNN = DATA / "cifar_cnn.py"
GPT = DATA / "gpt_blocks.py"
CHAIN = DATA / "chain_ops.py"


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "shapelens", "serve"], client_factory=make_client))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=ROOT.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=ROOT.as_uri(), name="shapelens")],
        initialization_options={"shapelens": {"debounce": 50, "probeTimeout": 10}}))
    yield
    await lsp_client.shutdown_session()


def line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines()) if text in line)


async def summary(client: LanguageClient, uri: str, line: int) -> str:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="shapelens.modelSummary", arguments=[uri, {"line": line, "character": 4}]))


async def test_cnn_hover_inlay_hints_and_summary_show_the_same_formulas(client: LanguageClient):
    view = line_of(CNN, "x = x.view(x.size(0), -1)")
    async with opened(client, CNN) as (uri, diags):
        assert diags == []
        fc1 = await hover(client, uri, view + 1, 20)  # `self.fc1` in `x = F.relu(self.fc1(x))`
        flat = await hover(client, uri, view, 8)
        hints = await inlay_hints(client, uri)
        table = await summary(client, uri, view)
    assert "input `[B, 64 * (H/4) * (W/4)]` → output `[B, 128]`" in fc1.contents.value
    assert flat.contents.value == ("**x** · `[B, 64 * (H/4) * (W/4)]` float32\n\n`B`, `H`, `W`: sizes the probe "
                                   "assumed (probed as B=17, H=32, W=32); numbers come from the file.")
    labels = [label for line, _, label in hints]
    assert labels == [": [B, 32, H/2, W/2]", ": [B, 64, H/4, W/4]", ": [B, 64 * (H/4) * (W/4)]", ": [B, 128]"]
    assert "| fc1 | Linear | [B, 64 * (H/4) * (W/4)] | [B, 128] | 524,416 |" in table
    assert "| conv1 | Conv2d | [B, 3, H, W] | [B, 32, H, W] | 896 |" in table  # 32 channels stay 32


async def test_the_chain_is_related_information_and_the_squiggles_hover(client: LanguageClient):
    lines = EX2.read_text().splitlines()
    async with opened(client, EX2) as (uri, (diag,)):
        on_squiggle = await hover(client, uri, diag.range.start.line, diag.range.start.character + 2)
    assert diag.message.splitlines()[0].startswith("self.linear expects in_features=128 input features")
    steps = [(r.location.uri == uri, lines[r.location.range.start.line].strip().split(" =")[0], r.message)
             for r in diag.related_information[1:]]
    assert steps == [(True, "input_ids", "input_ids [1, 10]"), (True, "embedded", "self.embedding → [1, 10, 128]"),
                     (True, "projected", "self.projection → [1, 10, 256]")]
    assert on_squiggle.contents.value.split("\n\n---\n\n")[0] == (
        "**self.linear expects in_features=128 input features but receives `projected` [1, 10, 256] with 256 "
        "features**\n\n| step | line | shape |\n|:--|--:|:--|\n"
        "| `input_ids` | 20 | `[1, 10]` |\n| `self.embedding` | 12 | `[1, 10, 128]` |\n"
        "| `self.projection` | 13 | `[1, 10, 256]` |\n| `self.linear` | 9 | `expects 128` |")


async def test_the_chain_through_view_permute_flatten_and_cat(client: LanguageClient):
    async with opened(client, CHAIN) as (_, (diag,)):
        messages = [r.message for r in diag.related_information if "→" in r.message]
    assert messages == ["self.inp → [4, 24]", "view → [4, 6, 4]", "permute → [4, 4, 6]", "flatten → [4, 24]",
                        "cat → [4, 48]"]


async def test_twelve_blocks_fold_into_one_row_in_the_class_hover(client: LanguageClient):
    cls = line_of(GPT, "class TinyGPT")
    async with opened(client, GPT) as (uri, _):
        text = (await hover(client, uri, cls, 8)).contents.value
    assert text.startswith("**TinyGPT** · 736,128 parameters")
    assert text.count("| blocks.0–11 · Block × 12 | Block | [B, T, 64] | [B, T, 64] | 599,808 |") == 1
    assert "| blocks.0.mlp.0 | Linear | [B, T, 64] | [B, T, 256] | 16,640 |" in text
    assert "blocks.5" not in text


async def test_hints_keep_their_shapes_while_a_name_is_half_typed(client: LanguageClient):
    text = CHAIN.read_text()
    uri = CHAIN.as_uri()
    since = len(client.published)
    did_open(client, uri, text)
    try:
        await diagnostics(client, uri, 1, since)
        before = await inlay_hints(client, uri)
        assert (": [4, 24]") in [label for _, _, label in before]
        since = len(client.published)
        did_change(client, uri, text.replace("y = model(x)", "y = model(xq)"), 2)
        (note,) = [d for d in await diagnostics(client, uri, 2, since) if d.code == "probe-incomplete"]
        assert "NameError: name 'xq' is not defined" in note.message
        # Alone, the class would be probed on a made-up [B, 12]; the unchanged lines keep [4, ...].
        assert await inlay_hints(client, uri) == before
    finally:
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
