"""Symbolic dims, the expressions: a dim the probe made up is a formula in the symbols it
assumed (`H/2`, `T + 1`, `64 * (H/4) * (W/4)`), kept per dim on a tensor as `_sl_dims`, and
rendered as text with the size each symbol was probed at. symdims.py decides how ops hand the
expressions on."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, NamedTuple

import torch


class Affine(NamedTuple):
    sym: str
    a: Fraction
    b: Fraction

    def value(self, values: dict[str, int]) -> Fraction:
        return self.a * values[self.sym] + self.b

    def text(self) -> str:
        a, b, s = self.a, self.b, self.sym
        if a == 1:
            body = s
        elif a.denominator == 1:
            body = f"{a.numerator} * {s}"
        elif a.numerator == 1 and b == 0:
            return f"{s}/{a.denominator}"
        elif (b / a).denominator == 1 and a.numerator == 1:
            c = int(b / a)
            return f"({s} {'+' if c > 0 else '-'} {abs(c)})/{a.denominator}"
        else:
            body = f"{a.numerator} * {s}/{a.denominator}" if a.numerator != 1 else f"{s}/{a.denominator}"
        if b == 0:
            return body
        sign = "+" if b > 0 else "-"
        return f"{body} {sign} {_num(abs(b))}"


class Dim(NamedTuple):
    """coef * product of affine factors, each in one symbol."""

    coef: Fraction
    factors: tuple[Affine, ...]

    def value(self, values: dict[str, int]) -> Fraction:
        out = self.coef
        for f in self.factors:
            out *= f.value(values)
        return out

    def symbols(self) -> set[str]:
        return {f.sym for f in self.factors}

    def text(self) -> str:
        if len(self.factors) == 1 and self.coef == 1:
            return self.factors[0].text()
        parts = [f.text() for f in self.factors]
        parts = [f"({p})" if any(c in p for c in " /") and len(parts) + (self.coef != 1) > 1 else p for p in parts]
        if self.coef != 1:
            parts.insert(0, _num(self.coef))
        return " * ".join(parts)


class Unknown(NamedTuple):
    """A dim that depends on assumed sizes in a way no formula here expresses."""

    def text(self) -> str:
        return ""


UNKNOWN = Unknown()
Expr = Dim | Unknown | None  # None: a number from the file

VALUES: dict[str, int] = {}  # symbol -> the size it was probed at (this attempt)
RARE: dict[int, str] = {}  # size -> symbol, for sizes chosen so no real width has them


def _num(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def symbol(name: str) -> Dim:
    return Dim(Fraction(1), (Affine(name, Fraction(1), Fraction(0)),))


def begin(values: dict[str, int], rare: set[str]) -> None:
    """A new attempt: the symbols and the sizes they are probed at. `rare`: the symbols whose
    sizes are picked to be unlike any real width, so a bare number may be matched back."""
    VALUES.clear()
    VALUES.update(values)
    RARE.clear()
    for name, size in values.items():
        if name in rare and size not in RARE:
            RARE[size] = name


def end() -> None:
    VALUES.clear()
    RARE.clear()


def assume_width(name: str, size: int) -> None:
    """A width the probe assumed for a constructor argument (e.g. `C` or the parameter's name):
    results of size `size` made by layers count as that symbol when the file says nothing."""
    VALUES[name] = size
    RARE.setdefault(size, name)


def get(t: Any) -> tuple[Expr, ...] | None:
    return getattr(t, "_sl_dims", None)


def put(t: Any, dims: list[Expr] | tuple[Expr, ...]) -> None:
    if not any(d is not None for d in dims):
        return
    try:
        t._sl_dims = tuple(dims)
    except (AttributeError, RuntimeError):
        pass


def seed(t: torch.Tensor, names: list[str | None]) -> None:
    """A made-up input: `names[i]` is the symbol of dim i (None: a number from the file)."""
    put(t, [symbol(n) if n else None for n in names])


# -- rendering ------------------------------------------------------------------------------------
def dims_text(t: Any) -> list[str] | None:
    """The dims as text (`["B", "32", "H/2", "W/2"]`); None when no dim was assumed."""
    dims = get(t)
    if dims is None or not isinstance(t, torch.Tensor):
        return None
    with torch._C.DisableTorchFunction():  # called from hooks: a shape read needs no dispatch
        sizes = tuple(t.shape)
    if len(dims) != len(sizes):
        return None
    out = []
    for d, size in zip(dims, sizes):
        if isinstance(d, Dim):
            out.append(str(d.text()))  # a numpy width (`np.prod(shape)`) names no symbol: its text
        elif isinstance(d, Unknown):
            out.append(f"~{int(size)}")
        else:
            out.append(str(int(size)))
    return out


def shape_text(t: Any) -> str | None:
    dims = dims_text(t)
    return "[" + ", ".join(dims) + "]" if dims is not None else None


def used_symbols(t: Any) -> dict[str, int]:
    """The symbols a tensor's dims use, with the sizes they were probed at."""
    found: dict[str, int] = {}
    for d in get(t) or ():
        if isinstance(d, Dim):
            for s in sorted(d.symbols()):
                if s in VALUES:
                    found[s] = VALUES[s]
    return found
