"""Position units at the LSP boundary.

Reports count columns in UTF-16 code units; pygls picks the client's preferred encoding, which is
UTF-8 for Neovim 0.10+. Converting here keeps every other module in UTF-16.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

_UTF16 = PositionCodec(types.PositionEncodingKind.Utf16)


def needs_text(encoding: str | None) -> bool:
    return encoding not in (None, types.PositionEncodingKind.Utf16)


class Units:
    """Converts positions in one text between UTF-16 (reports) and the client's encoding."""

    def __init__(self, encoding: str | None, text: str) -> None:
        self.codec = PositionCodec(encoding) if needs_text(encoding) else None
        self.lines = text.splitlines(keepends=True) if self.codec else []

    def position_out(self, pos: dict) -> types.Position:
        out = types.Position(line=pos["line"], character=pos["character"])
        if self.codec is None or pos["line"] >= len(self.lines):
            return out
        return self.codec.position_to_client_units(self.lines, _UTF16.position_from_client_units(self.lines, out))

    def range_out(self, rng: dict) -> types.Range:
        return types.Range(start=self.position_out(rng["start"]), end=self.position_out(rng["end"]))

    def position_in(self, pos: types.Position) -> dict:
        if self.codec is None or pos.line >= len(self.lines):
            return {"line": pos.line, "character": pos.character}
        here = types.Position(line=pos.line, character=pos.character)
        back = _UTF16.position_to_client_units(self.lines, self.codec.position_from_client_units(self.lines, here))
        return {"line": back.line, "character": back.character}


def range_json(rng: types.Range) -> dict:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}
