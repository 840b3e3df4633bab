"""Which torch names the probe may call or hold at module level: an allow-list of the APIs that
make and shape tensors and modules, decided on the resolved qualified name.

A deny-list always misses something (`torch.jit.load`, `torch.ops.load_library`,
`torch.utils.collect_env.run` each run native code or a shell), so a torch name is allowed only
when it lies in a namespace of shape-relevant APIs (tensor constructors and ops, `torch.nn` and
its functional and init helpers, linalg/fft/special, distributions, dtypes, `torch.Size`, ...)
and no part of it names a loader, a saver or a way out of the process.
"""

from __future__ import annotations

import re

# Namespaces whose every public name builds or transforms tensors/modules (canonical or public).
ALLOWED_PREFIXES = (
    "torch.nn.", "torch.linalg.", "torch.fft.", "torch.special.", "torch.distributions.",
    "torch.functional.", "torch.types.", "torch.nested.", "torch.masked.",
    "torch._C._VariableFunctions.", "torch._C._nn.", "torch._C._linalg.", "torch._C._fft.",
    "torch._C._special.", "torch._C.TensorBase.", "torch._C._TensorBase.", "torch._tensor.Tensor.",
    "torch.Tensor.", "torch.autograd.grad_mode.", "torch.autograd.function.", "torch.utils.checkpoint.",
    "torch.amp.autocast_mode.", "torch.random.manual_seed", "torch.random.initial_seed",
)
# Single names outside those namespaces that shape code uses.
ALLOWED_NAMES = frozenset({
    "torch.autograd.Function", "torch.autograd.grad", "torch.autocast", "torch.cuda.is_available",
    "torch.cuda.device_count", "torch.backends.mps.is_available", "torch.jit.is_scripting",
    "torch.jit.is_tracing", "torch.compiler.is_compiling", "torch.nn",
})
# A name with one of these parts loads or writes files, loads native code, compiles, spawns, or
# reaches the network, whatever namespace it is in.
DENIED_PARTS = frozenset({
    "load", "save", "from_file", "load_library", "load_state_dict", "ops", "classes", "library",
    "hub", "onnx", "package", "serialization", "_dynamo", "_inductor", "compile", "export", "jit",
    "distributed", "multiprocessing", "cpp_extension", "collect_env", "tensorboard", "profiler",
    "testing", "storage", "untyped_storage", "share_memory_", "_share_filename_cpu_", "set_default_device",
    "register_hook", "apply", "apply_", "map_", "map2_", "numpy", "tofile", "to_file", "dump", "write",
    # top-level torch functions that compile, fork, parse TorchScript IR or run Python callables
    "fork", "wait", "cond", "while_loop", "import_ir_module", "import_ir_module_from_buffer", "parse_ir",
    "get_file_path", "prepare_multiprocessing_environment", "get_device_module", "set_default_tensor_type",
})
# `torch.<name>` classes are mostly TorchScript's internals (file readers, compilation units): only these.
TOP_LEVEL_CLASSES = frozenset({
    "Size", "device", "dtype", "Tensor", "Generator", "finfo", "iinfo", "layout", "memory_format", "autocast",
    "no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "SymInt", "SymFloat", "SymBool",
})
_TOP_LEVEL = re.compile(r"torch\.[A-Za-z][A-Za-z0-9_]*")
_TYPED_TENSOR = re.compile(r"torch\.[A-Z][A-Za-z0-9]*Tensor")


def _denied(name: str) -> bool:
    parts = name.split(".")
    if any(p in DENIED_PARTS or p.endswith("Storage") for p in parts[1:]):
        return name not in ALLOWED_NAMES
    return False


def _listed(name: str, kind: str | None) -> bool:
    if name in ALLOWED_NAMES or any(name.startswith(p) for p in ALLOWED_PREFIXES):
        return True
    if _TOP_LEVEL.fullmatch(name) is None:
        return False
    short = name[len("torch."):]
    if kind == "class" or short[0].isupper():
        return short in TOP_LEVEL_CLASSES or _TYPED_TENSOR.fullmatch(name) is not None
    return kind != "module"


def torch_allowed(*names: str | None, kind: str | None = None) -> bool:
    """Whether a torch callee or value may be used: no spelling of it is denied and one (the
    public path as written, or the canonical name it resolves to) is on the allow-list. `kind`
    is what the name is (module, class, function, value), when known."""
    spelled = [n for n in names if n]
    if not spelled or any(_denied(n) for n in spelled):
        return False
    return any(_listed(n, kind) for n in spelled)
