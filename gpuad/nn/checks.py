"""Checks and reductions the layers, functionals and losses share (torch keeps its reduction
helpers in torch/nn/_reduction.py): dtypes a layer refuses to mix, and the reduction argument.
"""
import warnings

import numpy

from .. import amp, backend, ops

REDUCED = frozenset(d for d in (backend.float16, backend.bfloat16) if not isinstance(d, str))
_AUTOCASTABLE = REDUCED | {numpy.dtype(backend.float32)}
_MODEL_CAST = {"float64": "double", "float32": "float", "float16": "half"}


def check_dtypes(where, input, *params, kind="matmul", what="weight", subject="the input",
                 error=RuntimeError):
    """Refuse an input whose dtype differs from its layer's parameters, as torch does, instead of
    promoting (a float64 batch into a float32 Linear would silently run and return float64).
    kind="matmul" (Linear, Conv, RNN, attention, PReLU) wants equal dtypes; kind="norm" (batch,
    layer and group norm) also takes a float16/bfloat16 input with float32 parameters, torch's
    mixed precision, and returns that input dtype so the caller computes in float32 and casts
    back. Under autocast the dtypes are compared after autocast's casts (no error where torch
    casts). `where` is a name or the Module, described only when raising."""
    dtype = input.dtype
    for p in params:  # a loop, not all() over a generator: every layer call runs this
        if p is not None and p.dtype != dtype:
            break
    else:
        return None
    dtypes = [p.dtype for p in params if p is not None]
    device_type = input.device.type
    if amp.is_autocast_enabled(device_type):
        target = amp.get_autocast_dtype(device_type) if kind == "matmul" else backend.float32

        def seen(d):
            return target if d in _AUTOCASTABLE else d
        if all(seen(d) == seen(dtype) for d in dtypes):
            return None
    elif kind == "norm" and dtype in REDUCED and all(d == backend.float32 for d in dtypes):
        return dtype
    want = next(d for d in dtypes if d != dtype)
    name = where if isinstance(where, str) else f"{type(where).__name__}({where.extra_repr()})"
    fix = f"convert it with .to(gpuad.{want})"
    if subject == "the input" and dtype.kind == "f":
        fix += f" or the model with model.{_MODEL_CAST.get(str(dtype), f'to(gpuad.{dtype})')}()"
    raise error(f"{name}: {subject} has dtype {dtype}, the {what} {want}; like torch, gpuad does "
                f"not mix dtypes here: {fix}")


def check_reduction(name, reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{name}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def apply_reduction(loss, reduction):
    """The per-element loss, its sum or its mean."""
    return loss if reduction == "none" else ops.sum(loss) if reduction == "sum" else ops.mean(loss)


def pointwise_target(name, input, target, reduction, same_shape):
    """Check reduction and a target of the input's shape; a target that only broadcasts warns
    (or raises, when same_shape), as torch does."""
    check_reduction(name, reduction)
    if tuple(target.shape) != tuple(input.shape):
        message = (f"{name}: target shape {tuple(target.shape)} differs from input shape "
                   f"{tuple(input.shape)}")
        if same_shape:
            raise ValueError(message + "; they must match")
        try:
            numpy.broadcast_shapes(tuple(target.shape), tuple(input.shape))
        except ValueError:
            raise ValueError(message + "; they must match (or broadcast)") from None
        warnings.warn(message + "; they will be broadcast, which is likely a bug", UserWarning,
                      stacklevel=3)


def legacy_reduction(size_average, reduce, reduction):
    """torch's _Reduction.legacy_get_string: the deprecated flags, when given, win."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use reduction='sum' "
                  "or reduction='mean' instead.", UserWarning, stacklevel=3)
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def check_dense_gradients(op, scale_grad_by_freq, sparse):
    """Refuse torch's embedding switches gpuad does not have (its gradients are dense, unscaled)."""
    for flag, what in ((scale_grad_by_freq, "scale_grad_by_freq"), (sparse, "sparse=True")):
        if flag:
            raise NotImplementedError(f"{op}: {what} is not supported by gpuad (gradients are "
                                      f"always dense and unscaled)")

