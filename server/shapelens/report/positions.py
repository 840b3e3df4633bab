"""ast positions (1-based lines, UTF-8 byte columns) -> LSP positions (0-based, UTF-16 units)."""

from __future__ import annotations


class LineIndex:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines() or [""]

    def utf16_col(self, line: int, byte_col: int) -> int:
        """`line` 1-based; returns the UTF-16 column of the byte offset."""
        if line - 1 >= len(self.lines) or line < 1:
            return 0
        prefix = self.lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace")
        return len(prefix.encode("utf-16-le")) // 2

    def to_range(self, span) -> dict:
        line, col, end_line, end_col = span
        return {
            "start": {"line": max(line - 1, 0), "character": self.utf16_col(line, col)},
            "end": {"line": max(end_line - 1, 0), "character": self.utf16_col(end_line, end_col)},
        }

    def offset(self, position: dict) -> int:
        """Character offset into the text of an LSP position (used to apply edits)."""
        total = 0
        for i in range(min(position["line"], len(self.lines))):
            total += len(self.lines[i]) + 1
        if position["line"] < len(self.lines):
            units = position["character"]
            line = self.lines[position["line"]]
            count = 0
            for i, ch in enumerate(line):
                if count >= units:
                    return total + i
                count += 2 if ord(ch) > 0xFFFF else 1
            return total + len(line)
        return total
