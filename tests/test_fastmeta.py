"""The meta fast paths agree with torch's own meta kernels: same shape, same dtype, and every
case torch rejects is left to torch (the fast path never decides an error)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shapelens.probe.worker.fastmeta import fast


def meta(*shape, dtype=torch.float32):
    return torch.empty(shape, dtype=dtype, device="meta")


CASES = [
    (torch.add, (meta(2, 3, 4), meta(4)), {}),
    (torch.Tensor.__add__, (meta(2, 1, 4), meta(3, 1)), {}),
    (torch.Tensor.__mul__, (meta(2, 3), 2.5), {}),
    (torch.Tensor.__radd__, (meta(5), 1), {}),
    (torch.mul, (meta(2, 3, dtype=torch.long), meta(2, 3)), {}),
    (torch.Tensor.__add__, (meta(2, 3, dtype=torch.half), meta(3)), {}),
    (torch.Tensor.__truediv__, (meta(2, 3), meta(2, 3)), {}),
    (torch.Tensor.__truediv__, (meta(2, 3, dtype=torch.long), 2), {}),
    (F.gelu, (meta(2, 7),), {}),
    (F.gelu, (meta(2, 7, 3).transpose(0, 2),), {}),  # strides follow the input
    (torch.Tensor.__add__, (meta(4, 6).t(), meta(6, 4).t()), {}),
    (F.relu, (meta(2, 1, 4).expand(2, 5, 4),), {}),  # overlapping: contiguous result
    (F.relu, (meta(2, 7),), {}),
    (F.dropout, (meta(2, 7),), {"p": 0.1, "training": True}),
    (torch.tanh, (meta(4),), {}),
    (F.linear, (meta(17, 13, 768), meta(2304, 768), meta(2304)), {}),
    (F.linear, (meta(4, 8), meta(3, 8)), {}),
    (F.linear, (meta(4, 8), meta(8)), {}),
    (F.linear, (meta(4, 8), meta(3, 9)), {}),  # mismatch: torch decides
    (F.layer_norm, (meta(2, 5, 8), (8,), meta(8), meta(8)), {}),
    (F.layer_norm, (meta(2, 5, 8), (7,)), {}),  # mismatch: torch decides
    (F.softmax, (meta(2, 5),), {"dim": -1}),
    (F.log_softmax, (meta(2, 5),), {"dim": 3}),  # bad dim: torch decides
    (F.scaled_dot_product_attention, (meta(2, 4, 13, 16), meta(2, 4, 9, 16), meta(2, 4, 9, 32)), {"is_causal": False}),
    (F.scaled_dot_product_attention, (meta(2, 4, 13, 16), meta(2, 4, 9, 8), meta(2, 4, 9, 32)), {}),
    (torch.Tensor.normal_, (meta(10, 8),), {}),
    (torch.Tensor.normal_, (meta(10, 8), 0.0, 0.02), {}),
    (torch.Tensor.normal_, (meta(10, 8), 0.0, -1.0), {}),  # negative std: torch decides
    (torch.nn.init.normal_, (meta(10, 8),), {"std": 0.02}),
    (torch.randint, (0, 10, (2, 3)), {"device": "meta"}),
    (torch.randint, (5, (4,)), {"device": "meta", "dtype": torch.int32}),
    (torch.randint, (5, 2, (4,)), {"device": "meta"}),  # low >= high: torch decides
    (torch.arange, (7,), {"device": "meta"}),
    (torch.arange, (0, 10, 3), {"device": "meta", "dtype": torch.long}),
    (torch.arange, (10, 0, -3), {"device": "meta"}),
    (torch.arange, (3, 3), {"device": "meta", "dtype": torch.float32}),
    (torch.arange, (0, 5, 0), {"device": "meta"}),  # zero step: torch decides
    (F.embedding, (meta(2, 7, dtype=torch.long), meta(100, 16)), {}),
    (F.embedding, (meta(2, 7, dtype=torch.int32), meta(100, 16)), {"padding_idx": 0}),
    (F.embedding, (meta(2, 7), meta(100, 16)), {}),  # float indices: torch decides
    (torch.randn, ((2, 3),), {"device": "meta"}),
    (torch.randn, (2, 3), {"device": "meta", "dtype": torch.half}),
    (torch.randn, (torch.Size([4, 0]),), {"device": "meta"}),
    (torch.rand, ([5],), {"device": "meta", "dtype": torch.float64}),
    (torch.randn, (2, 3), {"device": "meta", "dtype": torch.long}),  # integer dtype: torch decides
    (torch.randn, (2, -1), {"device": "meta"}),  # negative size: torch decides
]


@pytest.mark.parametrize("func, args, kwargs", CASES)
def test_fast_path_matches_torch_or_defers(func, args, kwargs):
    try:
        expected = func(*args, **kwargs)
        error = None
    except Exception as exc:  # noqa: BLE001
        expected, error = None, exc
    got = fast(func, args, kwargs)
    if error is not None:
        assert got is NotImplemented, f"torch rejects this ({error}); the fast path must defer"
        return
    if got is NotImplemented:
        return  # deferring is always allowed
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.dtype == expected.dtype
    assert got.stride() == expected.stride()  # a later .view() succeeds or fails as in torch
    assert got.device.type == "meta"


def test_the_common_ops_are_actually_fast_pathed():
    assert fast(F.linear, (meta(4, 8), meta(3, 8), meta(3)), {}) is not NotImplemented
    assert fast(F.layer_norm, (meta(2, 5, 8), (8,)), {}) is not NotImplemented
    assert fast(torch.Tensor.__add__, (meta(2, 3), meta(2, 3)), {}) is not NotImplemented
    assert fast(F.scaled_dot_product_attention, (meta(1, 2, 3, 4),) * 3, {}) is not NotImplemented
    # every probe's float inputs: torch's kernel imports sympy (a third of a second cold)
    assert fast(torch.randn, ((1, 512),), {}) is not NotImplemented


def test_meta_normal_init_is_fast_pathed():
    """Embedding's init on meta reached torch._dynamo (seconds in a cold probe); the fast path
    answers it with the tensor itself, as the in-place op does."""
    x = meta(10, 8)
    assert fast(torch.Tensor.normal_, (x, 0.0, 0.02), {}) is x
    weight = torch.nn.Parameter(meta(10, 8))
    assert fast(torch.Tensor.normal_, (weight, 0.0, 1.0), {"generator": None}) is weight
    assert fast(torch.nn.init.normal_, (), {"tensor": weight}) is weight  # how nn.init dispatches it
