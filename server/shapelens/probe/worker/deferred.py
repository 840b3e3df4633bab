"""Method decorators of installed packages, applied when the method is first called instead of
when the class is defined (the plan defers them: `FilePlan.defer_decorators`). diffusers'
`@register_to_config` on `__init__` is what gives a model its `self.config`; stripping it would
leave the forward that reads `self.config.x` unable to run. A decorator that fails to apply
leaves the method undecorated, as stripping it would."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from typing import Any

DEFER = "__shapelens_defer__"


def deferred_decorator(dec: ast.expr) -> ast.expr:
    """`@dec` -> `@__shapelens_defer__(lambda: dec)`, at the decorator's place."""
    empty = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                          defaults=[])
    call = ast.Call(func=ast.Name(DEFER, ast.Load()), args=[ast.Lambda(args=empty, body=dec)], keywords=[])
    return ast.fix_missing_locations(ast.copy_location(call, dec))


def defer(get: Callable[[], Any]) -> Callable[[Callable], Callable]:
    def wrap(fn: Callable) -> Callable:
        applied: list[Callable] = []

        @functools.wraps(fn)
        def call(*args, **kwargs):
            if not applied:
                try:
                    applied.append(get()(fn))
                except Exception:  # noqa: BLE001 — the method then runs undecorated, as if stripped
                    applied.append(fn)
            return applied[0](*args, **kwargs)

        return call

    return wrap
