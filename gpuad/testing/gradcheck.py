"""gradcheck: analytic gradients from the tape against central finite differences, in float64.

The analytic side uses a random upstream gradient v (grad of sum(f(x) * v)), so a rule that
forgets a transpose cannot hide behind an all-ones gradient; every input that requires grad is
checked, and a mismatch names the input, the element and both numbers.
"""
import numpy

from .. import backend
from ..autograd import run_backward
from ..tensor import Tensor

_ELEMENTWISE_LIMIT = 100  # larger inputs are checked along random directions instead


class GradcheckError(AssertionError):
    pass


def _as_outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _weighted_sum(fn, inputs, weights):
    """sum_k <fn(*inputs)[k], weights[k]> as a float (grad mode stays on: fn may itself use
    grad)."""
    outs = _as_outputs(fn(*inputs))
    return sum(float(backend.asnumpy((o.array * w).sum())) for o, w in zip(outs, weights))


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check fn's gradients w.r.t. every input that requires grad; True, or GradcheckError."""
    inputs = tuple(inputs)
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != backend.float64:
            raise ValueError(f"gradcheck: input {i} is {x.dtype}; finite differences need float64 "
                             f"inputs (x.double())")
    rng = numpy.random.default_rng(seed)
    outs = _as_outputs(fn(*inputs))
    weights = [backend.to_device(rng.standard_normal(o.shape), o.device).astype(o.dtype)
               for o in outs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    differentiable = [(o, Tensor(w)) for o, w in zip(outs, weights) if o.requires_grad]
    if differentiable:
        analytic = run_backward([o for o, _ in differentiable], [w for _, w in differentiable],
                                retain_graph=False, create_graph=False,
                                inputs=[inputs[i] for i in checked], allow_unused=True)
    else:
        analytic = [None] * len(checked)
    for i, g in zip(checked, analytic):
        x = inputs[i]
        g = numpy.zeros(x.shape) if g is None else backend.asnumpy(g.array).astype(numpy.float64)
        if x.array.size <= _ELEMENTWISE_LIMIT:
            numeric = numpy.zeros(x.shape)
            for idx in numpy.ndindex(*x.shape):
                numeric[idx] = _central_difference(fn, inputs, weights, x, idx, eps)
            bad = ~numpy.isclose(g, numeric, rtol=rtol, atol=atol)
            if bad.any():
                idx = tuple(int(k) for k in numpy.argwhere(bad)[0])
                return _fail(raise_exception, f"gradcheck: input {i} (shape {x.shape}), element "
                             f"{idx}: analytic {g[idx]:.8g} vs numeric {numeric[idx]:.8g} "
                             f"({int(bad.sum())} of {bad.size} elements disagree)")
        else:
            for _ in range(3):
                direction = rng.standard_normal(x.shape)
                numeric = _central_difference(fn, inputs, weights, x, None, eps, direction)
                analytic_dot = float((g * direction).sum())
                tolerance = atol * x.array.size ** 0.5
                if not numpy.isclose(analytic_dot, numeric, rtol=rtol, atol=tolerance):
                    return _fail(raise_exception, f"gradcheck: input {i} (shape {x.shape}), "
                                 f"along a random direction: analytic {analytic_dot:.8g} vs "
                                 f"numeric {numeric:.8g}")
    return True


def _central_difference(fn, inputs, weights, x, idx, eps, direction=None):
    original = x.array
    step = eps if direction is None else backend.to_device(direction * eps, x.device)
    try:
        values = []
        for sign in (1, -1):
            shifted = original.copy()
            if direction is None:
                shifted[idx] += sign * step
            else:
                shifted += sign * step
            x.array = shifted
            values.append(_weighted_sum(fn, inputs, weights))
    finally:
        x.array = original
    return (values[0] - values[1]) / (2 * eps)


def _fail(raise_exception, message):
    if raise_exception:
        raise GradcheckError(message)
    return False
