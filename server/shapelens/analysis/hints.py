"""What the user tells the probe: `# shapelens:` hint comments, jaxtyping annotations on forward's
parameters, and project-wide defaults in pyproject.toml's [tool.shapelens]. Torch-free.

    class Model(nn.Module):  # shapelens: Model(vocab_size=1000, d_model=64)
    def forward(self, x):    # shapelens: x=float[B,3,224,224], ids=long[B,T]

A hint applies to the line it ends, or, written on a line of its own, to the line below.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field

from shapelens.analysis.source import parse_expression
from shapelens.report.suppress import DIRECTIVE

_HINT = re.compile(r"#\s*shapelens:\s*(?P<body>.*)$")
_INPUT = re.compile(r"(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<dtype>[A-Za-z_]\w*)\s*\[(?P<dims>[^\]]*)\]")


@dataclass(frozen=True)
class InputSpec:
    dtype: str  # float, long, int, bool, half, bfloat16, ...
    dims: tuple[int | str, ...]  # ints are taken as written, names are symbolic (B, T, ...)


@dataclass
class Hint:
    line: int  # the line the hint applies to (1-based)
    text: str
    ctor: ast.Call | None = None  # `Model(vocab_size=1000)`
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    error: str | None = None


def parse_hint(line: int, body: str) -> Hint:
    hint = Hint(line, body)
    stripped = body.strip()
    if re.match(r"[A-Za-z_][\w.]*\s*\(", stripped):
        try:
            node = parse_expression(stripped)
        except SyntaxError as exc:
            hint.error = f"cannot parse the hint `{stripped}`: {exc.msg}"
            return hint
        if isinstance(node, ast.Call):
            hint.ctor = node
        return hint
    for m in _INPUT.finditer(stripped):
        dims: list[int | str] = []
        for d in m.group("dims").split(","):
            d = d.strip()
            if not d:
                continue
            dims.append(int(d) if d.isdigit() else d)
        hint.inputs[m.group("name")] = InputSpec(m.group("dtype"), tuple(dims))
    if not hint.inputs:
        hint.error = (
            f"cannot read the hint `{stripped}`; write `Model(arg=value, ...)` or "
            "`x=float[B,3,224,224], ids=long[B,T]`"
        )
    return hint


def hint_key(where: int | str, hint: Hint) -> list:
    """How the plan names a hint whose constructor call it found tensor-pure: where it is and
    what it says, so an edited hint is never taken for the one the plan checked."""
    return [where, ast.unparse(hint.ctor) if hint.ctor is not None else ""]


def withhold(hints: dict, approved: list) -> None:
    """Drop the constructor calls the plan did not find tensor-pure (their arguments would be
    evaluated in the module); each says why in its error instead."""
    allowed = {tuple(a) for a in approved}
    for where, hint in hints.items():
        if hint.ctor is not None and tuple(hint_key(where, hint)) not in allowed:
            hint.ctor = None
            hint.error = (f"cannot use the hint `{hint.text.strip()}`: it is not tensor-pure (only constants, torch "
                          "and the file's model and config classes may appear in its arguments)")


def collect_hints(text: str) -> dict[int, Hint]:
    """Hints by the line they apply to."""
    hints: dict[int, Hint] = {}
    if "shapelens" not in text:
        return hints  # tokenizing a long file costs seconds; most have no hint at all
    lines = text.splitlines()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return hints
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        m = _HINT.match(tok.string)
        if not m or DIRECTIVE.match(tok.string):
            continue  # `# shapelens: ignore[...]` is a suppression (report.suppress), not a hint
        body = m.group("body")
        later = DIRECTIVE.search(body)  # `# shapelens: x=float[B,4]  # shapelens: ignore`
        body = body[:later.start()] if later else body
        line = tok.start[0]
        own_line = lines[line - 1][: tok.start[1]].strip() == ""
        target = line + 1 if own_line else line
        hints[target] = parse_hint(target, body)
    return hints


# -- jaxtyping annotations --------------------------------------------------------------------
# `x: Float[Tensor, "batch seq 128"]` is an input spec: numbers are taken as written, names are
# symbolic and shown by their own name in hovers.
_JAX_DTYPES = {
    **dict.fromkeys(("Float", "Float16", "Float32", "Float64", "BFloat16", "Inexact", "Real", "Num", "Shaped",
                     "Complex"), "float"),
    **dict.fromkeys(("Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64",
                     "Integer", "Long"), "long"),
    "Bool": "bool",
}


def annotation_spec(annotation: ast.expr | None) -> InputSpec | None:
    if not isinstance(annotation, ast.Subscript):
        return None
    head = annotation.value
    name = head.attr if isinstance(head, ast.Attribute) else head.id if isinstance(head, ast.Name) else None
    dtype = _JAX_DTYPES.get(name or "")
    sl = annotation.slice
    if dtype is None or not isinstance(sl, ast.Tuple) or len(sl.elts) != 2:
        return None
    shape = sl.elts[1]
    if not isinstance(shape, ast.Constant) or not isinstance(shape.value, str):
        return None
    dims: list[int | str] = []
    for i, token in enumerate(shape.value.split()):
        token = token.lstrip("*#").split("=")[0]
        if token in ("", "..."):
            token = "B"  # a variadic batch: probe it as one batch dim
        if token == "_":
            token = f"_{i}"
        dims.append(int(token) if token.isdigit() else token)
    return InputSpec(dtype, tuple(dims))


def jaxtyping_inputs(fn: ast.FunctionDef) -> dict[str, InputSpec]:
    """Input specs from the jaxtyping annotations of a forward's parameters."""
    out = {}
    for arg in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs:
        spec = annotation_spec(arg.annotation)
        if spec is not None:
            out[arg.arg] = spec
    return out


# -- project-wide defaults: [tool.shapelens] in pyproject.toml ----------------------------------
@dataclass
class ProjectHints:
    """What pyproject.toml says:

        [tool.shapelens]
        sizes = { B = 4, T = 64 }     # sizes for the dims the probe must assume
        image-sizes = [224]           # the input sizes to try for images (default 28, 32, ...)

        [tool.shapelens.models.GPT]   # a class by name, or "package.module.GPT"
        init = "GPT(GPTConfig(n_layer=2))"   # or: kwargs = { vocab_size = 1000 }
        inputs = "idx=long[B,T]"
    """

    sizes: dict[str, int] = field(default_factory=dict)
    image_sizes: tuple[int, ...] = ()
    models: dict[str, Hint] = field(default_factory=dict)
    error: str | None = None
    root: str = ""  # the workspace it was read from

    def for_class(self, module: str, name: str) -> Hint | None:
        return self.models.get(f"{module}.{name}") or self.models.get(name)


def _read_toml(path: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11 runs the worker: tomli if it is there
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as f:
        return tomllib.load(f)


def project_hints(root: str) -> ProjectHints:
    import os

    path = os.path.join(root, "pyproject.toml")
    if not os.path.isfile(path):
        return ProjectHints(root=root)
    try:
        data = _read_toml(path)
    except ImportError:
        return ProjectHints(root=root)
    except Exception as exc:  # noqa: BLE001 — a broken pyproject.toml is the user's to fix, not a crash
        return ProjectHints(error=f"cannot read pyproject.toml for [tool.shapelens]: {exc}", root=root)
    section = data.get("tool", {}).get("shapelens", {})
    if not isinstance(section, dict):
        return ProjectHints(root=root)
    out = ProjectHints(root=root)
    problems = []
    sizes = section.get("sizes", {})
    if isinstance(sizes, dict):
        out.sizes = {str(k): v for k, v in sizes.items() if type(v) is int and v > 0}
    images = section.get("image-sizes", section.get("image_sizes", []))
    if isinstance(images, list):
        out.image_sizes = tuple(v for v in images if type(v) is int and v > 0)
    for cls, entry in (section.get("models") or {}).items():
        if not isinstance(entry, dict):
            continue
        short = cls.rsplit(".", 1)[-1]
        hint = Hint(0, f"[tool.shapelens.models.{cls}]")
        init = entry.get("init")
        if isinstance(init, str):
            parsed = parse_hint(0, init)
            hint.ctor, hint.error = parsed.ctor, parsed.error
        elif isinstance(entry.get("kwargs"), dict):
            try:
                hint.ctor = ast.Call(ast.Name(short, ast.Load()), [], [
                    ast.keyword(str(k), parse_expression(repr(v))) for k, v in entry["kwargs"].items()])
                ast.fix_missing_locations(ast.Expression(hint.ctor))
            except SyntaxError:
                hint.error = "kwargs must hold plain values (numbers, strings, lists)"
        inputs = entry.get("inputs")
        if isinstance(inputs, str):
            parsed = parse_hint(0, inputs)
            hint.inputs = parsed.inputs
            hint.error = hint.error or parsed.error
        if hint.error:
            problems.append(f"[tool.shapelens.models.{cls}]: {hint.error}")
        out.models[cls] = hint
    out.error = "; ".join(problems) or None
    return out


def pure_hint_keys(text: str, root: str, pure: Callable[[ast.Call], bool]) -> tuple[list[list], list[list]]:
    """The hints whose constructor arguments the worker may evaluate (`pure`: the planner's
    test of a call's arguments): checked like code."""
    lines = [hint_key(line, h) for line, h in collect_hints(text).items() if h.ctor is not None and pure(h.ctor)]
    models = [hint_key(name, h) for name, h in project_hints(root).models.items() if h.ctor is not None and pure(h.ctor)]
    return lines, models
