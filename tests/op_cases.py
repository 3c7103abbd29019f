"""One table drives the op suite: a row per public op with a numpy reference (float64), the input
shapes to try (broadcasting pairs for binary ops), an input domain and keyword variants.

test_ops.py runs forward-vs-numpy, float64 gradcheck, second-order gradcheck and dtype checks over
every row, on every backend; test_every_registered_op_has_a_case keeps the table complete.
"""
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import gpuad

BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 3), (2, 1)),
                 ((2, 3), ()), ((), (2, 3)), ((4, 1, 3), (2, 1)), ((1,), (2, 3))]
UNARY_SHAPES = [((2, 3),), ((),), ((2, 1, 4),)]
REDUCE_KWARGS = [{}, {"dim": 0}, {"dim": -1}, {"dim": (0, 2)}, {"dim": 1, "keepdim": True},
                 {"axis": 1, "keepdims": True}]  # numpy spellings must work too


def REAL(rng, shape):
    return rng.uniform(-2, 2, shape)


def POSITIVE(rng, shape):
    return rng.uniform(0.5, 2, shape)


def AWAY_FROM_ZERO(rng, shape):  # keeps kinks (relu, abs, max ties) out of finite differences
    return rng.uniform(0.3, 2, shape) * rng.choice([-1, 1], shape)


def UNIT(rng, shape):
    return rng.uniform(-0.9, 0.9, shape)


def DISTINCT(rng, shape):  # no ties, no near-ties: max/min/sort-like ops
    n = int(np.prod(shape, dtype=int))
    return rng.permutation(n).reshape(shape) * 0.37 - n * 0.15 + rng.uniform(0, 0.3)


@dataclass
class Case:
    name: str                       # the registry name, and the test id
    fn: Callable                    # the gpuad function
    ref: Optional[Callable]         # the same formula in numpy (float64), or None
    shapes: list                    # list of tuples of input shapes
    kwargs: list = field(default_factory=lambda: [{}])
    domain: Callable = REAL         # sampler for float inputs
    make: Optional[Callable] = None  # (rng, shapes) -> list of numpy inputs, when floats won't do
    diff: Optional[tuple] = None    # indices of differentiable inputs (default: all float inputs)
    grad: bool = True               # False for ops without a gradient (comparisons, argmax, ...)
    second_order: bool = True       # gradcheck of the gradient too (create_graph)

    def sample(self, shapes, seed=0):
        rng = np.random.default_rng(seed)
        if self.make is not None:
            return self.make(rng, shapes)
        return [self.domain(rng, s) for s in shapes]

    def differentiable(self, arrays):
        if not self.grad:
            return ()
        if self.diff is not None:
            return self.diff
        return tuple(i for i, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f")


def _where_inputs(rng, shapes):
    cond = rng.random(shapes[0]) > 0.5
    return [cond] + [REAL(rng, s) for s in shapes[1:]]


def _gelu_tanh_ref(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


_erf = np.vectorize(math.erf, otypes=[float])


def _softplus_ref(x, beta=1.0, threshold=20.0):
    return np.where(x * beta > threshold, x, np.log1p(np.exp(beta * x)) / beta)


CASES = [
    # ---- elementwise ----
    Case("add", gpuad.add, lambda a, b, alpha=1: a + alpha * b, BINARY_SHAPES,
         kwargs=[{}, {"alpha": 2.5}]),
    Case("sub", gpuad.sub, lambda a, b, alpha=1: a - alpha * b, BINARY_SHAPES,
         kwargs=[{}, {"alpha": -0.5}]),
    Case("mul", gpuad.mul, np.multiply, BINARY_SHAPES),
    Case("div", gpuad.div, np.divide, BINARY_SHAPES, domain=AWAY_FROM_ZERO),
    Case("neg", gpuad.neg, np.negative, UNARY_SHAPES),
    Case("pow", gpuad.pow, np.power, BINARY_SHAPES, domain=POSITIVE),
    Case("exp", gpuad.exp, np.exp, UNARY_SHAPES),
    Case("log", gpuad.log, np.log, UNARY_SHAPES, domain=POSITIVE),
    Case("log1p", gpuad.log1p, np.log1p, UNARY_SHAPES, domain=POSITIVE),
    Case("expm1", gpuad.expm1, np.expm1, UNARY_SHAPES),
    Case("sqrt", gpuad.sqrt, np.sqrt, UNARY_SHAPES, domain=POSITIVE),
    Case("rsqrt", gpuad.rsqrt, lambda x: 1 / np.sqrt(x), UNARY_SHAPES, domain=POSITIVE),
    Case("square", gpuad.square, np.square, UNARY_SHAPES),
    Case("reciprocal", gpuad.reciprocal, np.reciprocal, UNARY_SHAPES, domain=AWAY_FROM_ZERO),
    Case("abs", gpuad.abs, np.abs, UNARY_SHAPES, domain=AWAY_FROM_ZERO),
    Case("sign", gpuad.sign, np.sign, UNARY_SHAPES, domain=AWAY_FROM_ZERO),  # zero gradient
    Case("sin", gpuad.sin, np.sin, UNARY_SHAPES),
    Case("cos", gpuad.cos, np.cos, UNARY_SHAPES),
    Case("tan", gpuad.tan, np.tan, UNARY_SHAPES, domain=UNIT),
    Case("tanh", gpuad.tanh, np.tanh, UNARY_SHAPES),
    Case("sigmoid", gpuad.sigmoid, lambda x: 1 / (1 + np.exp(-x)), UNARY_SHAPES),
    Case("relu", gpuad.relu, lambda x: np.maximum(x, 0), UNARY_SHAPES, domain=AWAY_FROM_ZERO),
    Case("leaky_relu", gpuad.leaky_relu,
         lambda x, negative_slope=0.01: np.where(x > 0, x, x * negative_slope),
         UNARY_SHAPES, kwargs=[{}, {"negative_slope": 0.2}], domain=AWAY_FROM_ZERO),
    Case("_leaky_relu", gpuad.ops._leaky_relu,  # the primitive behind leaky_relu
         lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
         UNARY_SHAPES, kwargs=[{"negative_slope": 0.01}, {"negative_slope": 0.2}],
         domain=AWAY_FROM_ZERO),
    Case("_elu", gpuad.ops._elu,  # the elu family's primitive
         lambda x, alpha, scale, input_scale: np.where(x > 0, scale * x,
                                                       scale * alpha * np.expm1(input_scale * x)),
         UNARY_SHAPES, kwargs=[{"alpha": 1.0, "scale": 1.0, "input_scale": 1.0},
                               {"alpha": 0.5, "scale": 1.5, "input_scale": 2.0}],
         domain=AWAY_FROM_ZERO),
    Case("elu", gpuad.elu, lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(x)),
         UNARY_SHAPES, kwargs=[{}, {"alpha": 0.5}], domain=AWAY_FROM_ZERO),
    Case("gelu", gpuad.gelu,
         lambda x, approximate="none": _gelu_tanh_ref(x) if approximate == "tanh"
         else 0.5 * x * (1 + _erf(x / math.sqrt(2))),
         UNARY_SHAPES, kwargs=[{}, {"approximate": "tanh"}]),
    Case("silu", gpuad.silu, lambda x: x / (1 + np.exp(-x)), UNARY_SHAPES),
    Case("softplus", gpuad.softplus, _softplus_ref, UNARY_SHAPES,
         kwargs=[{}, {"beta": 2.0, "threshold": 1.0}], domain=AWAY_FROM_ZERO),
    Case("erf", gpuad.erf, _erf, UNARY_SHAPES + [((5, 7),)],
         make=lambda rng, shapes: [rng.uniform(-5, 5, s) for s in shapes]),
    Case("clamp", gpuad.clamp, lambda x, min=None, max=None: np.clip(x, min, max), UNARY_SHAPES,
         kwargs=[{"min": -0.5}, {"max": 0.5}, {"min": -0.5, "max": 0.5}], domain=AWAY_FROM_ZERO,
         make=lambda rng, shapes: [np.where(np.abs(np.abs(a) - 0.5) < 0.05, a + 0.2, a)
                                   for a in (REAL(rng, s) for s in shapes)]),
    Case("clip", gpuad.clip, lambda x, min=None, max=None: np.clip(x, min, max), UNARY_SHAPES,
         kwargs=[{"min": -0.5, "max": 0.7}],
         make=lambda rng, shapes: [np.where(np.abs(a + 0.5) < 0.05, a + 0.2, a)
                                   for a in (REAL(rng, s) for s in shapes)]),
    Case("maximum", gpuad.maximum, np.maximum, BINARY_SHAPES, domain=DISTINCT),
    Case("minimum", gpuad.minimum, np.minimum, BINARY_SHAPES, domain=DISTINCT),
    Case("where", gpuad.where, np.where, [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), (2, 1)),
                                          ((2, 1), (), (1, 3))], make=_where_inputs),
    Case("masked_fill", lambda x, m, value=0.0: gpuad.masked_fill(x, m, value),
         lambda x, m, value=0.0: np.where(m, value, x), [((2, 3), (2, 3)), ((2, 3), (3,))],
         kwargs=[{}, {"value": -1.5}],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), rng.random(shapes[1]) > 0.5]),
    Case("eq", gpuad.eq, np.equal, BINARY_SHAPES, grad=False,
         make=lambda rng, shapes: [rng.integers(0, 2, s).astype(float) for s in shapes]),
    Case("ne", gpuad.ne, np.not_equal, BINARY_SHAPES, grad=False,
         make=lambda rng, shapes: [rng.integers(0, 2, s).astype(float) for s in shapes]),
    Case("lt", gpuad.lt, np.less, BINARY_SHAPES, grad=False),
    Case("le", gpuad.le, np.less_equal, BINARY_SHAPES, grad=False),
    Case("gt", gpuad.gt, np.greater, BINARY_SHAPES, grad=False),
    Case("ge", gpuad.ge, np.greater_equal, BINARY_SHAPES, grad=False),
    Case("logical_and", gpuad.logical_and, np.logical_and, BINARY_SHAPES[:4], grad=False,
         make=lambda rng, shapes: [rng.random(s) > 0.5 for s in shapes]),
    Case("logical_or", gpuad.logical_or, np.logical_or, BINARY_SHAPES[:4], grad=False,
         make=lambda rng, shapes: [rng.random(s) > 0.5 for s in shapes]),
    Case("logical_not", gpuad.logical_not, np.logical_not, UNARY_SHAPES, grad=False,
         make=lambda rng, shapes: [rng.random(s) > 0.5 for s in shapes]),
    Case("isnan", gpuad.isnan, np.isnan, [((4,),)], grad=False,
         make=lambda rng, shapes: [np.array([1.0, np.nan, np.inf, -2.0])]),
    Case("isinf", gpuad.isinf, np.isinf, [((4,),)], grad=False,
         make=lambda rng, shapes: [np.array([1.0, np.nan, np.inf, -np.inf])]),
    Case("isfinite", gpuad.isfinite, np.isfinite, [((4,),)], grad=False,
         make=lambda rng, shapes: [np.array([1.0, np.nan, np.inf, -2.0])]),
    Case("cast", lambda x, dtype: gpuad.cast(x, dtype=dtype), lambda x, dtype: x.astype(dtype),
         UNARY_SHAPES, kwargs=[{"dtype": np.float64}]),  # float32 casts: test_tensor.py
    Case("to_device", lambda x: gpuad.to_device(x, device=x.device), lambda x: x, UNARY_SHAPES),
    Case("clone", gpuad.clone, np.copy, UNARY_SHAPES),
]

from conv_cases import CONV_CASES  # noqa: E402
from linalg_cases import LINALG_CASES  # noqa: E402
from nn_cases import NN_CASES  # noqa: E402
from pointwise_cases import POINTWISE_CASES  # noqa: E402
from reduce_cases import REDUCE_CASES  # noqa: E402
from shape_cases import SHAPE_CASES  # noqa: E402

CASES += REDUCE_CASES + SHAPE_CASES + LINALG_CASES + CONV_CASES + NN_CASES
CASES += POINTWISE_CASES


def expand(cases):
    """(case, shapes, kwargs) triples with readable ids: 'mul-(2, 3)x(3,)-{}'."""
    out = []
    for case in cases:
        for shapes in case.shapes:
            for kwargs in case.kwargs:
                shape_id = "x".join(str(tuple(s)) for s in shapes)
                kw_id = ",".join(f"{k}={v}" for k, v in kwargs.items())
                out.append((case, shapes, kwargs, f"{case.name}-{shape_id}-{kw_id}"))
    return out
