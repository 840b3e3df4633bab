"""The documentation agrees with the code: every diagnostic code has its section where its
codeDescription link points, the measurements page is rendered from bench/results.json, and
relative links lead to files that exist."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT
from shapelens.report.codes import CODES

DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_code_links_to_its_own_section_of_docs_codes():
    headings = re.findall(r"^## (\S+)$", (ROOT / "docs" / "codes.md").read_text(encoding="utf-8"), re.M)
    assert headings == list(CODES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in CODES.values():
        assert code.url.endswith(f"/docs/codes.md#{code.name}")
        assert f"(docs/codes.md#{code.name})" in readme  # the README's short list


def test_measurements_page_is_rendered_from_the_bench_results():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "measurements.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_relative_links_lead_to_files():
    broken = []
    for doc in DOCS:
        prose = re.sub(r"```.*?```|`[^`]*`", "", doc.read_text(encoding="utf-8"), flags=re.S)  # not code
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
            if "://" not in target and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_readme_stays_user_sized():
    assert len((ROOT / "README.md").read_bytes()) <= 15 * 1024
