"""Names whose import failed.

Real files import what the probe's interpreter may lack (torchvision, a private package, a
module that fails at import). Such a name is bound to a stand-in, so annotations, base-class
lists and attribute chains that merely mention it still evaluate, and only code that really
uses it (calls it, subclasses it) stops, with `MissingName` saying which import it came from.
"""

from __future__ import annotations

import ast

from shapelens.probe.worker.timmlike import stand_in


class MissingName(Exception):
    """Code used a name from an import that failed."""

    def __init__(self, stand_in: Missing) -> None:
        super().__init__(f"`{stand_in._sl_name}` comes from `{stand_in._sl_import}`, which failed")
        self.stand_in = stand_in


class Missing:
    def __init__(self, name: str, origin: str, key: tuple) -> None:
        self._sl_name = name
        self._sl_import = origin  # the import statement's text
        self._sl_key = key  # where that statement is: (path, line)

    def _more(self, name: str) -> Missing:
        return Missing(name, self._sl_import, self._sl_key)

    def __getattr__(self, attr: str) -> Missing:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        known = stand_in(f"{self._sl_name}.{attr}")  # `timm.layers.DropPath`: a helper whose effect on shapes is known
        return known if known is not None else self._more(f"{self._sl_name}.{attr}")

    def __getitem__(self, key) -> Missing:
        return self._more(f"{self._sl_name}[...]")  # `Float[Tensor, "b c"]` in an annotation

    def __or__(self, other) -> Missing:
        return self

    __ror__ = __or__

    def __call__(self, *args, **kwargs):
        raise MissingName(self)

    def __mro_entries__(self, bases):
        raise MissingName(self)

    def __iter__(self):
        raise MissingName(self)

    def __repr__(self) -> str:
        return f"<missing {self._sl_name}>"


def bound_names(stmt: ast.Import | ast.ImportFrom, aliases: list[ast.alias]) -> list[tuple[str, str]]:
    """(name bound, what it stands for) for the given aliases of an import statement."""
    out = []
    for alias in aliases:
        if isinstance(stmt, ast.Import):
            bound = alias.asname or alias.name.split(".")[0]
            out.append((bound, alias.name if alias.asname else bound))
        elif alias.name != "*":
            out.append((alias.asname or alias.name, f"{'.' * stmt.level}{stmt.module or ''}.{alias.name}".lstrip(".")
                        if stmt.module else alias.name))
    return out


def import_one(stmt: ast.ImportFrom, alias: ast.alias, ns: dict, path: str) -> None:
    """Run one alias of a `from m import a, b` on its own, so the names that exist still bind."""
    single = ast.ImportFrom(module=stmt.module, names=[alias], level=stmt.level)
    ast.copy_location(single, stmt)
    ast.fix_missing_locations(single)
    exec(compile(ast.Module([single], []), path, "exec"), ns)  # noqa: S102 — an import the plan kept
