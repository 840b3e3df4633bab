"""The server's settings: the `shapelens` section of initializationOptions and of
workspace/didChangeConfiguration, as one typed dataclass with defaults.

A bad value never stops the server: it is reported (the caller shows it) and the default is used.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from shapelens.analysis.budget import DEFAULT_SECONDS
from shapelens.engine import DEVICES, ProbeOptions

SECTION = "shapelens"


@dataclass(frozen=True)
class Settings:
    enable: bool = True
    device: str = "meta"
    probe_timeout: float = 5.0  # seconds
    debounce: int = 300  # milliseconds
    inlay_hints: bool = True
    interpreter: str | None = None  # None: the interpreter running the server (or `serve --python`)
    trusted: bool = True
    plan_budget: float = DEFAULT_SECONDS  # seconds planning one document may take

    def probe_options(self) -> ProbeOptions:
        return ProbeOptions(device=self.device, timeout=self.probe_timeout, trusted=self.trusted,
                            plan_budget=self.plan_budget)


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _device(value: Any) -> str | None:
    return None if value in DEVICES else f"expected one of {', '.join(DEVICES)}"


def _timeout(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 600
    return None if ok else "expected a number of seconds above 0 and at most 600"


def _debounce(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000
    return None if ok else "expected whole milliseconds from 0 to 10000"


def _interpreter(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "expected the path of a Python interpreter"
    if not (os.path.isfile(value) and os.access(value, os.X_OK)):
        return f"{value} is not an executable file"
    return None


# The client's camelCase name -> (dataclass field, check returning what is wrong or None).
FIELDS: dict[str, tuple[str, Any]] = {
    "enable": ("enable", _bool),
    "device": ("device", _device),
    "probeTimeout": ("probe_timeout", _timeout),
    "debounce": ("debounce", _debounce),
    "inlayHints": ("inlay_hints", _bool),
    "interpreter": ("interpreter", _interpreter),
    "trusted": ("trusted", _bool),
    "planBudget": ("plan_budget", _timeout),
}
DEFAULTS = Settings()


def section_of(raw: Any) -> dict | None:
    """Our settings from what a client sent: `{"shapelens": {...}}` or the section itself."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get(SECTION), dict):
        return raw[SECTION]
    return raw if any(key in FIELDS for key in raw) else None


def merge(current: Settings, raw: dict) -> tuple[Settings, list[str]]:
    """`current` updated with the keys present in `raw`; null resets a key to its default.
    Returns the new settings and one message per rejected value."""
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if key not in FIELDS:
            continue  # clients send whole configuration trees; unknown keys are not ours to judge
        field, check = FIELDS[key]
        default = getattr(DEFAULTS, field)
        if value is None:
            changes[field] = default
            continue
        error = check(value)
        if error:
            problems.append(f"shapelens: setting `{key}` = {json.dumps(value, default=str)} ignored ({error}); "
                            f"using the default {json.dumps(default)}")
            changes[field] = default
        else:
            changes[field] = float(value) if field in ("probe_timeout", "plan_budget") else value
    return dataclasses.replace(current, **changes), problems


def _inside(path: str, roots: list[str]) -> bool:
    # Both spellings: a workspace venv's python is a symlink out of the workspace, but starting it
    # still runs the workspace's site-packages (.pth files, sitecustomize).
    spellings = {os.path.abspath(path), os.path.realpath(path)}
    for root in roots:
        for r in {os.path.abspath(root), os.path.realpath(root)}:
            if any(p == r or p.startswith(r.rstrip(os.sep) + os.sep) for p in spellings):
                return True
    return False


def interpreter_of(settings: Settings, roots: list[str]) -> tuple[str | None, str | None]:
    """The interpreter setting to use, and why it was set aside: an untrusted workspace does not
    get to choose the program the server starts (whatever the client filters)."""
    if settings.interpreter and not settings.trusted and _inside(settings.interpreter, roots):
        return None, (f"shapelens: the `interpreter` setting ({settings.interpreter}) is inside the untrusted "
                      "workspace and is ignored; trust the workspace to use it")
    return settings.interpreter, None

