"""PyTorch as the oracle for NaN, +-Inf, empty dims and single-element reductions.

Every row of the op tables (elementwise, pointwise, reduce, shape, linalg, nn) runs in gpuad and
in torch on the same inputs with NaN or infinities planted in one float input at a time, and on
empty and all-ones shapes where the row has one input: forward values (NaN where torch gives NaN,
the same infinities), result dtypes and gradients (a random finite upstream gradient, and one
holding a NaN) must agree, where torch raises gpuad must raise too, and no numpy warning may
escape an op. The rows' own functions run on both sides: `gpuad`, `gpuad.linalg` and
`gpuad.nn.functional` in a row are looked up in torch by name (TORCH_NAMES for the names that
differ). SKIPS lists, with reasons, where gpuad does not follow torch. Skipped without torch.
"""
import contextlib
import math
import types
import warnings

import numpy as np
import pytest
from op_cases import (
    CASES,
    CONV_CASES,
    LINALG_CASES,
    NN_CASES,
    POINTWISE_CASES,
    REDUCE_CASES,
    SHAPE_CASES,
)

import gpuad
from gpuad import backend

# every table but the convolutions' (their layers are another matter: padding, pooling windows)
_TABLES = REDUCE_CASES + SHAPE_CASES + LINALG_CASES + POINTWISE_CASES + NN_CASES
_OTHERS = {id(c) for c in _TABLES + CONV_CASES}
TABLES = [c for c in CASES if id(c) not in _OTHERS] + _TABLES

# gpuad name -> torch, where torch spells it differently (or only as a method)
TORCH_NAMES = {
    "cast": lambda x, dtype: x.to(dtype),
    "to_device": lambda x, device: x.to(device),
    "expand": lambda x, shape: x.expand(shape),
    "getitem": lambda x, index: x[index],
    "repeat": lambda x, *sizes: x.repeat(*sizes),
    "sum_to": lambda x, shape: x.sum_to_size(shape),
}

# Where gpuad does not follow torch, and why: (op names, the input patterns concerned, what is still
# checked, the reason). Patterns: "nan" (one NaN), "inf" (one +inf and one -inf), "-inf" (every
# entry -inf: all tied), "shape" (the empty and all-ones shapes). Checked instead: "values" (the
# forward values only: no indices, no gradients), "finite upstream" (all but the gradients from a
# NaN upstream gradient), "nonfinite" (gpuad raises, or some output holds a NaN or an Inf: the
# non-finite input is not turned into clean numbers) or "skip" (nothing).
LAPACK = ("inverse", "linalg_solve", "det", "slogdet", "logdet", "cholesky", "qr", "linalg_qr",
          "linalg_svd", "linalg_svdvals", "linalg_eigh", "linalg_eigvalsh", "linalg_pinv",
          "pinverse", "linalg_lstsq", "linalg_cond")
ANY = {"nan", "inf", "-inf"}
INFS = {"inf", "-inf"}


def _negative_step(kwargs, n):
    index = kwargs.get("index")
    return any(isinstance(i, slice) and (i.step or 1) < 0
               for i in (index if isinstance(index, tuple) else ()))


# (op names, patterns, what is still checked, reason, which rows: (kwargs, number of inputs) ->
# bool, or None for all)
SKIPS = [
    (LAPACK, ANY, "nonfinite",
     "a factorization of a non-finite matrix: where NaN and Inf land is the LAPACK driver's "
     "(torch's raises 'failed to converge' for svd and 'not positive-definite' for cholesky, gives "
     "a finite R[0, 0] in qr and NaN everywhere in inv; numpy's spreads them differently)", None),
    (("linalg_matrix_norm", "linalg_norm"), ANY, "nonfinite",
     "ord 2, -2 and 'nuc' are singular values: the LAPACK case above",
     lambda kw, n: kw.get("ord") in (2, -2, "nuc")),
    (("var_mean", "std_mean"), INFS, "nonfinite",
     "torch's mean output comes from its Welford pass, which gives NaN or +-Inf for a slice "
     "holding an infinity depending on where it sits ([inf, 1, 2] -> NaN, [1, 2, inf] -> inf) "
     "while torch.mean gives the infinity; gpuad gives torch.mean's value", None),
    (("topk", "kthvalue", "quantile", "nanquantile"), {"-inf"}, "values",
     "every entry ties: which of the tied entries torch picks (indices, and so the gradient) is "
     "not specified", None),
    (("einsum",), INFS, "nonfinite",
     "three or more operands: torch contracts left to right, numpy's optimizer in its own order, "
     "and whether an inf meets a -inf (NaN) or not depends on the order",
     lambda kw, n: n > 2),
    (("cdist",), ANY, "nonfinite",
     "p=1 and p=inf: torch.cdist's own kernels drop NaN for p=inf (a NaN turned into a clean "
     "distance) and give NaN gradients for p=1 where torch.abs's rule gives 0; gpuad computes "
     "cdist as the norm of the differences, like torch.norm",
     lambda kw, n: kw.get("p") in (1, math.inf)),
    (("binary_cross_entropy",), ANY, "nonfinite",
     "torch checks that every probability lies in [0, 1] and raises for NaN and +-inf (a host "
     "sync per call); gpuad gives a NaN or infinite loss", None),
    (("batch_norm",), INFS | {"shape"}, "skip",
     "torch's fused backward orders its terms its own way (an infinite weight gives +-inf there, "
     "inf - inf = NaN in gpuad's composite), and it normalizes an empty batch where gpuad raises "
     "(more than one value per channel, checked before the batch size)", None),
    (("binary_cross_entropy_with_logits",), INFS, "nonfinite",
     "with pos_weight, an infinite target (outside [0, 1] anyway): torch's fused formula gives "
     "inf - inf = NaN, gpuad's composite +-inf", lambda kw, n: n >= 3),
    (("multi_margin_loss",), ANY, "finite upstream",
     "a NaN upstream gradient: torch's kernel multiplies a sample's whole gradient row by it "
     "(0 * NaN = NaN where the hinge is inactive); gpuad's rule selects, and gives 0 there", None),
    (("getitem",), ANY | {"shape"}, "skip",
     "negative slice steps: numpy's, which torch refuses", _negative_step),
]


def _skip(case, kwargs, pattern, n_inputs):
    """(what is still checked, the reason) for a row and an input pattern, or None."""
    for names, patterns, check, reason, rows in SKIPS:
        if case.name in names and pattern in patterns and (rows is None or rows(kwargs, n_inputs)):
            return check, reason
    return None


def _lookup(name, kind=None):
    """The torch function for a gpuad name; kind "nn" (gpuad.nn.functional's) or "linalg" says
    where to look first (torch.embedding is not torch.nn.functional.embedding)."""
    import torch
    if name in TORCH_NAMES:
        return TORCH_NAMES[name]
    if name.startswith("linalg_"):
        name, kind = name[len("linalg_"):], "linalg"
    first = {"nn": (torch.nn.functional,), "linalg": (torch.linalg,)}.get(kind, ())
    for module in first + (torch, torch.nn.functional, torch.linalg, torch.special):
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(f"no torch counterpart for gpuad.{name}: add it to TORCH_NAMES or SKIPS")


def _kind(module_name):
    return "nn" if module_name.startswith("gpuad.nn") else (
        "linalg" if module_name == "gpuad.linalg" else None)


class _TorchNamespace:
    """gpuad, gpuad.linalg or gpuad.nn.functional, with every name looked up in torch."""

    def __init__(self, kind=None):
        self.kind = kind

    def __getattr__(self, name):
        import torch
        if name in ("linalg", "nn"):
            return _TorchNamespace(kind=name)
        if name in ("functional", "ops"):
            return self
        if name == "tensor":
            return torch.tensor
        if isinstance(getattr(gpuad, name, None), np.dtype):
            return getattr(torch, name)
        return _lookup(name, self.kind)


def _translate(value, memo):
    """A gpuad object as its torch counterpart: modules as namespaces, ops by name, the case
    tables' own helper functions as copies whose globals and closures are translated."""
    if isinstance(value, types.ModuleType):
        return _TorchNamespace(_kind(value.__name__)) if value.__name__.startswith(
            "gpuad") else value
    if isinstance(value, np.dtype) or isinstance(value, type) and issubclass(value, np.generic):
        import torch
        return getattr(torch, np.dtype(value).name) if np.dtype(value).kind in "fiub" else value
    if callable(value) and getattr(value, "__module__", "") and value.__module__.startswith(
            "gpuad") and not isinstance(value, type):
        return _lookup(value.__name__, _kind(value.__module__))
    if isinstance(value, types.FunctionType) and value.__module__.endswith("_cases"):
        return _torchify(value, memo)
    return value


def _torchify(fn, memo):
    """A copy of a case table's function whose gpuad names are torch's: one translated namespace
    per module, shared by the copies of its functions (memo holds both)."""
    if id(fn) in memo:
        return memo[id(fn)]
    module = fn.__module__
    if module not in memo:
        namespace = dict(fn.__globals__)
        memo[module] = namespace
        for key, value in list(namespace.items()):
            if not key.startswith("__") and not isinstance(value, types.FunctionType):
                namespace[key] = _translate(value, memo)
    closure = None if fn.__closure__ is None else tuple(
        types.CellType(_translate(c.cell_contents, memo)) for c in fn.__closure__)
    copy = types.FunctionType(fn.__code__, memo[module], fn.__name__, fn.__defaults__, closure)
    copy.__kwdefaults__ = fn.__kwdefaults__
    memo[id(fn)] = copy  # before the helpers: recursion ends here
    namespace = memo[module]
    for key, value in list(fn.__globals__.items()):  # the module's helpers, each copied once
        if isinstance(value, types.FunctionType) and value.__module__ == module and \
                namespace.get(key) is value:
            namespace[key] = _torchify(value, memo)
    return copy


_MEMO = {}


def torch_fn(case):
    """The torch function that computes what case.fn computes."""
    if gpuad.ops.REGISTRY.get(case.name) is case.fn or case.fn.__module__.startswith("gpuad"):
        return _lookup(case.name, _kind(case.fn.__module__))
    return _torchify(case.fn, _MEMO) if isinstance(case.fn, types.FunctionType) else _translate(
        case.fn, _MEMO)


# ---- the inputs ----------------------------------------------------------------------------


def _patterns(array):
    """(label, array) pairs: the array with NaN, with +-Inf, with every element -Inf."""
    flat = array.reshape(-1)
    if flat.size == 0:
        return []
    out = []
    for label, spots in (("nan", {0: math.nan}),
                         ("inf", {flat.size - 1: math.inf, flat.size // 2 - 1: -math.inf}
                          if flat.size > 1 else {0: math.inf}),
                         ("-inf", {i: -math.inf for i in range(flat.size)})):
        planted = flat.copy()
        for i, v in spots.items():
            planted[i] = v
        out.append((label, planted.reshape(array.shape)))
    return out


def _shape_variants(shapes):
    """Empty and single-element versions of a one-input row's shape."""
    (shape,) = shapes
    if not shape:
        return []
    return [((0,) + tuple(shape[1:]),), (tuple(shape[:-1]) + (0,),), ((1,) * len(shape),)]


def _params():
    """One test per row and keyword variant on the cpu, on the row's first shapes (and, for a
    one-input row, on empty and all-ones versions of its shape); on the other devices, which run
    the same code, one per row, only to check that it runs there. Private primitives are reached
    through their public ops' rows."""
    out, seen = [], set()
    for case in TABLES:
        if case.name.startswith("_"):
            continue
        shapes = case.shapes[0]
        extra = [s for s in (_shape_variants(shapes) if len(shapes) == 1 else [])
                 if _samples(case, s)]
        for kwargs in case.kwargs:
            kw_id = ",".join(f"{k}={v}" for k, v in kwargs.items())
            row = f"{case.name}-{'x'.join(str(tuple(s)) for s in shapes)}-{kw_id}"
            if row in seen:
                continue
            devices = ["cpu"] + (["strict", "cuda"] if kwargs is case.kwargs[0] else [])
            for device in devices:
                marks = pytest.mark.gpu if device == "cuda" else ()
                out.append(pytest.param(case, shapes, extra, kwargs, device, row,
                                        id=f"{device}-{row}", marks=marks))
            seen.add(row)
    return out


def _samples(case, shapes):
    try:
        case.sample(shapes)
        return True
    except Exception:  # noqa: BLE001 (the row's sampler makes no inputs of this shape)
        return False


# ---- the comparison ------------------------------------------------------------------------


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _plain(t):
    """A result as (dtype name, numpy array), or a Python number as it is."""
    if isinstance(t, (bool, int, float)):
        return t
    if isinstance(t, gpuad.Tensor):
        return str(t.dtype), backend.asnumpy(t.array)
    return str(t.dtype).replace("torch.", ""), t.numpy(force=True)


def _same(ours, theirs, what):
    """gpuad's result against torch's (_plain): dtype, shape, NaN and infinities exactly."""
    if isinstance(theirs, (bool, int, float)):
        assert not isinstance(ours, gpuad.Tensor) or ours.ndim == 0, what
        ours = ours.item() if isinstance(ours, gpuad.Tensor) else ours
        same = ours == theirs or ours != ours and theirs != theirs  # NaN == NaN here
        assert type(ours) is type(theirs) and same, f"{what}: gpuad {ours!r}, torch {theirs!r}"
        return
    (dtype, a), (their_dtype, b) = _plain(ours), theirs
    assert dtype == their_dtype, f"{what}: dtype {dtype}, torch {their_dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape}, torch {b.shape}"
    if a.dtype.kind not in "fc":
        assert (a == b).all(), f"{what}: gpuad {a}, torch {b}"
        return
    for test, label in ((np.isnan, "NaN"), (np.isposinf, "+Inf"), (np.isneginf, "-Inf")):
        assert (test(a) == test(b)).all(), \
            f"{what}: {label} at different places:\ngpuad {a}\ntorch {b}"
    finite = np.isfinite(a)
    np.testing.assert_allclose(a[finite], b[finite], rtol=1e-6, atol=1e-8, err_msg=what)


def _run(lib, fn, arrays, diff, kwargs, device):
    """(outputs, tensors) or (the exception the call raised, None)."""
    import torch
    tensors = []
    for i, a in enumerate(arrays):
        if lib is gpuad:
            tensors.append(gpuad.tensor(a, device=device, requires_grad=i in diff))
        else:
            tensors.append(torch.tensor(a, requires_grad=i in diff))
    kwargs = {k: _translate(v, _MEMO) if lib is not gpuad else v for k, v in kwargs.items()}
    try:
        with _warnings(lib):
            return _outputs(fn(*tensors, **kwargs)), tensors
    except _Leak:
        raise
    except Exception as error:  # noqa: BLE001 (compared with torch's below)
        return error, None


class _Leak(AssertionError):
    pass


@contextlib.contextmanager
def _warnings(lib):
    """torch's warnings are its own; a numpy RuntimeWarning escaping a gpuad op is a failure (the
    suite turns warnings into errors), the warnings gpuad means to give (UserWarning) are not."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    if lib is gpuad:
        leaked = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        if leaked:
            raise _Leak(f"numpy warning escaped: {leaked[0].message} ({leaked[0].filename}:"
                        f"{leaked[0].lineno})")


def _upstreams(shapes):
    """Random finite upstream gradients for the outputs of these shapes, and the same with a NaN."""
    rng = np.random.default_rng(0)
    finite = [rng.standard_normal(shape) for shape in shapes]
    with_nan = [v.copy() for v in finite]
    if with_nan[0].size:
        with_nan[0].reshape(-1)[0] = math.nan
    return {"finite": finite, "NaN": with_nan}


def _grads(lib, outs, tensors, vs, wrt):
    """Gradients of sum(out * v) with respect to tensors[i] for i in wrt (zeros when unused)."""
    import torch
    wrt = [tensors[i] for i in wrt]
    if lib is gpuad:
        with _warnings(gpuad):
            total = sum((o * gpuad.tensor(v, device=o.device)).sum() for o, v in zip(outs, vs))
            got = gpuad.grad(total, wrt, allow_unused=True, retain_graph=True)
        return [gpuad.zeros_like(t) if g is None else g for g, t in zip(got, wrt)]
    total = sum((o * torch.tensor(v)).sum() for o, v in zip(outs, vs))
    with _warnings(torch):
        got = torch.autograd.grad(total, wrt, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(got, wrt)]


_TORCH = {}  # torch's results, computed once for all devices


def _torch_side(torch, tfn, arrays, diff, kwargs, key):
    """(error or outputs, the inputs with gradients, which outputs carry one, gradients per
    upstream gradient or None where torch's backward raises), all as _plain results."""
    if key not in _TORCH:
        theirs, tensors = _run(torch, tfn, arrays, diff, kwargs, None)
        if isinstance(theirs, RuntimeError) and "not differentiable with respect" in str(theirs):
            diff = diff[:1]  # torch has no gradient for a weight: compare the input's only
            theirs, tensors = _run(torch, tfn, arrays, diff, kwargs, None)
        if isinstance(theirs, Exception):
            _TORCH[key] = theirs, diff, [], {}
            return _TORCH[key]
        carry = [i for i, t in enumerate(theirs)
                 if getattr(t, "requires_grad", False) and t.dtype.is_floating_point]
        grads = {}
        if diff and carry:
            outs = [theirs[i] for i in carry]
            for upstream, vs in _upstreams([tuple(o.shape) for o in outs]).items():
                try:
                    grads[upstream] = [_plain(g) for g in _grads(torch, outs, tensors, vs, diff)]
                except RuntimeError:  # no derivative there, or torch's bug (linalg.cond's)
                    grads[upstream] = None
        _TORCH[key] = [_plain(t) for t in theirs], diff, carry, grads
    return _TORCH[key]


def _compare(torch, case, tfn, arrays, kwargs, device, label, pattern, key):
    check, reason = _skip(case, kwargs, pattern, len(arrays)) or ("all", None)
    if check == "skip" or check == "nonfinite" and pattern == "shape":
        return
    arrays = [np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in arrays]
    theirs, diff, carry, their_grads = _torch_side(torch, tfn, arrays, case.differentiable(arrays),
                                                   kwargs, key)
    if isinstance(theirs, (TypeError, NotImplementedError)) and check != "nonfinite":
        return  # a call torch does not take (numpy spellings, gpuad's extensions): not an oracle
    ours, tensors = _run(gpuad, case.fn, arrays, diff, kwargs, device)
    what = f"{case.name}{kwargs} on {label}"
    if check == "nonfinite":
        if not isinstance(ours, Exception):
            assert any(not np.isfinite(_plain(o)[1]).all() for o in ours
                       if isinstance(o, gpuad.Tensor) and o.dtype.kind == "f"), \
                f"{what}: every output is finite ({reason})"
        return
    if isinstance(theirs, Exception):
        assert isinstance(ours, Exception), f"{what}: torch raises {theirs!r}, gpuad does not"
        return
    assert not isinstance(ours, Exception), f"{what}: gpuad raises {ours!r}, torch does not"
    assert len(ours) == len(theirs), what
    for i, (o, t) in enumerate(zip(ours, theirs)):
        if check == "all" or isinstance(t, tuple) and t[1].dtype.kind == "f":
            _same(o, t, f"{what}, output {i}")
    if check == "values" or not their_grads:
        return
    outs = [ours[i] for i in carry]
    for upstream, vs in _upstreams([tuple(o.shape) for o in outs]).items():
        if their_grads[upstream] is not None and (upstream, check) != ("NaN", "finite upstream"):
            for i, (g, t) in enumerate(zip(_grads(gpuad, outs, tensors, vs, diff),
                                           their_grads[upstream])):
                _same(g, t, f"{what}: gradient {i} with {upstream} upstream gradient")


@pytest.mark.parametrize("case,shapes,extra,kwargs,device,row", _params())
def test_nonfinite_matches_torch(case, shapes, extra, kwargs, device, row):
    torch = pytest.importorskip("torch")
    tfn = torch_fn(case)
    cpu = device == "cpu"  # elsewhere the same paths: only check that they run there too
    for shapes, patterns in [(shapes, 3 if cpu else 1)] + [(s, 1) for s in extra if cpu]:
        arrays = case.sample(shapes)
        if patterns == 1 and cpu:
            _compare(torch, case, tfn, arrays, kwargs, device, f"shape {shapes}", "shape",
                     (row, str(shapes), "shape"))
        for i, a in enumerate(arrays):
            if np.asarray(a).dtype.kind != "f":
                continue
            for pattern, planted in _patterns(np.asarray(a))[:patterns]:
                inputs = list(arrays)
                inputs[i] = planted
                _compare(torch, case, tfn, inputs, kwargs, device, f"input {i} with {pattern}",
                         pattern, (row, str(shapes), i, pattern))
