"""The op suite, driven by op_cases.CASES: forward against numpy, float64 gradcheck (first and
second order), float32 staying float32, on every backend."""
import numpy as np
import pytest
from op_cases import CASES, expand

import gpuad
from gpuad import backend

PARAMS = expand(CASES)
GRAD_PARAMS = [p for p in PARAMS if p[0].grad]
_NUMPY_NAMES = {"dim": "axis", "keepdim": "keepdims"}


def _tensors(case, arrays, device, dtype=np.float64):
    diff = case.differentiable(arrays)
    out = []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = a.astype(dtype)
        out.append(gpuad.tensor(a, device=device, requires_grad=i in diff))
    return out


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.mark.parametrize("case,shapes,kwargs", [p[:3] for p in PARAMS], ids=[p[3] for p in PARAMS])
def test_forward(case, shapes, kwargs, device):
    if case.ref is None:
        pytest.skip(f"{case.name} has no numpy reference; its forward is tested elsewhere")
    arrays = case.sample(shapes)
    outs = _outputs(case.fn(*_tensors(case, arrays, device), **kwargs))
    refs = _outputs(case.ref(*arrays, **{_NUMPY_NAMES.get(k, k): v for k, v in kwargs.items()}))
    assert len(outs) == len(refs)
    for out, ref in zip(outs, refs):
        assert out.device == gpuad.device(device)
        ref = np.asarray(ref)
        got = backend.asnumpy(out.array)
        assert got.shape == ref.shape, f"{case.name}: shape {got.shape}, numpy gives {ref.shape}"
        if ref.dtype.kind == "b":
            assert got.dtype == np.bool_ and (got == ref).all()
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case,shapes,kwargs", [p[:3] for p in GRAD_PARAMS],
                         ids=[p[3] for p in GRAD_PARAMS])
def test_gradcheck(case, shapes, kwargs, device):
    inputs = _tensors(case, case.sample(shapes), device)
    assert gpuad.gradcheck(lambda *xs: case.fn(*xs, **kwargs), inputs)


SECOND = [p for p in GRAD_PARAMS if p[0].second_order]


@pytest.mark.parametrize("case,shapes,kwargs", [p[:3] for p in SECOND], ids=[p[3] for p in SECOND])
def test_second_order_gradcheck(case, shapes, kwargs):
    """Rules are gpuad ops, so gradients are differentiable again (create_graph=True)."""
    inputs = _tensors(case, case.sample(shapes), "cpu")
    diff = [x for x in inputs if x.requires_grad]
    rng = np.random.default_rng(1)

    def first_order(*xs):
        outs = _outputs(case.fn(*xs, **kwargs))
        total = sum((o * gpuad.tensor(rng.standard_normal(o.shape))).sum()
                    for o in outs if o.requires_grad)
        grads = gpuad.grad(total, [x for x in xs if x.requires_grad], create_graph=True,
                           allow_unused=True)
        return tuple(g if g is not None else gpuad.zeros_like(x)
                     for g, x in zip(grads, [x for x in xs if x.requires_grad]))

    rng_state = rng.bit_generator.state

    def reseeded(*xs):  # the same v on every call, so finite differences see one function
        rng.bit_generator.state = rng_state
        return first_order(*xs)
    assert diff
    assert gpuad.gradcheck(reseeded, inputs, atol=1e-4)


@pytest.mark.parametrize("case,shapes,kwargs", [p[:3] for p in GRAD_PARAMS],
                         ids=[p[3] for p in GRAD_PARAMS])
def test_float32_stays_float32(case, shapes, kwargs):
    """No float64 creeps into float32 work: outputs and gradients keep the inputs' dtype."""
    if kwargs.get("dtype") is not None:
        pytest.skip("casts change the dtype on purpose")
    inputs = _tensors(case, case.sample(shapes), "cpu", dtype=np.float32)
    outs = [o for o in _outputs(case.fn(*inputs, **kwargs)) if o.dtype.kind == "f"]
    assert all(o.dtype == gpuad.float32 for o in outs), [o.dtype for o in outs]
    total = sum(o.sum() for o in outs if o.requires_grad)
    total.backward()
    for x in inputs:
        if x.requires_grad and x.grad is not None:
            assert x.grad.dtype == gpuad.float32


def test_every_registered_op_has_a_case():
    missing = set(gpuad.ops.REGISTRY) - {c.name for c in CASES}
    assert not missing, f"add rows to tests/op_cases.py for {sorted(missing)}"


def table_tests(cases):
    """The four table checks above, parametrized over another module's own rows (layers that are
    composites, not registered ops): in that module,
    test_forward, test_gradcheck, test_second_order_gradcheck, test_float32_stays_float32 = \\
        table_tests(CASES)"""
    params = expand(cases)
    rows = pytest.mark.parametrize("case,shapes,kwargs", [p[:3] for p in params],
                                   ids=[p[3] for p in params])

    @rows
    def forward(case, shapes, kwargs, device):
        test_forward(case, shapes, kwargs, device)

    @rows
    def gradcheck(case, shapes, kwargs, device):
        test_gradcheck(case, shapes, kwargs, device)

    @rows
    def second_order(case, shapes, kwargs):
        test_second_order_gradcheck(case, shapes, kwargs)

    @rows
    def float32(case, shapes, kwargs):
        test_float32_stays_float32(case, shapes, kwargs)
    return forward, gradcheck, second_order, float32
