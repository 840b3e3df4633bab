"""Constructor arguments the probe assumes when nothing in the workspace gives them.

A library-style class (`class ViT(nn.Module): def __init__(self, *, image_size, patch_size, dim,
depth, heads, mlp_dim)`) is never built in its own file. Its parameters are read by name:
widths (`dim`, `d_model`, `*_channels`, `*_features`, ...) get plausible widths, counts
(`depth`, `num_layers`) a small value, head counts a divisor of every width, sequence lengths the
made-up `T`, flags their annotation, strings a value the class compares them with. A dataclass
config whose fields lack defaults is filled the same way per field, and an unannotated `config`
with no config class in the file answers each attribute asked of it by the attribute's name.

Two assumptions are made (`VARIANTS`): the first gives every width its own value (so a width
used where another was meant shows), the second gives all widths one value and changes every
other number. The probe reports as an error only what holds under both (run.py).
"""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import inspect
import types
import typing
from typing import Any

from torch import nn

from shapelens.probe.worker import assume_names as names
from shapelens.probe.worker.cliconfig import attribute_reads, workspace_options
from shapelens.probe.worker.configs import file_config
from shapelens.probe.worker.envstandin import ENV_NAME, AssumedEnv, reads_spaces
from shapelens.probe.worker.initreads import BLOCK, block_class, compared_strings, sequence_length

EMPTY = inspect.Parameter.empty
_CALLABLE = collections.abc.Callable


@dataclasses.dataclass(frozen=True)
class Variant:
    widths: tuple[int, ...]  # taken in turn; one value: every width the same
    heads: int
    kv_heads: int
    count: int
    image: int
    patch: int
    window: int
    vocab: int
    classes: int
    ratio: int
    colours: int = 0  # an image's channels (`input_nc`); 0: a width like any other


# Every width is a multiple of 32 (A) or 16 (B), so head counts and groups divide them.
# The last two, every width 8 times as large, for a class whose own defaults assert a bound
# (`assert lora_rank < dim` with `lora_rank = 64`): tried only when the first two cannot build it.
# An image model's input channels are 3 in the first two: its forward subtracts an RGB mean
# (`x - self.mean` with `rgb_mean=(0.4488, 0.4371, 0.4040)`) or a block's `num_in_ch=3` joins them.
VARIANTS = (Variant((64, 96, 128, 160, 192, 224, 256, 288, 320, 352), 4, 2, 2, 64, 8, 4, 1000, 10, 4, 3),
            Variant((48,), 2, 1, 3, 32, 4, 2, 500, 7, 2, 3),
            Variant((512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 2560, 2816), 4, 2, 2, 64, 8, 4, 1000, 10, 4),
            Variant((384,), 2, 1, 3, 32, 4, 2, 500, 7, 2))
WIDE = ((2, 3), (3, 2))



class Assumed:
    """One class's assumed arguments, and what the probe shows for them."""

    def __init__(self, variant: Variant, seq: int) -> None:
        self.variant, self.seq = variant, seq
        self._next = 0
        self.shown: dict[str, str] = {}

    def width(self) -> int:
        widths = self.variant.widths
        value = widths[min(self._next, len(widths) - 1)]
        self._next += 1
        return value

    def record(self, name: str, value: Any) -> Any:
        if isinstance(value, nn.Module):
            self.shown[name] = f"{type(value).__name__}()"
        elif not isinstance(value, (AssumedConfig, _Fields)):
            self.shown[name] = repr(value)
        return value


class _Fields:
    """Marks a value whose fields were recorded one by one."""


class AssumedConfig(_Fields):
    """An unannotated `config` without a config class in the file: each attribute asked of it is
    assumed by its name; one no rule knows is missing, so `getattr(config, "x", default)` keeps
    its default. With `nones`, such an attribute is None instead: an option left unset
    (`config.model_type is not None` choosing between two ways to give the widths)."""

    def __init__(self, assumed: Assumed, prefix: str, nones: bool = False, known: dict | None = None,
                 node: ast.AST | None = None) -> None:
        object.__setattr__(self, "_sl_assumed", assumed)
        object.__setattr__(self, "_sl_prefix", prefix)
        object.__setattr__(self, "_sl_values", {k: v for k, v in (known or {}).items() if v is not None})
        object.__setattr__(self, "_sl_nones", nones)
        object.__setattr__(self, "_sl_node", node)  # the class: the strings it compares an attribute with

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        values = object.__getattribute__(self, "_sl_values")
        if name not in values:
            node = object.__getattribute__(self, "_sl_node")
            prefix = object.__getattribute__(self, "_sl_prefix")
            strings = compared_strings(node, name, prefix) if node is not None else []
            value = by_name(name, EMPTY, object.__getattribute__(self, "_sl_assumed"), strings)
            if value is EMPTY and object.__getattribute__(self, "_sl_nones"):
                value = None
            if value is EMPTY:
                raise AttributeError(name)
            values[name] = value
            assumed = object.__getattribute__(self, "_sl_assumed")
            assumed.record(f"{prefix}.{name}", value)
        return values[name]

    def get(self, name: str, default: Any = None) -> Any:  # a dict-like config
        try:
            return getattr(self, name)
        except AttributeError:
            return default

    def __repr__(self) -> str:
        return "AssumedConfig()"


def _annotation_kind(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return ("literal", typing.get_args(annotation))
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        return "sequence"
    if origin is typing.Union or origin is types.UnionType:  # `Optional[int]`, `int | None`
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) < len(typing.get_args(annotation)):
            return "optional"
        return _annotation_kind(args[0]) if args else None
    return annotation


def by_name(name: str, annotation: Any, assumed: Assumed, strings: set[str] | list[str],
            node: ast.AST | None = None) -> Any:
    """A plausible value for a parameter, from its name and annotation; EMPTY when no rule knows."""
    v = assumed.variant
    low = name.lower()
    kind = _annotation_kind(annotation)
    if isinstance(kind, tuple) and kind[0] == "literal" and kind[1]:
        return kind[1][0]
    if kind == "optional":
        return None
    if kind is bool or low.startswith(("use_", "is_", "has_", "with_", "enable", "add_", "no_")):
        return False
    if kind is str and not strings:
        return next((value for pattern, value in names.NAMED_STRINGS if pattern.search(low)), EMPTY)
    if kind is str or strings:
        return next(iter(strings), EMPTY)
    length = sequence_length(node, name) or (4 if kind == "sequence" else None)
    if length is not None and length <= 3 and (names.IMAGE.match(low) or "patch" in low or "window" in low
                                               or "kernel" in low or "stride" in low):
        single = by_name(name, int, assumed, [], None)
        return tuple([single] * length) if single is not EMPTY else EMPTY
    if low in names.SMALL:
        return names.SMALL[low]
    if ENV_NAME.match(low) and kind is EMPTY and reads_spaces(node):  # an RL agent's `env` (cleanrl's `QNetwork(env)`)
        return AssumedEnv(assumed.width(), v.classes, v.kv_heads + 2)
    if low.endswith("_resolutions") and not low.startswith(("num_", "n_")):  # ldm's `attn_resolutions` (sides), guided-diffusion's (downsample rates)
        return [16, 8, 4]
    if kind is _CALLABLE or typing.get_origin(kind) is _CALLABLE:  # `activation: Callable`
        if names.ACTIVATION.search(low):
            return nn.ReLU()
        return nn.Identity() if names.MODULE.match(low) else EMPTY
    if low.endswith(("_id", "_idx", "_index", "_ind")) or low in ("idx", "index", "layer_id", "i"):
        return 0  # `layer_id`: which block this is
    if names.KV_HEADS.search(low):
        return v.kv_heads
    if names.HEADS.search(low):
        return v.heads
    if names.SEQ.match(low):
        return assumed.seq
    if names.IMAGE.match(low):
        return v.image
    if "patch" in low and ("size" in low or low == "patch"):
        return v.patch
    if "window" in low:
        return v.window
    if low.startswith("num_patches") or low == "n_patches":
        return (v.image // v.patch) ** 2
    if names.VOCAB.search(low):
        return v.vocab
    if names.CLASSES.match(low):
        return v.classes
    if names.COUNT.search(low) and not (names.WIDTH.search(low) and not low.endswith(("layers", "blocks", "depth"))):
        return [v.count] * length if length else v.count
    if names.RATIO.search(low):  # `ch_mult: list[int]`: one per level, growing as UNets' do
        return [2 ** min(i, 2) for i in range(length)] if length else v.ratio
    if names.RATE.search(low) or kind is float:
        return 1e-5 if "eps" in low else (1.0 if any(s in low for s in ("scale", "temperature", "tau", "gamma"))
                                          else 0.0)
    if names.MODULE.match(low) and (annotation is EMPTY or (isinstance(annotation, type)
                                                        and issubclass(annotation, nn.Module))):
        return nn.Identity()
    if v.colours and names.COLOURS.match(low) and kind in (EMPTY, int):
        return v.colours
    if kind is int or (kind is EMPTY or kind == "sequence") and (names.WIDTH.search(low) and not names.NOT_WIDTH.search(low)):
        if length:
            return [assumed.width() for _ in range(length)]
        return assumed.width()
    if low.startswith(("num_", "n_")) and kind in (EMPTY, int):
        return v.count  # `num_residual_streams`: a count no other rule names
    return EMPTY


def placeholders(cls: type, ns: dict | None = None) -> set[str]:
    """Fields of a dataclass config whose default only says "set later": `vocab_size: int = -1`
    (llama), `block_size: int = None` (makemore: an int annotation, yet None)."""
    try:
        hints = typing.get_type_hints(cls, globalns=ns)
    except Exception:  # noqa: BLE001
        hints = {}
    return {f.name for f in dataclasses.fields(cls)
            if f.default == -1 or f.default is None and hints.get(f.name) in (int, float)}


def fill_dataclass(cls: type, assumed: Assumed, prefix: str, ns: dict) -> Any:
    """An instance of a dataclass config, each field without a default assumed by its name."""
    try:
        hints = typing.get_type_hints(cls, globalns=ns)
    except Exception:  # noqa: BLE001
        hints = {}
    kwargs = {}
    later = placeholders(cls, ns)
    for f in dataclasses.fields(cls):
        placeholder = f.name in later  # `vocab_size: int = -1  # defined later by tokenizer`
        if not f.init or not placeholder and (f.default is not dataclasses.MISSING
                                              or f.default_factory is not dataclasses.MISSING):
            continue
        value = by_name(f.name, hints.get(f.name, EMPTY), assumed, [])
        if value is EMPTY:
            return EMPTY
        kwargs[f.name] = assumed.record(f"{prefix}.{f.name}", value)
    try:
        return cls(**kwargs)
    except Exception:  # noqa: BLE001 — a __post_init__ that rejects the values
        return EMPTY


def assume_args(cls: type, missing: list[str], ns: dict, node: ast.ClassDef | None, variant: int,
                seq: int, nones: bool = False, root: str = "") -> tuple[dict[str, Any], dict[str, str]] | None:
    """kwargs for the parameters nothing gave, under assumption `variant` (0 or 1), and their
    texts for hovers; None when a parameter fits no rule. `nones`: a config's attributes no rule
    knows are None (AssumedConfig). `root`: the workspace, whose argparse options a config
    object takes its attributes from (cliconfig.py)."""
    assumed = Assumed(VARIANTS[variant], seq)
    try:
        params = init_params(cls)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(cls.__init__, globalns=ns)
    except Exception:  # noqa: BLE001
        hints = {}
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) if node else None
    kwargs: dict[str, Any] = {}
    for name in missing:
        p = params.get(name)
        if p is None:
            return None
        annotation = hints.get(name, p.annotation)
        if isinstance(annotation, str):
            annotation = ns.get(annotation, EMPTY)
        if p.default is None and _annotation_kind(annotation) == "optional":
            # Left None by default, yet asked for (a count a class asserts given, a value a branch
            # reads): the type it takes when given.
            annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), EMPTY)
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            value = fill_dataclass(annotation, assumed, name, ns)
        elif BLOCK.match(name.lower()) and (block := block_class(cls, ns, init, name, annotation)) is not None:
            value, assumed.shown[name] = block, block.__name__  # `ResNet(block, layers)`
        elif _own_module_class(annotation, ns) and not names.MODULE.match(name.lower()):
            value = _build_part(annotation, assumed, name, ns)  # `attn_layers: AttentionLayers`
        elif annotation is EMPTY and name.lower() in names.CONFIG_NAMES:
            value = _config(cls, name, ns, node, init, assumed, nones, root)
        else:
            value = by_name(name, annotation, assumed, compared_strings(node, name) if node else [], node or init)
            value = assumed.record(name, value) if value is not EMPTY else EMPTY
            if value is EMPTY and annotation is EMPTY and attribute_reads(init, name):
                # No rule knows the name, and the class only reads attributes of it (`configs.seq_len`,
                # `env.action_space`): a config object, whatever it is called.
                value = _config(cls, name, ns, node, init, assumed, nones, root)
        if value is EMPTY:
            return None
        kwargs[name] = value
    return kwargs, assumed.shown


def _config(cls: type, name: str, ns: dict, node: ast.ClassDef | None, init: ast.FunctionDef | None,
            assumed: Assumed, nones: bool, root: str) -> Any:
    """An unannotated config parameter: the file's one dataclass config when it has every field the
    constructor reads (makemore's `ModelConfig`, its `block_size: int = None` set later: its
    defaults kept, its placeholders assumed); else an AssumedConfig, with the options of the
    workspace's command-line parser that covers what the class reads, and every other attribute
    assumed by name."""
    config = file_config(ns, cls.__module__)
    read = attribute_reads(init, name)
    fits = isinstance(config, type) and dataclasses.is_dataclass(config) and read <= {f.name for f in dataclasses.fields(config)}
    value = fill_dataclass(config, assumed, name, ns) if fits else EMPTY
    if value is not EMPTY:
        return value
    options = workspace_options(root, attribute_reads(node, name))
    if options is None:
        return AssumedConfig(assumed, name, nones, None, node)
    assumed.shown[name] = f"the defaults of {options[1]}'s command-line options"
    # A sequence length stays the made-up one (`seq_len`: T), which the inputs made up have, and a
    # length cut from it (`seg_len`, `patch_len`: 96 of a 96-long input) is assumed with it, by name.
    known = {k: v for k, v in options[0].items() if not names.SEQ.match(k.lower()) and not names.CUT.search(k.lower())}
    return AssumedConfig(assumed, name, nones, known, node)


def init_params(cls: type) -> dict[str, inspect.Parameter]:
    """The constructor's parameters, self left out; a constructor that takes `**kwargs` (and
    hands them to its base: `class Encoder(AttentionLayers): def __init__(self, **kwargs)`) also
    takes its base's parameters. Raises TypeError/ValueError when the signature cannot be read."""
    params = dict(list(inspect.signature(cls.__init__).parameters.items())[1:])
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        base = next((b for b in cls.__mro__[1:] if isinstance(b, type) and "__init__" in vars(b)), None)
        if base is not None and base not in (nn.Module, object) and issubclass(base, nn.Module):
            try:
                inherited = init_params(base)
            except (TypeError, ValueError):
                inherited = {}
            for name, p in inherited.items():
                if name not in params and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    params[name] = p.replace(kind=p.KEYWORD_ONLY)
    return params


def unset_sizes(cls: type) -> list[str]:
    """Parameters defaulting to None that are named like a layer count (`depth=None`): a class
    that asserts them given is built with them assumed too."""
    try:
        params = init_params(cls).values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is None and p.kind is not p.VAR_KEYWORD and names.UNSET_COUNT.match(p.name)]


def _own_module_class(annotation: Any, ns: dict) -> bool:
    """A model class of the file itself (not torch's, not a library's)."""
    return (isinstance(annotation, type) and issubclass(annotation, nn.Module)
            and annotation.__module__ == ns.get("__name__"))


def _build_part(cls: type, assumed: Assumed, prefix: str, ns: dict) -> Any:
    """An instance of the file's model class a parameter is annotated with, its own required
    parameters (and unset counts) assumed by name."""
    try:
        params = init_params(cls)
    except (TypeError, ValueError):
        return EMPTY
    kwargs = {}
    for name in [n for n, p in params.items() if p.default is EMPTY
                 and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)] + unset_sizes(cls):
        value = by_name(name, params[name].annotation if not isinstance(params[name].annotation, str) else EMPTY,
                        assumed, [])
        if value is EMPTY:
            return EMPTY
        kwargs[name] = value
    try:
        instance = cls(**kwargs)
    except Exception:  # noqa: BLE001 — the part's own constructor rejects the values
        return EMPTY
    assumed.shown[prefix] = f"{cls.__name__}({shown_text({k: repr(v) for k, v in kwargs.items()})})"
    return instance


def shown_text(shown: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in shown.items())
