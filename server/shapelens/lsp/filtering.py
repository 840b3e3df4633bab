"""The language server's view of [tool.shapelens] and suppression comments: the same Policy as
the CLI, with pyproject.toml re-read when it changes and its warnings shown in the editor (once
per read). A syntax error is shown as a hint, not a squiggle: the editor's own Python support
already marks half-typed code, and the CLI still fails on it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from shapelens.config import Config, ConfigCache
from shapelens.engine import find_root, read_source
from shapelens.report.codes import SYNTAX_ERROR
from shapelens.report.model import Finding, ProbeReport
from shapelens.report.policy import Policy


class ReportFilter:
    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.configs = ConfigCache()

    def config_for(self, path: str) -> Config:
        config, fresh = self.configs.get(find_root(path))
        if fresh:
            for warning in config.warnings:
                self.warn(f"shapelens: {warning}")
        return config

    def apply(self, report: ProbeReport, text: str) -> ProbeReport:
        """`text`: the document text the report was computed on."""
        def text_for(path: str) -> str | None:
            if path == report.path:
                return text
            try:
                return read_source(path)
            except OSError:
                return None

        policy = Policy(self.config_for, text_for)
        findings = policy.filter(report.findings) + policy.unused(report.path)
        findings = [dataclasses.replace(f, severity="hint") if f.code == SYNTAX_ERROR else f for f in findings]
        return dataclasses.replace(report, findings=sorted(findings, key=Finding.sort_key))
