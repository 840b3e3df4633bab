"""What the user asked to see: config (select / ignore / per-file-ignores / exclude / severity)
and suppression comments applied to a report's findings. Shared by the CLI and the language
server, so both report the same findings for the same file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from shapelens.config import Config
from shapelens.report.codes import UNUSED_IGNORE
from shapelens.report.model import Finding
from shapelens.report.suppress import Suppressions


class Policy:
    def __init__(self, config_for: Callable[[str], Config], text_for: Callable[[str], str | None]) -> None:
        """`config_for(path)`: the config that governs a file; `text_for(path)`: its text (None
        when unreadable)."""
        self.config_for, self.text_for = config_for, text_for
        self._suppressions: dict[str, Suppressions] = {}

    def suppressions(self, path: str) -> Suppressions:
        if path not in self._suppressions:
            self._suppressions[path] = Suppressions(path, self.text_for(path) or "")
        return self._suppressions[path]

    def keep(self, finding: Finding) -> Finding | None:
        """The finding as reported (its severity overridden), or None when it is not wanted."""
        config = self.config_for(finding.path)
        if config.excluded(finding.path) or not config.enabled(finding.path, finding.code):
            return None
        if self.suppressions(finding.path).suppresses(finding):
            return None
        wanted = config.severity_of(finding.code, finding.severity)
        return finding if wanted == finding.severity else dataclasses.replace(finding, severity=wanted)

    def filter(self, findings: list[Finding]) -> list[Finding]:
        return [k for k in map(self.keep, findings) if k is not None]

    def unused(self, path: str) -> list[Finding]:
        """`unused-ignore` findings for `path`; call after every finding of `path` went through
        `keep` (off unless show-unused-ignores)."""
        config = self.config_for(path)
        if not config.enabled(path, UNUSED_IGNORE) or config.excluded(path):
            return []
        return [dataclasses.replace(f, severity=config.severity_of(f.code, f.severity))
                for f in self.suppressions(path).unused()]
