"""nn.functional: the maths of the layers (linear, norms, dropout, cross entropy, the regression
and binary losses), like torch.nn.functional, plus the dtype check every layer shares.

Sits above ops/ and below layers.py: everything here is a composite of gpuad ops except the losses
over class indices, cross_entropy's fused log_softmax + NLL and nll_loss (primitives whose target
bookkeeping runs on raw arrays, with differentiable gradients); softmax and
log_softmax are gpuad.softmax's primitives (ops/reduce.py). Activations (activation.py), the
other losses (loss.py), attention and group/RMS norms live in files of their own and are
re-exported here; convolution and pooling live in gpuad/ops/conv.py. No parameters, no module
state.
"""
import math
import numbers


from .. import backend, creation, deprecation, ops
from ..autograd import is_grad_enabled, no_grad
from ..backend import xp_of
from ..backend.kernels import fused
from ..ops import primitive
from ..tensor import Tensor
from .checks import (apply_reduction, check_dense_gradients, check_dtypes, check_reduction,
                     legacy_reduction, pointwise_target)

pad, one_hot = ops.pad, ops.one_hot


# ---- linear, convolution, pooling ------------------------------------------------------------
def linear(input, weight, bias=None):
    """input @ weight.T + bias, with weight of shape (out_features, in_features), like torch: one
    op (gpuad.ops._linear) whose rule computes the weight's gradient straight into its layout.
    The input's dtype must be the weight's (torch raises too)."""
    if isinstance(input, Tensor):
        check_dtypes("linear", input, weight, bias)
    return ops._linear(input, weight, bias)


def _conv_op(name):
    op = ops.REGISTRY.get(name) or getattr(ops.conv, name, None)
    if op is None:
        raise NotImplementedError(f"{name}: gpuad.ops.conv does not define {name} yet")
    return op


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution of (N, C_in, H, W) by (C_out, C_in/groups, kH, kW): gpuad.conv2d."""
    check_dtypes("conv2d", input, weight, bias)
    return _conv_op("conv2d")(input, weight, bias, stride=stride, padding=padding,
                              dilation=dilation, groups=groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution of (N, C_in, H, W) by (C_in, C_out/groups, kH, kW):
    gpuad.conv_transpose2d (conv2d's input gradient, as a differentiable composite)."""
    check_dtypes("conv_transpose2d", input, weight, bias)
    return _conv_op("conv_transpose2d")(input, weight, bias, stride=stride, padding=padding,
                                        output_padding=output_padding, groups=groups,
                                        dilation=dilation)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks of (N, C, H, W) as (N, C*kH*kW, L), like torch (gpuad.ops.conv.unfold)."""
    return _conv_op("unfold")(input, kernel_size, dilation=dilation, padding=padding, stride=stride)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Blocks (N, C*kH*kW, L) summed into (N, C, H, W), like torch (gpuad.ops.conv.fold)."""
    return _conv_op("fold")(input, output_size, kernel_size, dilation=dilation, padding=padding,
                            stride=stride)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling (gpuad.max_pool2d); stride defaults to kernel_size."""
    return _conv_op("max_pool2d")(input, kernel_size=kernel_size, stride=stride, padding=padding,
                                  dilation=dilation, ceil_mode=ceil_mode,
                                  return_indices=return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling (gpuad.avg_pool2d); stride defaults to kernel_size."""
    return _conv_op("avg_pool2d")(input, kernel_size=kernel_size, stride=stride, padding=padding,
                                  ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                                  divisor_override=divisor_override)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed (H_out, W_out) (gpuad.adaptive_avg_pool2d)."""
    return _conv_op("adaptive_avg_pool2d")(input, output_size=output_size)


# ---- normalisation, dropout, embedding -------------------------------------------------------
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel (dim 1) by its batch statistics (training) or the running ones, like
    torch: training normalises with the biased variance and, under no_grad, moves the running
    buffers in place by `momentum` toward the batch mean and the UNBIASED batch variance."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, ...), got {input.shape}")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (channels,):  # before any buffer moves
            raise ValueError(f"batch_norm: {name} of shape {tuple(t.shape)} does not fit input of "
                             f"shape {tuple(input.shape)}; expected ({channels},), one entry per "
                             f"channel (dim 1)")
    back = check_dtypes("batch_norm", input, running_mean, running_var, weight, bias,
                         kind="norm", what="parameters")
    if back is not None:  # torch's mixed precision: float32 statistics, the input's dtype out
        input = input.to(backend.float32)
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if training:
        dims = (0,) + tuple(range(2, input.ndim))
        count = math.prod(input.shape[d] for d in dims)
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {input.shape}")
        mean = ops.mean(input, dims, keepdim=True)
        var = ops.var(input, dim=dims, keepdim=True, correction=0)
        if running_mean is not None:
            with no_grad():
                running_mean.mul_(1 - momentum).add_(mean.reshape(channels) * momentum)
        if running_var is not None:
            with no_grad():
                unbiased = var.reshape(channels) * (momentum * count / (count - 1))
                running_var.mul_(1 - momentum).add_(unbiased)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are required when "
                             "training=False")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    scale = ops.rsqrt(var + eps)  # per channel: fold weight and bias in, then one pass over x
    if weight is not None:
        scale = scale * weight.reshape(shape)
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.reshape(shape)
    out = input * scale + shift
    return out if back is None else out.to(back)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the last len(normalized_shape) dims (biased variance), like torch."""
    normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, numbers.Integral)
                        else tuple(normalized_shape))
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k:]) != normalized_shape or k > input.ndim:
        raise ValueError(f"layer_norm: normalized_shape {normalized_shape} does not match the "
                         f"last dims of the input of shape {input.shape}")
    back = check_dtypes("layer_norm", input, weight, bias, kind="norm", what="parameters")
    if back is not None:  # torch's mixed precision: computed in float32, the input's dtype out
        input = input.to(backend.float32)
    dims = tuple(range(input.ndim - k, input.ndim))
    out = _layer_norm(input, weight, bias, dims=dims, eps=eps)
    return out if back is None else out.to(back)


# One op with its own rule, as torch's native_layer_norm: the forward keeps the rows' mean and
# 1/std (small) for the backward, which needs them with x. On (2048, 512) float32 with an affine,
# forward and backward take 1.3 and 3.0 ms, against 2.4 and 4.3 composed of mean, var, rsqrt,
# product and sum ops.
def _layer_norm_vjp(g, y, x, weight, bias, *, dims, eps, saved=None):
    need = (x.requires_grad, weight is not None and weight.requires_grad,
            bias is not None and bias.requires_grad)
    if saved is not None and ops.plain_backward():
        grads = _layer_norm_grad_arrays(g.array, x.array, None if weight is None else
                                        weight.array, *saved, dims=dims, need=need)
        return tuple(None if a is None else Tensor(a) for a in grads)
    # differentiable (create_graph, vmap): the same formula through ops
    centered = x - ops.mean(x, dims, keepdim=True)
    rstd = ops.rsqrt(ops.mean(centered * centered, dims, keepdim=True) + eps)
    x_hat = centered * rstd
    shape = tuple(x.shape[x.ndim - len(dims):])
    gw = ops.sum_to(g * x_hat, shape=shape) if need[1] else None
    gb = ops.sum_to(g, shape=shape) if need[2] else None
    gx = None
    if need[0]:
        gh = g if weight is None else g * weight
        gx = rstd * (gh - ops.mean(gh, dims, keepdim=True)
                     - x_hat * ops.mean(gh * x_hat, dims, keepdim=True))
    return gx, gw, gb


def _layer_norm_grad_arrays(g, x, weight, mean, rstd, *, dims, need):
    """(gx, gweight, gbias) on raw arrays, None where not needed: with x_hat = (x - mean) * rstd
    and h = g * weight, gx = rstd (h - mean(h) - x_hat mean(h x_hat)) over dims."""
    lead = tuple(range(x.ndim - len(dims)))
    x_hat = x - mean
    x_hat *= rstd
    gb = g.sum(axis=lead) if need[2] else None
    gw = (g * x_hat).sum(axis=lead) if need[1] else None
    if not need[0]:
        return None, gw, gb
    h = g if weight is None else g * weight
    term = h * x_hat
    xp_of(x).multiply(x_hat, _row_mean(term, dims), out=term)
    gx = h - _row_mean(h, dims)
    gx -= term
    gx *= rstd
    return gx, gw, gb


def _row_mean(a, dims):
    """a's mean over dims, kept; NaN for empty dims (torch's), without numpy's warning."""
    if all(a.shape[d] for d in dims):
        return a.mean(axis=dims, keepdims=True)
    shape = tuple(1 if d in dims else n for d, n in enumerate(a.shape))
    return xp_of(a).full(shape, math.nan, dtype=a.dtype)


@primitive(vjp=_layer_norm_vjp, autocast="float32")
def _layer_norm(x, weight, bias, *, dims, eps):
    """(x - mean) / sqrt(biased var + eps) over dims, times weight plus bias (each optional)."""
    xp = xp_of(x)
    mean = _row_mean(x, dims)
    out = x - mean
    rstd = _row_mean(out * out, dims)
    rstd += eps
    rstd = 1 / xp.sqrt(rstd)
    out *= rstd
    if weight is not None:
        out *= weight
    if bias is not None:
        out += bias
    return ops.Saving(out, (mean, rstd))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout);
    the identity when not training. Random bits come from gpuad's seeded generator on the input's
    device. `inplace` is accepted for torch compatibility; the result is always a new tensor."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    keep = creation.rand(*input.shape, dtype=backend.float32, device=input.device) >= p
    return ops.where(keep, input * (1 / (1 - p)), 0)


@ops.batchable  # vmap: reads class indices' raw values
def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of weight at the integer indices `input` (any shape), like torch: repeated indices
    accumulate in the gradient, and the row `padding_idx` receives none. With max_norm, the rows
    looked up whose norm_type-norm exceeds it are first scaled down to it, in weight itself and
    off the tape, as torch's. Gradients are dense and unscaled: scale_grad_by_freq and sparse
    raise."""
    check_dense_gradients("embedding", scale_grad_by_freq, sparse)
    if not isinstance(input, Tensor):
        input = creation.tensor(input, device=weight.device)
    if input.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be an integer tensor, got dtype {input.dtype} "
                        f"(shape {input.shape}); convert them with .long()")
    _same_device("embedding", weight, input, "indices")
    rows, shape = weight.shape[0], weight.shape  # (a shape in the message, not the tensor)
    backend.check_indices(input.array, 0, rows, lambda bad: IndexError(
        f"embedding: index {bad} is out of range for an embedding of {rows} rows (weight shape "
        f"{shape}); indices must be in [0, {rows})"))
    if max_norm is not None:
        _renorm_rows(weight, input.array, max_norm, norm_type)
    out = ops._getitem(weight, index=input.array)
    if padding_idx is not None and weight.requires_grad and is_grad_enabled():
        pad_row = padding_idx + rows if padding_idx < 0 else padding_idx
        out = ops.where((input == pad_row).unsqueeze(-1), out.detach(), out)
    return out


def _renorm_rows(weight, index, max_norm, norm_type):
    """torch's embedding_renorm_: each row at `index` whose norm exceeds max_norm scaled by
    max_norm / (norm + 1e-7), in place (a row indexed twice gets the same value twice)."""
    xp, index = xp_of(weight.array), index.reshape(-1)
    rows = weight.array[index]
    size = xp.abs(rows)
    if norm_type == math.inf:
        norms = size.max(axis=1)
    else:
        norms = (size ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(rows.dtype)
    weight._bump_version()
    weight.array[index] = rows * scale[:, None]


# ---- cross entropy: a fused primitive whose gradient is a primitive too ----------------------
def _at_class(target):
    """The index of x[n, target[n, d1, ...], d1, ...] for logits x (N, C, d1, ...)."""
    xp, shape = xp_of(target), target.shape
    if len(shape) == 1:  # (N, C) logits, the common case
        return xp.arange(shape[0]), target
    grids = [xp.arange(s).reshape((s,) + (1,) * (len(shape) - i - 1)) for i, s in enumerate(shape)]
    return (grids[0], target) + tuple(grids[1:])


# numpy reduces a short inner axis slowly (per-row loop setup): for few classes the softmax runs
# class-major, over a (C, N, ...) copy, where each reduction is C - 1 vectorized passes (2-3x faster
# at C = 10). The copy costs as much as it saves near 64 classes; 32 keeps a margin.
_CLASS_MAJOR_UP_TO = 32


def _exp_shifted(x):
    """(exp(x - max over dim 1) with the class dim moved first, that max (N, d1, ...)) for logits
    x (N, C, d1, ...); the first is a fresh array the caller may overwrite."""
    xp = xp_of(x)
    if x.shape[1] <= _CLASS_MAJOR_UP_TO:
        e = x.transpose(_swap01(x.ndim)).copy()  # a copy even when the view is contiguous (N=1)
        top = e.max(axis=0)
        e -= top
    else:
        top = x.max(axis=1)
        e = (x - xp.expand_dims(top, 1)).transpose(_swap01(x.ndim))
    xp.exp(e, out=e)
    return e, top


def _swap01(ndim):
    """The axes that swap dims 0 and 1 (a permutation that is its own inverse)."""
    return (1, 0) + tuple(range(2, ndim))


def _softmax_terms(x):
    """(e, s, logsumexp(x, 1)) for logits x (N, C, ...): e = exp(x - max over dim 1) class-major
    (C, N, ...) and s its sum over the classes, from which the gradient gets the softmax e / s."""
    e, top = _exp_shifted(x)
    s = e.sum(axis=0)
    return e, s, xp_of(x).log(s) + top


def _entry_losses(x, lse, target, w=None):
    """(lse - x[target]) * w: each entry's loss from logsumexp(x, 1) (w None: weights of 1)."""
    loss = lse - x[_at_class(target)]
    return loss if w is None else loss * w.astype(x.dtype, copy=False)


@fused("softmax_nll")
def _softmax_nll_array(x, target, w):
    """(logsumexp(x, 1) - x[target]) * w for logits x (N, C, ...), class indices target (N, ...)
    and weights w (N, ...), or None for weights of 1: cross_entropy's per-element loss."""
    return _entry_losses(x, _softmax_terms(x)[2], target, w)


@fused("softmax_nll_grad")
def _softmax_nll_grad_array(x, target, scale):
    """(softmax(x, 1) - one_hot(target, dim 1)) * scale[:, None]: softmax_nll's gradient for
    upstream gradient times weights `scale` (N, ...), without a one-hot array."""
    xp = xp_of(x)
    e, _ = _exp_shifted(x)
    scale = scale.astype(e.dtype, copy=False)
    e *= scale / e.sum(axis=0)
    p = xp.ascontiguousarray(e.transpose(_swap01(e.ndim)))
    p[_at_class(target)] -= scale
    return p


def _softmax_nll_grad_vjp(h, y, x, target, scale):
    p = ops._softmax(x, dim=1)
    hp = ops.sum(h * p, dim=1, keepdim=True)
    gx = scale.unsqueeze(1) * p * (h - hp) if x.requires_grad else None
    gs = hp.squeeze(1) - _pick(h, target) if scale.requires_grad else None
    return gx, None, gs


@primitive(vjp=_softmax_nll_grad_vjp)
def _softmax_nll_grad(x, target, scale):
    """(softmax(x, 1) - one_hot(target, dim 1)) * scale[:, None]: _softmax_nll's gradient, without
    a one-hot array (one CuPy kernel for 2-D logits on the GPU)."""
    return _softmax_nll_grad_array(x, target, scale)


def _class_targets(target, weight, ignore_index, dtype):
    """On raw arrays: (target with ignored entries set to 0, per-entry weight in `dtype` (0 where
    ignored), the mask of entries not ignored)."""
    xp = xp_of(target)
    valid = target != ignore_index
    safe = xp.where(valid, target, 0)
    w = valid.astype(dtype) if weight is None else xp.where(valid, weight[safe], 0).astype(dtype)
    return safe, w, valid


def _none_ignored(target, weight, classes, ignore_index):
    """Whether every class index counts with weight 1, where the host can tell without waiting
    for a device: the indices were checked to be in [0, classes) or ignore_index (_class_input),
    so with no weights and ignore_index outside that range, a least index >= 0 says so."""
    if weight is not None or 0 <= ignore_index < classes or not target.size:
        return False
    least = backend.host_min(target)
    return least is not None and least >= 0


def _class_scale(g, target, weight, ignore_index, reduction, x):
    """(target with ignored entries 0, d loss / d loss-entry of every entry): torch's nll_loss
    backward, g / total_weight * w at a target that is not ignored and 0 at one that is (a total
    weight of 0 gives NaN there, as in torch). On raw arrays in a plain backward (no ops); under
    create_graph (or vmap) gpuad ops, so it stays differentiable in g."""
    weight = None if weight is None else weight.array
    if ops.plain_backward():
        safe, scale = _class_scale_array(g.array, target.array, weight, classes=x.shape[1],
                                         ignore_index=ignore_index, reduction=reduction)
        return safe, Tensor(scale)
    safe, w, valid = _class_targets(target.array, weight, ignore_index, x.dtype)
    upstream = g / Tensor(w.sum()) if reduction == "mean" else g
    return safe, ops.where(Tensor(valid), upstream * Tensor(w), 0)


@fused("class_scale")
def _class_scale_array(g, target, weight, *, classes, ignore_index, reduction):
    """_class_scale of a plain backward as one call (gpuad.compile records it whole, so a replay
    looks at each batch afresh): without masks when every index counts with weight 1."""
    if _none_ignored(target, weight, classes, ignore_index):
        if reduction == "none":
            return target, g
        scale = xp_of(g).empty(target.shape, g.dtype)
        scale.fill(g / target.size if reduction == "mean" else g)
        return target, scale
    return _masked_scale(g, target, weight, ignore_index, reduction)


def _masked_scale(g, target, weight, ignore_index, reduction):
    """_class_scale_array's result with masks: (target with ignored entries 0, g / total weight
    * w, 0 where ignored)."""
    safe, w, valid = _class_targets(target, weight, ignore_index, g.dtype)
    upstream = g / w.sum() if reduction == "mean" else g
    return safe, xp_of(w).where(valid, upstream * w, 0)


def _reduce_entries(loss, w, reduction):
    """The per-entry loss reduced as torch does: 'mean' divides the sum by the summed weights of
    the targets not ignored (0 / 0, NaN, when there are none); w None: every weight is 1."""
    if reduction == "none":
        return loss
    total = loss.sum()
    return total if reduction == "sum" else total / (loss.size if w is None else w.sum())


def _class_cross_entropy_vjp(g, y, x, target, weight, *, ignore_index, reduction, saved=None):
    if not x.requires_grad:
        return None, None, None
    if saved is not None and ops.plain_backward():  # the forward's softmax terms: one raw call
        return Tensor(_class_cross_entropy_grad_array(
            g.array, target.array, None if weight is None else weight.array, *saved,
            ignore_index=ignore_index, reduction=reduction)), None, None
    safe, scale = _class_scale(g, target, weight, ignore_index, reduction, x)
    return _softmax_nll_grad(x, Tensor(safe), scale), None, None  # through the log-softmax


@primitive(vjp=_class_cross_entropy_vjp, autocast="float32")
def _class_cross_entropy(x, target, weight, *, ignore_index, reduction):
    """cross_entropy of logits x (N, C, d1, ...) at class indices target (N, d1, ...), without
    label smoothing, as one op: per entry (logsumexp(x, 1) - x[target]) * weight[target], 0
    where target == ignore_index; 'mean' divides the sum by the summed weights of the targets
    not ignored (NaN if there are none), as torch does. It keeps the softmax's terms for the
    backward (as torch's log_softmax keeps its output), except on CUDA, where one row kernel
    each way recomputes them."""
    if backend.device_of(x).type == "cuda":
        safe, w, valid = _class_targets(target, weight, ignore_index, x.dtype)
        # an ignored target's NaN logits give 0, as in torch
        loss = xp_of(x).where(valid, _softmax_nll_array(x, safe, w), 0)
        return _reduce_entries(loss, w, reduction)
    loss, e, s = _class_cross_entropy_array(x, target, weight, ignore_index=ignore_index,
                                            reduction=reduction)
    return ops.Saving(loss, (e, s))


@fused("class_cross_entropy")
def _class_cross_entropy_array(x, target, weight, *, ignore_index, reduction):
    """_class_cross_entropy's forward as one call (gpuad.compile records it whole, so a replay
    looks at each batch afresh): (the loss as an array, e, s of _softmax_terms), without masks
    when every index counts with weight 1."""
    xp = xp_of(x)
    e, s, lse = _softmax_terms(x)
    if _none_ignored(target, weight, x.shape[1], ignore_index):
        return xp.asarray(_reduce_entries(_entry_losses(x, lse, target), None, reduction)), e, s
    safe, w, valid = _class_targets(target, weight, ignore_index, x.dtype)
    # an ignored target's NaN logits give 0, as in torch
    loss = xp.where(valid, _entry_losses(x, lse, safe, w), 0)
    return xp.asarray(_reduce_entries(loss, w, reduction)), e, s


@fused("class_cross_entropy_grad")
def _class_cross_entropy_grad_array(g, target, weight, e, s, *, ignore_index, reduction):
    """d loss / d logits (N, C, ...) for upstream gradient g from the forward's e and s:
    (e / s - one_hot(target)) * scale, scale being _class_scale's, in one call (a replay looks
    at each batch afresh). e and s stay as they are (a second backward may read them again)."""
    xp = xp_of(e)
    if _none_ignored(target, weight, e.shape[0], ignore_index):
        scale = g / target.size if reduction == "mean" else g  # the same for every entry
    else:
        target, scale = _masked_scale(g, target, weight, ignore_index, reduction)
    factor = scale.astype(e.dtype, copy=False) / s
    out = xp.empty((e.shape[1], e.shape[0]) + e.shape[2:], e.dtype)
    xp.multiply(e.transpose(_swap01(e.ndim)), factor.reshape(out.shape[:1] + (1,) + s.shape[1:]),
                out=out)
    out[_at_class(target)] -= scale
    return out


def _class_nll_vjp(g, y, x, target, weight, *, ignore_index, reduction):
    if not x.requires_grad:
        return None, None, None
    safe, scale = _class_scale(g, target, weight, ignore_index, reduction, x)
    if ops.plain_backward():  # one raw scatter
        gx = xp_of(x.array).zeros_like(x.array)
        gx[_at_class(safe)] = -scale.array
        return Tensor(gx), None, None
    index = Tensor(xp_of(safe).expand_dims(safe, 1))
    return ops._scatter_add(-scale.unsqueeze(1), index, dim=1, shape=tuple(x.shape)), None, None


@primitive(vjp=_class_nll_vjp)
def _class_nll(x, target, weight, *, ignore_index, reduction):
    """nll_loss of log-probabilities x (N, C, d1, ...) at class indices target (N, d1, ...) as
    one op: per entry -x[target] * weight[target], 0 where target == ignore_index, reduced as
    cross_entropy's."""
    safe, w, valid = _class_targets(target, weight, ignore_index, x.dtype)
    # an ignored target's NaN gives 0, as in torch
    return _reduce_entries(xp_of(x).where(valid, -x[_at_class(safe)] * w, 0), w, reduction)


def _pick(x, index):
    """x[n, index[n, ...], ...]: the entries at the class indices along dim 1 (dim 1 removed)."""
    return ops._gather(x, index.unsqueeze(1), dim=1).squeeze(1)


def _same_device(name, input, other, what):
    if not backend.same_device(input.array, other.array):  # no Device objects: the common path
        raise RuntimeError(f"{name}: {what} is on {other.device} but the input is on "
                           f"{input.device}; move it with .to({str(input.device)!r})")


def _class_input(name, input, target, ignore_index):
    """Check class-index targets against input (N, C, d1, ...) or (C,); returns the input with a
    batch dim, the target with one, and whether to drop it again."""
    if not isinstance(target, Tensor):
        target = creation.tensor(target, device=input.device)
    if target.dtype.kind not in "iu":
        hint = (f", or pass class probabilities of the input's shape {tuple(input.shape)}"
                if name == "cross_entropy" else "")
        raise TypeError(f"{name}: class-index targets must be an integer tensor, but target has "
                        f"dtype {target.dtype} and shape {tuple(target.shape)} (input shape "
                        f"{tuple(input.shape)}); convert it with target.long(){hint}")
    _same_device(name, input, target, "target")
    single = input.ndim == 1
    expected = () if single else (input.shape[0],) + tuple(input.shape[2:])
    if input.ndim == 0 or tuple(target.shape) != expected:
        raise ValueError(f"{name}: target of shape {tuple(target.shape)} does not fit input of "
                         f"shape {tuple(input.shape)}: input (N, C, d1, ...) takes target "
                         f"(N, d1, ...) and input (C,) a 0-d target")
    classes, shape = input.shape[0 if single else 1], tuple(input.shape)
    # (the message holds the shape, not the tensor: gpuad.compile keeps it for its replays)
    backend.check_indices(target.array, 0, classes, lambda bad: IndexError(
        f"{name}: target contains class index {bad}, out of range for input of shape "
        f"{shape} with {classes} classes; class indices must be in [0, {classes}) "
        f"or equal ignore_index={ignore_index}"), ignore=ignore_index)
    if single:
        return input.unsqueeze(0), target.reshape((1,)), True
    return input, target, False


def _check_weight(name, input, weight, classes):
    if weight is not None:
        _same_device(name, input, weight, "weight")
        if tuple(weight.shape) != (classes,):
            raise ValueError(f"{name}: weight must have shape ({classes},), one entry per class; "
                             f"got {tuple(weight.shape)}")


def _reduce_class_loss(loss, w, reduction, single):
    """'mean' divides by the summed weights of the non-ignored targets (NaN if there are none)."""
    if reduction == "none":
        return loss.reshape(()) if single else loss
    total = ops.sum(loss)
    if reduction == "sum":
        return total
    denominator = ops.sum(w)
    return total / ops.where(denominator == 0, math.nan, denominator)


@ops.batchable  # vmap: reads class indices' raw values
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log likelihood of log-probabilities input (N, C, d1, ...) or (C,) at the integer
    class indices target, like torch.nn.functional.nll_loss (weighted mean for 'mean')."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction("nll_loss", reduction)
    x, t, single = _class_input("nll_loss", input, target, ignore_index)
    _check_weight("nll_loss", x, weight, x.shape[1])
    loss = _class_nll(x, t, None if weight is None else weight.detach(),
                      ignore_index=ignore_index, reduction=reduction)
    return loss.reshape(()) if single and reduction == "none" else loss


@ops.batchable  # vmap: reads class indices' raw values
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits input (N, C, d1, ...) or (C,), like
    torch.nn.functional.cross_entropy: target holds integer class indices (N, d1, ...) or class
    probabilities of the input's shape. With indices, 'mean' is the weighted mean over targets
    that are not ignore_index, and label smoothing mixes in the uniform distribution with torch's
    weighting; with probabilities, 'mean' divides by N * d1 * ... and ignore_index is unused."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not isinstance(target, Tensor):
        target = creation.tensor(target, device=input.device)
    if target.dtype.kind == "f" and tuple(target.shape) == tuple(input.shape):
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    x, t, single = _class_input("cross_entropy", input, target, ignore_index)
    classes = x.shape[1]
    _check_weight("cross_entropy", x, weight, classes)
    if label_smoothing == 0:  # the common case: one op forward, one backward
        loss = _class_cross_entropy(x, t, None if weight is None else weight.detach(),
                                    ignore_index=ignore_index, reduction=reduction)
        return loss.reshape(()) if single and reduction == "none" else loss
    safe, w, valid = map(Tensor, _class_targets(
        t.array, None if weight is None else weight.array, ignore_index, x.dtype))
    logp = ops._log_softmax(x, dim=1)
    weighted = logp if weight is None else logp * _class_weights(weight, x.dtype, x.ndim, 1)
    smooth = ops.where(valid, -ops.sum(weighted, dim=1), 0)
    loss = (1 - label_smoothing) * (-_pick(logp, safe) * w) + (
        label_smoothing / classes) * smooth
    loss = ops.where(valid, loss, 0)  # an ignored target's NaN logits give 0, as in torch
    return _reduce_class_loss(loss, w, reduction, single)


def _class_weights(weight, dtype, ndim, class_dim):
    """weight (C,) shaped to broadcast along the class dim of an ndim-dim input."""
    return weight.detach().to(dtype).reshape((weight.shape[0],) + (1,) * (ndim - class_dim - 1))


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    class_dim = 0 if input.ndim == 1 else 1
    classes = input.shape[class_dim]
    _check_weight("cross_entropy", input, weight, classes)
    logp = ops._log_softmax(input, dim=class_dim)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = logp * target
    if weight is not None:
        terms = terms * _class_weights(weight, input.dtype, input.ndim, class_dim)
    if reduction == "none":
        return -ops.sum(terms, dim=class_dim)
    total = -ops.sum(terms)
    return total if reduction == "sum" else total / (math.prod(input.shape) / classes)


# ---- regression and binary losses ------------------------------------------------------------
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)^2, averaged or summed, like torch.nn.functional.mse_loss; with `weight`
    (input's shape) each term is weighted and 'mean' divides by the weights' sum, as torch's."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    pointwise_target("mse_loss", input, target, reduction, same_shape=False)
    diff = input - target
    return _weighted_reduction("mse_loss", diff * diff, input, weight, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|, averaged or summed, like torch.nn.functional.l1_loss (`weight` as in
    mse_loss)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    pointwise_target("l1_loss", input, target, reduction, same_shape=False)
    return _weighted_reduction("l1_loss", ops.abs(input - target), input, weight, reduction)


def _weighted_reduction(op, terms, input, weight, reduction):
    if weight is None:
        return apply_reduction(terms, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} must have the input's "
                         f"shape {tuple(input.shape)} (Weights and input must have the same "
                         f"size.)")
    terms = terms * weight
    if reduction == "none":
        return terms
    return ops.sum(terms) if reduction == "sum" else ops.sum(terms) / ops.sum(weight)


def _clamped_log(x):
    """log(x) clamped at -100, like torch's binary_cross_entropy (x == 0 gives -100 without a
    log(0) warning, and no gradient); NaN stays NaN (torch raises for it)."""
    zero = x <= 0
    return ops.where(zero, -100, ops.clamp(ops.log(ops.where(zero, 1, x)), min=-100))


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-w (t log x + (1 - t) log(1 - x)) for probabilities x, with each log clamped at -100, like
    torch.nn.functional.binary_cross_entropy (its signature, legacy flags included)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    pointwise_target("binary_cross_entropy", input, target, reduction, same_shape=True)
    loss = -(target * _clamped_log(input) + (1 - target) * _clamped_log(1 - input))
    return apply_reduction(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Binary cross entropy of sigmoid(input), computed from the logits without overflow as
    (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x), like torch; pos_weight weighs the
    positive class and broadcasts along the last (class) dim. torch's signature: pos_weight comes
    after the legacy size_average and reduce flags."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    pointwise_target("binary_cross_entropy_with_logits", input, target, reduction,
                      same_shape=True)
    log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input + log_weight * ops.softplus(-input, threshold=math.inf)
    return apply_reduction(loss if weight is None else loss * weight, reduction)


# ---- activations, attention and more norms: they live in their own files (this one is at its
# size budget); imported last because those modules import this one
from .activation import (celu, elu, gelu, glu, gumbel_softmax,  # noqa: E402,F401
                         hardshrink, hardsigmoid, hardswish, hardtanh, leaky_relu, log_softmax,
                         logsigmoid, mish, prelu, relu, relu6, rrelu, selu, sigmoid, silu,
                         softmax, softmin, softplus, softshrink, softsign, tanh, tanhshrink,
                         threshold)
from .attention import multi_head_attention_forward, scaled_dot_product_attention  # noqa: E402,F401
from .loss import (cosine_embedding_loss, ctc_loss, gaussian_nll_loss,  # noqa: E402,F401
                   hinge_embedding_loss, huber_loss, kl_div, margin_ranking_loss,
                   multi_margin_loss, multilabel_soft_margin_loss, poisson_nll_loss,
                   smooth_l1_loss, soft_margin_loss, triplet_margin_loss)
from .normalization import group_norm, rms_norm  # noqa: E402,F401

# ---- layers of issue 15 (conv, pooling, padding, resampling, norms, dropout, distances, bags):
# the maths lives beside the Modules in their own files (this one is at its size budget) or in
# gpuad.ops; imported last because those modules import this one
from ..ops import (adaptive_avg_pool1d, adaptive_avg_pool3d, adaptive_max_pool1d,  # noqa: E402,F401
                   adaptive_max_pool2d, adaptive_max_pool3d, avg_pool1d, avg_pool3d, conv1d,
                   conv3d, conv_transpose1d, conv_transpose3d, max_pool1d, max_pool3d)
from .distance import cosine_similarity, normalize, pairwise_distance  # noqa: E402,F401
from .dropout import (alpha_dropout, dropout1d, dropout2d, dropout3d,  # noqa: E402,F401
                      feature_alpha_dropout)
from .linear import bilinear  # noqa: E402,F401
from .normalization import instance_norm, local_response_norm  # noqa: E402,F401
from .pixelshuffle import pixel_shuffle, pixel_unshuffle  # noqa: E402,F401
from .sparse import embedding_bag  # noqa: E402,F401
from .upsampling import affine_grid, grid_sample, interpolate  # noqa: E402,F401


def __getattr__(name):
    raise deprecation.missing_name("gpuad.nn.functional", name)
