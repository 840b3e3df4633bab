"""`[tool.shapelens]` in pyproject.toml as the CLI and the language server read it: which codes
run (select, ignore, per-file-ignores), which files are skipped (exclude, extend-exclude), severity
overrides, and a check that every key is one we know. Torch-free; the probe worker reads the
hint keys (sizes, image-sizes, models) itself (analysis.hints.project_hints).

A bad key or value is a warning naming the key and never stops a run: the rest of the section
still applies.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath

from shapelens.analysis.files import SKIP_DIRS
from shapelens.report.codes import CODES, SYNTAX_ERROR, UNUSED_IGNORE

SEVERITIES = {"error": "error", "warning": "warning", "information": "information", "info": "information",
              "hint": "hint"}
# Hidden folders and the ones no user wants probed (the same list the worker skips), on top of
# which `extend-exclude` adds; `exclude` replaces it, as in ruff.
DEFAULT_EXCLUDE = (".*", *sorted(SKIP_DIRS))
HINT_KEYS = ("sizes", "image-sizes", "image_sizes", "models")
MODEL_KEYS = ("init", "kwargs", "inputs")


@dataclass
class Config:
    root: str  # the folder the globs are relative to (the one holding pyproject.toml)
    source: str | None = None  # the pyproject.toml read, if any
    select: frozenset[str] | None = None  # None: every code
    ignore: frozenset[str] = frozenset()
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    severity: dict[str, str] = field(default_factory=dict)
    show_unused_ignores: bool = False
    respect_gitignore: bool = True
    warnings: list[str] = field(default_factory=list)

    def relative(self, path: str) -> str | None:
        """`path` relative to the root, in / form; None outside the root."""
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(self.root))
        return None if rel == ".." or rel.startswith(".." + os.sep) else PurePosixPath(*rel.split(os.sep)).as_posix()

    def excluded(self, path: str, inside: str | None = None) -> bool:
        """`inside`: a folder the user named, whose own path parts do not count (`check build/`
        checks build/ although `build` is excluded by default, as in ruff)."""
        rel = self.relative(path)
        if rel is None or rel == ".":
            return False
        base = self.relative(inside) if inside else None
        skip = 0 if base in (None, ".") else len(base.split("/"))
        return any(glob_matches(p, rel, skip) for p in (*self.exclude, *self.extend_exclude))

    def enabled(self, path: str, code: str) -> bool:
        """Whether findings with `code` are reported for `path`."""
        if code == UNUSED_IGNORE and not self.show_unused_ignores:
            return False
        # select never drops these two: one is a file Python refuses, the other was asked for by name
        unselectable = code in (SYNTAX_ERROR, UNUSED_IGNORE)
        if (self.select is not None and code not in self.select and not unselectable) or code in self.ignore:
            return False
        rel = self.relative(path)
        return rel is None or not any(code in codes for pattern, codes in self.per_file_ignores
                                      if glob_matches(pattern, rel))

    def severity_of(self, code: str, default: str) -> str:
        return self.severity.get(code, default)


# -- globs ------------------------------------------------------------------------------------------
@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern:
    """gitignore-style: `*` and `?` stay inside one path part, `**` crosses parts."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_matches(pattern: str, rel: str, skip: int = 0) -> bool:
    """Whether `rel` (a / path relative to the config's root) or a folder above it matches. A
    pattern without a slash matches any single path part (`build` skips every build/ folder), as
    in ruff and .gitignore. The first `skip` parts are not tested on their own."""
    pattern = pattern.strip().removeprefix("./").rstrip("/")
    if not pattern:
        return False
    parts = rel.split("/")
    if "/" not in pattern:
        regex = glob_regex(pattern)
        return any(regex.match(part) for part in parts[skip:])
    regex = glob_regex(pattern.lstrip("/"))
    return any(regex.match("/".join(parts[:n])) for n in range(skip + 1, len(parts) + 1))


# -- reading ----------------------------------------------------------------------------------------
def _codes(key: str, value, warnings: list[str]) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        warnings.append(f"[tool.shapelens] {key}: expected a list of codes, got {value!r}; ignored")
        return frozenset()
    unknown = [v for v in value if v not in CODES]
    if unknown:
        warnings.append(f"[tool.shapelens] {key}: unknown code{'s' * (len(unknown) > 1)} "
                        f"{', '.join(map(repr, unknown))} (known: {', '.join(CODES)})")
    return frozenset(v for v in value if v in CODES)


def _globs(key: str, value, warnings: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        warnings.append(f"[tool.shapelens] {key}: expected a list of glob patterns, got {value!r}; ignored")
        return None
    return tuple(value)


def _bool(key: str, value, default: bool, warnings: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    warnings.append(f"[tool.shapelens] {key}: expected true or false, got {value!r}; using {str(default).lower()}")
    return default


def _check_hint_keys(section: dict, warnings: list[str]) -> None:
    """Only the shape of the hint keys: the worker reports what their values mean."""
    for key, kind in (("sizes", dict), ("image-sizes", list), ("image_sizes", list), ("models", dict)):
        if key in section and not isinstance(section[key], kind):
            warnings.append(f"[tool.shapelens] {key}: expected a {'table' if kind is dict else 'list'}, "
                            f"got {section[key]!r}; ignored")
    sizes = section.get("sizes")
    for name, v in (sizes.items() if isinstance(sizes, dict) else ()):
        if type(v) is not int or v <= 0:
            warnings.append(f"[tool.shapelens] sizes.{name}: expected a positive whole number, got {v!r}; ignored")
    models = section.get("models")
    for cls, entry in (models.items() if isinstance(models, dict) else ()):
        if not isinstance(entry, dict):
            warnings.append(f"[tool.shapelens] models.{cls}: expected a table with init, kwargs or inputs")
            continue
        for key in entry:
            if key not in MODEL_KEYS:
                warnings.append(f"[tool.shapelens] models.{cls}.{key}: unknown key (known: {', '.join(MODEL_KEYS)})")


def parse_section(section: dict, root: str, source: str | None = None) -> Config:
    cfg = Config(root=root, source=source)
    w = cfg.warnings
    known = {"select", "ignore", "per-file-ignores", "exclude", "extend-exclude", "severity",
             "show-unused-ignores", "respect-gitignore", *HINT_KEYS}
    for key in section:
        if key not in known:
            close = [k for k in sorted(known) if k.replace("_", "-") == key.replace("_", "-")]
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
            w.append(f"[tool.shapelens] {key}: unknown key{hint}")
    if "select" in section:
        cfg.select = _codes("select", section["select"], w)
    if "ignore" in section:
        cfg.ignore = _codes("ignore", section["ignore"], w)
    pfi = section.get("per-file-ignores", {})
    if isinstance(pfi, dict):
        cfg.per_file_ignores = tuple((pattern, _codes(f"per-file-ignores.{pattern!r}", codes, w))
                                     for pattern, codes in pfi.items())
    else:
        w.append(f"[tool.shapelens] per-file-ignores: expected a table of glob = [codes], got {pfi!r}; ignored")
    if "exclude" in section:
        given = _globs("exclude", section["exclude"], w)
        cfg.exclude = cfg.exclude if given is None else given
    if "extend-exclude" in section:
        cfg.extend_exclude = _globs("extend-exclude", section["extend-exclude"], w) or ()
    sev = section.get("severity", {})
    if isinstance(sev, dict):
        for code, value in sev.items():
            if code not in CODES:
                w.append(f"[tool.shapelens] severity.{code}: unknown code (known: {', '.join(CODES)})")
            elif value not in SEVERITIES:
                w.append(f"[tool.shapelens] severity.{code}: expected error, warning, information or hint, "
                         f"got {value!r}; ignored")
            else:
                cfg.severity[code] = SEVERITIES[value]
    else:
        w.append(f"[tool.shapelens] severity: expected a table of code = \"error\" | \"warning\" | ..., got {sev!r}")
    if "show-unused-ignores" in section:
        cfg.show_unused_ignores = _bool("show-unused-ignores", section["show-unused-ignores"], False, w)
    if "respect-gitignore" in section:
        cfg.respect_gitignore = _bool("respect-gitignore", section["respect-gitignore"], True, w)
    _check_hint_keys(section, w)
    return cfg


def load_config(root: str) -> Config:
    """The config of the project rooted at `root` (its pyproject.toml; defaults without one)."""
    path = os.path.join(root, "pyproject.toml")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return Config(root=root)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return Config(root=root, source=path, warnings=[f"{path}: cannot read [tool.shapelens]: {exc}"])
    section = data.get("tool", {}).get("shapelens", {}) if isinstance(data.get("tool"), dict) else {}
    if not isinstance(section, dict):
        return Config(root=root, source=path, warnings=[f"{path}: [tool.shapelens] must be a table"])
    cfg = parse_section(section, root, path)
    cfg.warnings = [f"{path}: {w}" for w in cfg.warnings]
    return cfg


class ConfigCache:
    """Configs by root, re-read when pyproject.toml changes (the language server lives long)."""

    def __init__(self) -> None:
        self._by_root: dict[str, tuple[float | None, Config]] = {}

    def get(self, root: str) -> tuple[Config, bool]:
        """The config, and whether it was (re)read just now (so its warnings are new)."""
        try:
            stamp: float | None = os.stat(os.path.join(root, "pyproject.toml")).st_mtime_ns
        except OSError:
            stamp = None
        held = self._by_root.get(root)
        if held is not None and held[0] == stamp:
            return held[1], False
        cfg = load_config(root)
        self._by_root[root] = (stamp, cfg)
        return cfg, True
