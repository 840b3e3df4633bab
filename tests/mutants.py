"""Mutants of the corpus: one declared width changed at a time, and what shapelens makes of them.

A mutant doubles ONE width argument of one layer constructor call: the arguments the rule table
(`server/shapelens/probe/worker/rules.py`, `LayerRule.widths`) marks as widths, such as
`in_features`, `out_channels`, `num_features`, `embedding_dim`, `d_model`, `hidden_size`. A literal
is rewritten (`9216` -> `18432`), an expression is wrapped (`ninp` -> `(ninp) * 2`). Doubling
keeps divisibility by heads and groups, so a mutant is a width bug and not a configuration torch
rejects outright.

Whether a mutant breaks the model is decided without shapelens: the mutant is run for real, on
CPU tensors, by the snippet in `ORACLE` (module-level code runs as written). Inputs follow the
model's first layer (`m.conv1.in_channels`) because a file that never builds an input declares
its interface there; changing it gives another correct model. Warnings count as failures (torch
only warns about a wrong InstanceNorm width), and every layer's weights must match the widths
it declares (tying weights can hide a wrong declaration). A mutant that runs is *equivalent*:
the file is still consistent, and shapelens must report no error for it.

A breaking mutant is *caught* when shapelens reports exactly one error, on a width argument of a
layer constructor (the mutated one, or the one of the layer whose input no longer agrees with
it), and applying that error's fix gives a file with no error.

    .venv/bin/python tests/mutants.py        # prints the figures of the README
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"

# How to run each corpus file for real. Module-level code runs first; the snippet then builds
# and calls what the file only defines.
ORACLE = {
    "mnist_cnn.py": "m = Net(); m(torch.randn(2, m.conv1.in_channels, 28, 28))",
    "vgg.py": "m = VGG(); m(torch.randn(2, m.features[0].in_channels, 32, 32))",
    "resnet.py": "for m in (ResNet(), ResNet50()): m(torch.randn(2, m.conv1.in_channels, 32, 32))",
    "unet.py": "m = UNet(); m(torch.randn(1, m.inc.double_conv[0].in_channels, 32, 32))",
    "lstm_lm.py": "m = RNNModel(); m(torch.randint(0, 10000, (7, 2)), m.init_hidden(2))",
    "seq2seq_attention.py": "",
    "transformer_classifier.py": "m = TransformerClassifier(HParams()); m(torch.randint(0, 100, (2, 9)))",
    "gpt.py": "model(torch.randint(0, 100, (2, 9)), torch.randint(0, 100, (2, 9))); model(torch.randint(0, 100, (2, 9)))",
    "vae.py": "m = VAE(); m(torch.rand(2, 1, 28, 28))",
    "dcgan.py": "",
    "vit.py": "m = VisionTransformer(); m(torch.randn(1, m.patch_embed.proj.in_channels, 224, 224))",
    "script_cnn.py": "",
    "script_ops.py": "",
    "train_mnist.py": "",
    "translation_transformer.py": "m = Seq2SeqTransformer(); m(torch.randint(0, 100, (9, 2)), torch.randint(0, 100, (7, 2)))",
    "audio_cnn.py": ("m = M5(); m(torch.randn(2, m.conv1.in_channels, 8000)); "
                     "m = SpectrogramNet(); m(torch.randn(2, m.norm_in.num_features, 64, 101)); "
                     "m = ClipStem(); m(torch.randn(2, m.conv.in_channels, 8, 32, 32))"),
}


@dataclass(frozen=True)
class Mutant:
    file: str
    text: str
    layer: str  # the class, e.g. "Linear"
    param: str  # the constructor argument changed
    line: int  # 1-based line of the changed argument
    before: str
    after: str

    def label(self) -> str:
        return f"{self.file}:{self.line} {self.layer}({self.param}={self.before} -> {self.after})"


def width_table(declared: bool = False) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """Layer class name -> (its constructor's parameters in order, the widths among them). With
    `declared`, also the arguments that declare a parameter's shape (`num_embeddings`): an error
    there is on a width the layer declares, though the corpus does not mutate it."""
    from shapelens.probe.worker.origin import ctor_params
    from shapelens.probe.worker.rules import RULES

    out = {}
    for r in RULES:
        widths = tuple(dict.fromkeys(r.widths + (tuple(p for _, _, p in r.params) if declared else ())))
        if widths:
            out[r.cls.__name__] = (ctor_params(r.cls, r), widths)
    return out


def _layer_name(func: ast.expr, imported: set[str], table: dict) -> str | None:
    if isinstance(func, ast.Attribute) and func.attr in table:
        base = func.value
        names = []
        while isinstance(base, ast.Attribute):
            names.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name):
            names.append(base.id)
            dotted = ".".join(reversed(names))
            if dotted in ("nn", "torch.nn"):
                return func.attr
    if isinstance(func, ast.Name) and func.id in table and func.id in imported:
        return func.id
    return None


def width_args(text: str, table: dict | None = None) -> list[tuple[str, str, ast.expr]]:
    """(layer class, parameter, argument node) for every width argument written in a layer call."""
    table = table or width_table()
    tree = ast.parse(text)
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and (n.module or "").startswith("torch.nn") for a in n.names}
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _layer_name(node.func, imported, table)
        if name is None:
            continue
        params, widths = table[name]
        bound: dict[str, ast.expr] = {}
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                break
            if i < len(params):
                bound[params[i]] = arg
        bound.update({k.arg: k.value for k in node.keywords if k.arg})
        for param in widths:
            arg = bound.get(param)
            if arg is not None and not isinstance(arg, (ast.Tuple, ast.List, ast.Starred)):
                out.append((name, param, arg))
    return sorted(out, key=lambda a: (a[2].lineno, a[2].col_offset))


def mutants_of(path: Path, table: dict | None = None) -> list[Mutant]:
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    out = []
    for layer, param, arg in width_args(text, table):
        if arg.lineno != arg.end_lineno:
            continue
        line = lines[arg.lineno - 1]
        before = line[arg.col_offset:arg.end_col_offset]
        if isinstance(arg, ast.Constant) and type(arg.value) is int:
            after = str(arg.value * 2)
        else:
            after = f"({before}) * 2"
        new_line = line[:arg.col_offset] + after + line[arg.end_col_offset:]
        mutated = "".join(lines[: arg.lineno - 1] + [new_line] + lines[arg.lineno:])
        out.append(Mutant(path.name, mutated, layer, param, arg.lineno, before, after))
    return out


def all_mutants() -> list[Mutant]:
    table = width_table()
    return [m for path in sorted(CORPUS.glob("*.py")) for m in mutants_of(path, table)]


# -- the oracle: run a mutant for real ------------------------------------------------------------
ORACLE_PROGRAM = r"""
import json, sys, types, warnings
import torch
from torch import nn
torch.manual_seed(0)
torch.set_num_threads(1)
sys.path.insert(0, CORPUS)

def declared_ok(ns):
    for value in list(ns.values()):
        if not isinstance(value, nn.Module):
            continue
        for m in value.modules():
            w = getattr(m, "weight", None)
            if isinstance(m, nn.Linear) and tuple(w.shape) != (m.out_features, m.in_features):
                return f"{m} has weight {list(w.shape)}"
            if isinstance(m, nn.Embedding) and tuple(w.shape) != (m.num_embeddings, m.embedding_dim):
                return f"{m} has weight {list(w.shape)}"
    return None

out = []
for job in json.load(sys.stdin):
    ns = {"__name__": "__corpus__", "__file__": job["path"]}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
            with torch.no_grad():
                exec(compile(job["text"], job["path"], "exec"), ns)
                exec(job["snippet"], ns)
        bad = declared_ok(ns)
        out.append(bad is None and "ok" or bad)
    except BaseException as exc:
        out.append(f"{type(exc).__name__}: {exc}"[:300])
print(json.dumps(out))
"""


def run_oracle(jobs: list[tuple[str, str]]) -> subprocess.Popen:
    """Start running (file name, source) pairs for real; `.communicate()` gives a JSON list of
    "ok" or the failure."""
    payload = [{"path": str(CORPUS / name), "text": text, "snippet": ORACLE[name]} for name, text in jobs]
    proc = subprocess.Popen([sys.executable, "-c", f"CORPUS = {str(CORPUS)!r}\n" + ORACLE_PROGRAM],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(payload))
    proc.stdin.close()
    return proc


def oracle_results(proc: subprocess.Popen) -> list[str]:
    out = proc.stdout.read()
    proc.wait()
    return json.loads(out.strip().splitlines()[-1])


# -- what shapelens says ---------------------------------------------------------------------------
@dataclass
class Outcome:
    mutant: Mutant
    breaks: str  # "ok" when the mutant runs for real, else the failure
    errors: list = field(default_factory=list)
    fixed_errors: list | None = None  # errors after applying the single error's fix
    on_width: bool = False

    @property
    def equivalent(self) -> bool:
        return self.breaks == "ok"

    @property
    def caught(self) -> bool:
        return (not self.equivalent and len(self.errors) == 1 and self.on_width and self.fixed_errors == [])

    def describe(self) -> str:
        errs = "; ".join(f"{Path(f.path).name}:{f.range['start']['line'] + 1} {f.code}: {f.message[:160]}"
                         for f in self.errors) or "no error"
        return f"{self.mutant.label()}: {errs}" + (f" | after fix: {len(self.fixed_errors)} errors"
                                                    if self.fixed_errors else "")


def _errors(report) -> list:
    return [f for f in report.findings if f.severity == "error"]


def _width_ranges(path: str, text: str, table: dict) -> set[tuple[str, int, int]]:
    out = set()
    for _, _, arg in width_args(text, table):
        out.add((path, arg.lineno - 1, arg.col_offset))
    return out


def evaluate(engine, mutants: list[Mutant] | None = None) -> list[Outcome]:
    """Probe every mutant (and every fixed mutant) through one engine, in parallel."""
    from shapelens.engine import ProbeOptions
    from shapelens.report.fixes import apply_edits

    table = width_table(declared=True)
    mutants = mutants if mutants is not None else all_mutants()
    oracle = run_oracle([(m.file, m.text) for m in mutants])
    # A generous time limit: two probes run at once next to the oracle, and a probe that runs
    # out of time keeps its first fix unverified. What is measured here is what the probe finds.
    options = ProbeOptions(timeout=20.0)
    futures = [engine.submit(str(CORPUS / m.file), m.text, options)[1] for m in mutants]
    outcomes = [Outcome(m, "") for m in mutants]
    fixes = []
    for outcome, fut in zip(outcomes, futures):
        report = fut.result()
        outcome.errors = _errors(report)
        if len(outcome.errors) == 1:
            f = outcome.errors[0]
            path = str((CORPUS / outcome.mutant.file).resolve())
            texts = {path: outcome.mutant.text}
            if f.path not in texts:
                texts[f.path] = Path(f.path).read_text()
            outcome.on_width = (f.path, f.range["start"]["line"], f.range["start"]["character"]) in \
                _width_ranges(f.path, texts[f.path], table)
            if f.fixes:
                fix = f.fixes[0]
                target = fix.path or f.path
                if target == path:
                    fixes.append((outcome, engine.submit(path, apply_edits(texts[path], fix.edits), options)[1]))
    for outcome, fut in fixes:
        outcome.fixed_errors = _errors(fut.result())
    for outcome, verdict in zip(outcomes, oracle_results(oracle)):
        outcome.breaks = verdict
    return outcomes


@dataclass
class Figures:
    layers_shaped: int
    layers: int
    caught: int
    breaking: int
    equivalent: int
    false_errors: int  # errors on the clean corpus + errors on equivalent mutants
    seconds: float

    def lines(self) -> list[str]:
        return [f"layers with shapes: {self.layers_shaped} / {self.layers} "
                f"({100 * self.layers_shaped / max(self.layers, 1):.1f} %)",
                f"mutants caught: {self.caught} / {self.breaking} ({100 * self.caught / max(self.breaking, 1):.1f} %)"
                f", plus {self.equivalent} equivalent mutants (the model still runs)",
                f"false errors: {self.false_errors}",
                f"time: {self.seconds:.0f} s"]


def clean_reports(engine) -> dict[str, object]:
    paths = sorted(CORPUS.glob("*.py"))
    futures = [engine.submit(str(p), p.read_text())[1] for p in paths]
    return {p.name: f.result() for p, f in zip(paths, futures)}


def figures(engine) -> tuple[Figures, list[Outcome], dict]:
    started = time.perf_counter()
    reports = clean_reports(engine)
    layers = [s for r in reports.values() for s in r.shapes if s.kind == "layer"]
    shaped = [s for s in layers if s.input_shape is not None and s.output_shape is not None]
    clean_errors = sum(len(_errors(r)) for r in reports.values())
    outcomes = evaluate(engine)
    breaking = [o for o in outcomes if not o.equivalent]
    false = clean_errors + sum(len(o.errors) for o in outcomes if o.equivalent)
    return Figures(len(shaped), len(layers), sum(o.caught for o in breaking), len(breaking),
                   len(outcomes) - len(breaking), false, time.perf_counter() - started), outcomes, reports


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "server"))
    from shapelens.engine import Engine

    engine = Engine(str(root))
    try:
        figs, outcomes, _ = figures(engine)
    finally:
        engine.close()
    for o in outcomes:
        if not o.equivalent and not o.caught:
            print("missed:", o.describe())
        if o.equivalent and o.errors:
            print("false error:", o.describe())
    print("\n".join(figs.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
