"""The language server's pure parts (settings, positions, locating uses) and its command line."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient

from shapelens.lsp import locate, render
from shapelens.lsp.protocol import Protocol
from shapelens.lsp.settings import Settings, merge, section_of
from shapelens.lsp.units import Units
from shapelens.report.model import ShapeEntry

ROOT = Path(__file__).resolve().parents[2]


# -- settings --------------------------------------------------------------------------------------
def test_settings_default_and_camel_case_names():
    settings, problems = merge(Settings(), {"probeTimeout": 2, "inlayHints": False, "device": "cpu"})
    assert problems == []
    assert settings == Settings(probe_timeout=2.0, inlay_hints=False, device="cpu")
    assert settings.probe_options().timeout == 2.0 and settings.probe_options().trusted is True


def test_a_bad_value_is_reported_and_replaced_by_the_default():
    current = Settings(debounce=50, device="cpu")
    settings, problems = merge(current, {"debounce": -1, "device": "tpu", "enable": "yes", "trusted": False})
    assert settings == Settings(debounce=300, device="meta", enable=True, trusted=False)
    assert len(problems) == 3 and "`debounce` = -1 ignored" in problems[0]


def test_null_resets_and_missing_keys_keep_their_value():
    settings, _ = merge(Settings(debounce=50, interpreter=sys.executable), {"interpreter": None})
    assert settings == Settings(debounce=50)


def test_an_interpreter_must_be_an_executable_file():
    settings, problems = merge(Settings(), {"interpreter": "/no/such/python"})
    assert settings.interpreter is None and "not an executable file" in problems[0]


def test_the_section_is_found_nested_or_flat():
    assert section_of({"shapelens": {"debounce": 1}, "python": {}}) == {"debounce": 1}
    assert section_of({"debounce": 1}) == {"debounce": 1}
    assert section_of({"python": {}}) is None and section_of(None) is None


# -- positions -------------------------------------------------------------------------------------
def test_utf16_report_columns_become_utf8_for_clients_that_chose_it():
    text = "s = 'é😀'; x = y\n"
    x_utf16 = {"line": 0, "character": text.index("x") + 1}  # 😀 is two UTF-16 units
    units = Units(types.PositionEncodingKind.Utf8, text)
    out = units.position_out(x_utf16)
    assert out.character == len(text[: text.index("x")].encode())
    assert units.position_in(out) == x_utf16
    assert Units(types.PositionEncodingKind.Utf16, text).position_out(x_utf16).character == x_utf16["character"]


def test_line_map_follows_inserted_lines_and_drops_edited_ones():
    old = "a = 1\nb = 2\nc = 3\n"
    new = "# new\na = 1\nb = 20\nc = 3\n"
    lines = locate.LineMap(old, new)
    assert (lines.to_new(0), lines.to_new(1), lines.to_new(2)) == (1, None, 3)
    assert lines.to_old(3) == 2 and lines.to_old(0) is None


# -- locating uses ---------------------------------------------------------------------------------
def _tensor(text: str, name: str, nth: int = 0) -> ShapeEntry:
    lines = text.splitlines()
    hits = [(i, ln.index(f"{name} =")) for i, ln in enumerate(lines) if ln.lstrip().startswith(f"{name} =")]
    line, col = hits[nth]
    where = {"start": {"line": line, "character": col}, "end": {"line": line, "character": col + len(name)}}
    return ShapeEntry("f.py", where, name, "tensor", shape=[line + 1], dtype="float32")


def test_a_use_maps_to_the_nearest_preceding_assignment_in_its_own_function():
    text = ("h = zeros(1)\n"
            "def forward(x):\n"
            "    h = f(x)\n"
            "    h = g(h)\n"
            "    return h\n"
            "print(h)\n")
    entries = [_tensor(text, "h", 0), _tensor(text, "h", 1), _tensor(text, "h", 2)]
    src = locate.Source(text)
    in_return, _ = locate.entry_at(src, (4, 12), entries, [])
    argument, _ = locate.entry_at(src, (3, 10), entries, [])
    module_level, hovered = locate.entry_at(src, (5, 7), entries, [])
    assert in_return is entries[2] and argument is entries[1] and module_level is entries[0]
    assert hovered == {"start": {"line": 5, "character": 6}, "end": {"line": 5, "character": 7}}


def test_shape_text_and_sizes():
    assert render.shape_text([2, 3]) == "[2, 3]" and render.shape_text([17, 3], "[B, 3]") == "[B, 3]"
    assert render.shape_text([17, 32, 16], ["B", "32", "H/2"]) == "[B, 32, H/2]"
    assert render.assumed_note({"B": 17, "H": 32}) == ("`B`, `H`: sizes the probe assumed (probed as B=17, H=32); "
                                                       "numbers come from the file.")
    assert (render.nbytes(512), render.nbytes(132096), render.nbytes(3 << 30)) == ("512 B", "129.0 KiB", "3.0 GiB")


# -- protocol --------------------------------------------------------------------------------------
class Pipe:
    """The server's writer: what it would send to the client."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    def close(self) -> None:
        pass


def test_a_request_with_malformed_params_gets_an_invalid_params_error():
    server = LanguageServer("t", "0", protocol_cls=Protocol)
    pipe = Pipe()
    server.protocol.set_writer(pipe)
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "textDocument/hover",
                       "params": {"textDocument": {"uri": "file:///x.py"}}})  # no position
    server.protocol.handle_message(json.loads(body, object_hook=server.protocol.structure_message))
    (reply,) = pipe.sent
    assert reply["id"] == 7 and reply["error"]["code"] == -32602
    assert reply["error"]["message"] == ("invalid params for textDocument/hover: "
                                        "required field missing @ request.params.position")


# -- command line ----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, error", [(["--tcp", "nowhere"], "--tcp expects HOST:PORT"),
                                         (["--python", "/no/such/python"], "no such interpreter")])
def test_serve_rejects_bad_arguments(args, error):
    out = subprocess.run([sys.executable, "-m", "shapelens", "serve", *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and error in out.stderr


@pytest.mark.asyncio
async def test_serve_over_tcp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "shapelens", "serve", "--tcp", f"127.0.0.1:{port}"],
                              stderr=subprocess.DEVNULL)
    client = LanguageClient(converter_factory=default_converter)
    try:
        for _ in range(200):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        result = await client.initialize_session(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=ROOT.as_uri()))
        assert result.server_info.name == "shapelens" and result.capabilities.hover_provider
        await client.shutdown_async(None)
        client.exit(None)
        assert await asyncio.to_thread(server.wait, 30) == 0
    finally:
        server.kill()
        await client.stop()
