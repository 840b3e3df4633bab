"""Config classes of a model file: which classes are configs, and the one an unannotated
`config` parameter means (construct.py builds it from its defaults; assume.py fills it when its
defaults are placeholders)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import torch
from torch import nn


def is_config(obj: Any) -> bool:
    return isinstance(obj, type) and not issubclass(obj, (nn.Module, torch.Tensor, BaseException)) and (
        dataclasses.is_dataclass(obj) or issubclass(obj, tuple) and hasattr(obj, "_fields")
        or obj.__module__ not in ("builtins",) and all(not callable(v) for k, v in vars(obj).items()
                                                      if not k.startswith("_")))


def file_config(ns: dict, module_name: str) -> Any:
    """The config class an unannotated `config` means: the one class named like a config
    (`BertConfig`, imported from the package's configuration module next to the model file),
    else the file's only config class (a dataclass of outputs is not named like one)."""
    named = [v for v in ns.values() if isinstance(v, type) and v.__name__.endswith(("Config", "Configuration"))
             and (is_config(v) or dataclasses.is_dataclass(v)) and not issubclass(v, (nn.Module, torch.Tensor))]
    if len(named) > 1:
        named = [v for v in named if getattr(v, "__module__", "") == module_name]
    if len(named) == 1:
        return named[0]
    configs = [v for v in ns.values() if is_config(v) and getattr(v, "__module__", "") == module_name]
    return configs[0] if len(configs) == 1 else inspect.Parameter.empty
