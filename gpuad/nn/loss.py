"""Losses beyond cross entropy: their functional forms (nn.functional re-exports them) and every
torch.nn loss Module, with torch's signatures (legacy size_average/reduce included), reductions,
formulas and gradients.

All are composites of gpuad ops, written as torch's kernels compute them, so values, kinks and
overflow match (soft_margin_loss overflows where torch's does). ctc_loss runs the CTC forward
(alpha) recursion in log space, one step per time step, and its gradient is the composite's plus
the exp(log_probs) term torch's hand-written backward adds (see ctc_loss).
"""
import math
import warnings

import numpy

from .. import backend, creation, ops
from ..autograd import is_grad_enabled, no_grad
from ..backend import xp_of
from ..ops import primitive
from ..tensor import Tensor
from . import functional as F
from .checks import apply_reduction, check_reduction, legacy_reduction, pointwise_target
from .module import Module


def _reduce(name, loss, reduction):
    check_reduction(name, reduction)
    return apply_reduction(loss, reduction)


def _nan_gradient_vjp(g, y, x, mask):  # NaN where mask, to every order (as torch's, there)
    return ops.where(mask, g * math.nan, 0.0) + _nan_gradient(x, mask), None  # 0 even for NaN g


@primitive(vjp=_nan_gradient_vjp)
def _nan_gradient(x, mask):
    """Zeros like x whose gradient is NaN where mask: added where torch's autograd gives NaN (a
    0 * inf inside its formula), so that gradients match torch's."""
    return xp_of(x).zeros(numpy.broadcast_shapes(x.shape, mask.shape), dtype=x.dtype)


def _nan_where(mask, x):
    """0, or _nan_gradient when x needs a gradient."""
    if not (getattr(x, "requires_grad", False) and is_grad_enabled()):
        return 0.0
    return _nan_gradient(x, mask)


def _as_tensor(x, like):
    return x if isinstance(x, Tensor) else creation.tensor(x, dtype=like.dtype, device=like.device)


# ---- regression -------------------------------------------------------------------------------
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (d = input - target); beta=0 is the
    L1 loss, like torch.nn.functional.smooth_l1_loss."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    pointwise_target("smooth_l1_loss", input, target, reduction, same_shape=False)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must not be negative, got {beta}")
    d = input - target
    a = ops.abs(d)
    small = ops.where(a >= beta, 0.0, d)  # an inf stays out of the square's gradient, a NaN in
    loss = a if beta == 0 else ops.where(a < beta, 0.5 * small * small / beta, a - 0.5 * beta)
    return apply_reduction(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2), optionally times a weight of the
    input's shape, like torch.nn.functional.huber_loss."""
    pointwise_target("huber_loss", input, target, reduction, same_shape=False)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    d = input - target
    a = ops.abs(d)
    small = ops.where(a >= delta, 0.0, d)  # an inf stays out of the square's gradient, a NaN in
    loss = ops.where(a < delta, 0.5 * small * small, delta * (a - 0.5 * delta))
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):
            raise ValueError(f"huber_loss: weight of shape {tuple(weight.shape)} must have the "
                             f"input's shape {tuple(input.shape)}")
        loss = loss * weight
    return apply_reduction(loss, reduction)


def _xlogx(x):
    """x log x with 0 at x = 0 (torch.xlogy(x, x)); NaN for negative x, as there."""
    zero = x == 0
    return ops.where(zero, 0.0, x * ops.log(ops.where(zero, 1.0, x)))


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise KL divergence target (log target - input) for log-probabilities input, like
    torch.nn.functional.kl_div; log_target=True takes log-probabilities as targets too.
    'batchmean' divides the sum by the batch size (dim 0), the KL divergence proper; 'mean'
    divides by every element and warns, as torch does."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size and "
                      "the support size; 'batchmean' divides only by the batch size, and aligns "
                      "with the KL div math definition. 'mean' will be changed to behave the "
                      "same as 'batchmean' in the next major release of torch.", UserWarning,
                      stacklevel=2)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"kl_div: reduction must be 'none', 'mean', 'sum' or 'batchmean', got "
                         f"{reduction!r}")
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:  # torch differentiates xlogy(t, t) into t / t: NaN at t = 0
        loss = _xlogx(target) - target * input + _nan_where(target == 0, target)
    if reduction == "batchmean":
        total = ops.sum(loss)
        return total / input.shape[0] if input.ndim else total
    return apply_reduction(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Negative log likelihood of target under Poisson(rate): exp(input) - target * input for a
    log-rate input, input - target * log(input + eps) otherwise; full adds the Stirling term
    target log target - target + log(2 pi target) / 2 where target > 1, like torch."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction("poisson_nll_loss", reduction)
    if log_input:
        loss = ops.exp(input) - target * input
    else:
        loss = input - target * ops.log(input + eps)
    if full:
        small = target <= 1  # not NaN: a NaN target keeps its NaN term and gradient, as in torch
        t = ops.where(small, 2.0, target)  # the unused branch stays finite, and so its gradient
        stirling = t * ops.log(t) - t + 0.5 * ops.log(2 * math.pi * t)
        # torch masks after the logs, so a target <= 0 gets 0 * inf (or NaN): a NaN gradient
        loss = loss + ops.where(small, 0.0, stirling) + _nan_where(target <= 0, target)
    return apply_reduction(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log var + (input - target)^2 / var) (+ log(2 pi) / 2 when full), like
    torch.nn.functional.gaussian_nll_loss: var of the input's shape, or with its last dim (or one
    other dim) 1 or missing, or a float; clamped below at eps for the value only (the gradient
    passes as if unclamped, as torch's no_grad clamp_ lets it)."""
    check_reduction("gaussian_nll_loss", reduction)
    if not isinstance(var, Tensor):
        if var < 0:
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
        var = creation.full(tuple(input.shape), float(var), dtype=input.dtype,
                            device=input.device)
    elif bool(ops.any(var < 0)):  # a host read, as in torch
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    shape, vshape = tuple(input.shape), tuple(var.shape)
    if vshape != shape:
        if shape[:-1] == vshape:
            var = var.unsqueeze(-1)
        elif not (len(vshape) == len(shape) and
                  sum(v for n, v in zip(shape, vshape) if n != v) == 1):
            raise ValueError(f"gaussian_nll_loss: var of shape {vshape} is of incorrect size for "
                             f"input of shape {shape}: expected the input's shape, one dim 1, or "
                             f"the last dim missing")
    with no_grad():
        clamped = ops.clamp(var, min=eps)
    var = var + (clamped - var.detach())
    d = input - target
    loss = 0.5 * (ops.log(var) + d * d / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return apply_reduction(loss, reduction)


# ---- margins and embeddings -------------------------------------------------------------------
def _same_dims(name, *tensors):
    if len({t.ndim for t in tensors}) != 1:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"{name}: all inputs must have the same number of dims, got shapes "
                         f"{shapes}")


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 - cos(x1, x2) where target is 1, max(0, cos - margin) where it is -1, with cos over the
    last dim of (N, D) or (D,) inputs (eps 1e-12 in both squared norms, as torch)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise ValueError(f"cosine_embedding_loss: expected two inputs of the same shape (N, D) "
                         f"or (D,), got {tuple(input1.shape)} and {tuple(input2.shape)}")
    target = _as_tensor(target, input1)
    if target.ndim != input1.ndim - 1:
        raise ValueError(f"cosine_embedding_loss: target of shape {tuple(target.shape)} does not "
                         f"fit inputs of shape {tuple(input1.shape)}: expected "
                         f"{tuple(input1.shape[:-1])}")
    dim = input1.ndim - 1
    dot = ops.sum(input1 * input2, dim)
    norms = (ops.sum(input1 * input1, dim) + 1e-12) * (ops.sum(input2 * input2, dim) + 1e-12)
    cos = dot / ops.sqrt(norms)
    loss = (ops.where(target == 1, 1 - cos, 0.0) +
            ops.where(target == -1, ops.clamp(cos - margin, min=0), 0.0))
    return _reduce("cosine_embedding_loss", loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """max(0, -target (x1 - x2) + margin), like torch.nn.functional.margin_ranking_loss."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _as_tensor(target, input1)
    _same_dims("margin_ranking_loss", input1, input2, target)
    loss = ops.clamp(-target * (input1 - input2) + margin, min=0)
    return _reduce("margin_ranking_loss", loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """x where target is 1, max(0, margin - x) where it is -1 (both terms for other targets, as
    torch computes them)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _as_tensor(target, input)
    loss = (ops.where(target != 1, ops.clamp(margin - input, min=0), 0.0) +
            ops.where(target != -1, input, 0.0))
    return _reduce("hinge_embedding_loss", loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-target x)); computed as torch does, so it overflows to inf where torch's does
    (its gradient there is NaN in both)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    pointwise_target("soft_margin_loss", input, target, reduction, same_shape=False)
    return apply_reduction(ops.log1p(ops.exp(-input * target)), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """Binary cross entropy of sigmoid(x) per class, averaged over the classes (last dim) of
    (N, C) or (C,) inputs, optionally weighted per class, like torch."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction("multilabel_soft_margin_loss", reduction)
    # -(t logsigmoid(x) + (1 - t) logsigmoid(-x)), with logsigmoid(x) = -softplus(-x)
    loss = (target * ops.softplus(-input, threshold=math.inf) +
            (1 - target) * ops.softplus(input, threshold=math.inf))
    if weight is not None:
        loss = loss * weight
    loss = ops.sum(loss, input.ndim - 1) / input.shape[-1]
    return apply_reduction(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """Multi-class hinge loss: sum over the classes i != y of max(0, margin - x[y] + x[i])^p,
    times weight[y], divided by the number of classes, for (N, C) or (C,) inputs and class
    indices target; p is 1 or 2, like torch.nn.functional.multi_margin_loss."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction("multi_margin_loss", reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 are supported, got {p}")
    if weight is not None and weight.ndim != 1:
        raise ValueError(f"multi_margin_loss: weight must be one-dimensional, got shape "
                         f"{tuple(weight.shape)}")
    if input.ndim not in (1, 2) or 0 in input.shape[-1:]:
        raise ValueError(f"multi_margin_loss: expected a non-empty (N, C) or (C,) input, got "
                         f"shape {tuple(input.shape)}")
    single = input.ndim == 1
    x = input.unsqueeze(0) if single else input
    t = target if isinstance(target, Tensor) else creation.tensor(target, device=input.device)
    t = t.reshape((x.shape[0],))
    if t.dtype.kind not in "iu":
        raise TypeError(f"multi_margin_loss: target must hold integer class indices, got dtype "
                        f"{t.dtype}; convert it with .long()")
    classes, shape = x.shape[1], tuple(input.shape)  # a shape, not a tensor, in the message
    backend.check_indices(t.array, 0, classes, lambda bad: IndexError(
        f"multi_margin_loss: target class {bad} is out of range for input of shape "
        f"{shape} with {classes} classes"))
    index = t.unsqueeze(1)
    z = margin - ops.gather(x, 1, index) + x
    other = creation.arange(classes, device=x.device) != index
    active = (z > 0) & other
    hinge = ops.where(active, z, 0.0)
    terms = hinge if p == 1 else hinge * hinge
    if weight is not None:  # on the active terms only, as torch's kernel: no 0 * inf weight
        scale = ops.gather(weight.detach().to(x.dtype), 0, t).unsqueeze(1)
        terms = ops.where(active, terms * scale, 0.0)
    loss = ops.sum(terms, 1) / classes
    if reduction == "none":
        return loss.reshape(()) if single else loss
    return apply_reduction(loss, reduction)


def _pairwise_distance(x1, x2, p, eps):
    """torch.nn.functional.pairwise_distance: the p-norm of x1 - x2 + eps over the last dim."""
    return ops.norm(x1 - x2 + eps, p, max(x1.ndim, x2.ndim) - 1)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)) with d the p-norm distance of pairwise_distance; swap
    uses min(d(a, n), d(p, n)) as the negative distance, like torch."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction("triplet_margin_loss", reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0, got {margin}")
    _same_dims("triplet_margin_loss", anchor, positive, negative)
    if anchor.ndim not in (1, 2):
        raise ValueError(f"triplet_margin_loss: expected (N, D) or (D,) inputs, got shape "
                         f"{tuple(anchor.shape)}")
    d_pos = _pairwise_distance(anchor, positive, p, eps)
    d_neg = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = ops.minimum(d_neg, _pairwise_distance(positive, negative, p, eps))
    return apply_reduction(ops.clamp(margin + d_pos - d_neg, min=0), reduction)


# ---- connectionist temporal classification ----------------------------------------------------
def _host_lengths(what, lengths, batch):
    """Lengths as a host int64 array of one entry per sequence (torch reads them on the host
    too)."""
    if isinstance(lengths, Tensor):
        lengths = lengths.tolist()
    lengths = numpy.atleast_1d(numpy.asarray(lengths))
    if lengths.dtype.kind not in "iu" or lengths.shape != (batch,):
        raise ValueError(f"ctc_loss: {what} must hold {batch} integers, one per sequence, got "
                         f"{lengths.tolist()}")
    return lengths.astype(numpy.int64)


def _padded_targets(targets, target_lengths, batch, device):
    """Targets as an integer (N, S) tensor, S the longest target: from a padded (N, S_max)
    tensor, or cut out of the 1-D concatenation of all targets."""
    if not isinstance(targets, Tensor):
        targets = creation.tensor(numpy.asarray(targets, dtype=numpy.int64), device=device)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"ctc_loss: targets must be an integer tensor, got dtype "
                        f"{targets.dtype}; convert them with .long()")
    longest = int(target_lengths.max(initial=0))
    if targets.ndim == 2:
        if targets.shape[0] != batch or targets.shape[1] < longest:
            raise ValueError(f"ctc_loss: padded targets of shape {tuple(targets.shape)} do not "
                             f"fit a batch of {batch} with target_lengths "
                             f"{target_lengths.tolist()}")
        return targets[:, :longest]
    if targets.ndim != 1 or targets.shape[0] != target_lengths.sum():
        raise ValueError(f"ctc_loss: targets of shape {tuple(targets.shape)} are neither padded "
                         f"(N, S) nor the concatenation of all targets ("
                         f"{int(target_lengths.sum())} = sum(target_lengths) entries)")
    if targets.shape[0] == 0:
        return targets.reshape((batch, 0))
    starts = numpy.cumsum(target_lengths) - target_lengths
    index = numpy.minimum(starts[:, None] + numpy.arange(longest), targets.shape[0] - 1)
    return targets[creation.tensor(index, device=targets.device)]


def _extended_labels(padded, blank, batch, longest):
    """The CTC label sequence l' of every sample, (N, 2S + 1): blank, l1, blank, l2, ..., blank."""
    blanks = creation.full((batch, longest), blank, dtype=padded.dtype, device=padded.device)
    pairs = ops.stack([blanks, padded], -1).reshape((batch, 2 * longest))
    return ops.cat([pairs, blanks[:, :1] if longest else
                    creation.full((batch, 1), blank, dtype=padded.dtype, device=padded.device)], 1)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """Connectionist temporal classification loss of log_probs (T, N, C) (or (T, C) unbatched,
    log_softmax outputs) against targets padded (N, S) or concatenated (sum(target_lengths),),
    like torch.nn.functional.ctc_loss: the negative log of the summed probability of every
    alignment, per sequence; 'mean' divides each by its target length (at least 1) and then
    averages; zero_infinity turns the infinite losses of impossible alignments (and their
    gradients) into zeros.

    The alpha recursion runs in log space over time, vectorised over the batch and the extended
    labels. Its gradient is the exact one plus exp(log_probs) at every valid step, the term
    torch's backward adds (it assumes log_softmax inputs, whose own backward cancels it), so
    gradients equal torch's; like torch, an impossible alignment has NaN gradients unless
    zero_infinity."""
    check_reduction("ctc_loss", reduction)
    batched = log_probs.ndim == 3
    if log_probs.ndim not in (2, 3) or log_probs.dtype.kind != "f":
        raise ValueError(f"ctc_loss: expected floating log_probs of shape (T, N, C) or (T, C), "
                         f"got {log_probs.dtype} of shape {tuple(log_probs.shape)}")
    if not batched:
        log_probs = log_probs.unsqueeze(1)
        if isinstance(targets, Tensor) and targets.ndim == 1:
            targets = targets.unsqueeze(0)
    steps, batch, classes = log_probs.shape
    if steps == 0 or batch == 0:
        raise ValueError(f"ctc_loss: expected at least one time step and one sequence, got "
                         f"log_probs of shape {tuple(log_probs.shape)}")
    if not 0 <= blank < classes:
        raise ValueError(f"ctc_loss: blank {blank} is not a class of log_probs of shape "
                         f"{tuple(log_probs.shape)}; it must be in [0, {classes})")
    in_len = _host_lengths("input_lengths", input_lengths, batch)
    tg_len = _host_lengths("target_lengths", target_lengths, batch)
    if (in_len > steps).any() or (in_len < 0).any() or (tg_len < 0).any():
        raise ValueError(f"ctc_loss: input_lengths {in_len.tolist()} must be in [0, T={steps}] "
                         f"and target_lengths {tg_len.tolist()} non-negative")
    device, dtype = log_probs.device, log_probs.dtype
    longest = int(tg_len.max(initial=0))
    labels = _extended_labels(_padded_targets(targets, tg_len, batch, device), blank, batch,
                              longest)
    width = 2 * longest + 1
    # a label may follow the one two places back unless it is blank or a repeat
    skip = ops.cat([creation.zeros(batch, min(2, width), dtype=backend.bool_, device=device),
                    (labels[:, 2:] != blank) & (labels[:, 2:] != labels[:, :-2])], 1)
    emit = ops.gather(log_probs, 2, labels.unsqueeze(0).expand((steps, batch, width)))
    active = creation.tensor(numpy.arange(steps)[:, None, None] < in_len[:, None], device=device)
    frames = _unbind_steps(emit, int(in_len.max(initial=0)))
    alpha = ops.where(creation.arange(width, device=device) < 2, frames[0], -math.inf)
    for t in range(1, len(frames)):
        pad = creation.full((batch, min(2, width)), -math.inf, dtype=dtype, device=device)
        one_back = ops.cat([pad[:, :1], alpha[:, :-1]], 1)
        two_back = ops.where(skip, ops.cat([pad, alpha[:, :max(width - 2, 0)]], 1), -math.inf)
        step = _logsumexp_or_minus_inf(ops.stack([alpha, one_back, two_back], -1)) + frames[t]
        alpha = ops.where(active[t], step, alpha)  # finished sequences keep their last alpha
    last = creation.tensor(2 * tg_len[:, None], device=device)
    ends = [ops.gather(alpha, 1, last),
            ops.where(creation.tensor(tg_len[:, None] > 0, device=device),
                      ops.gather(alpha, 1, ops.clamp(last - 1, min=0)), -math.inf)]
    nll = -_logsumexp_or_minus_inf(ops.cat(ends, 1))  # the NaN gradients torch gives: below
    empty = in_len == 0  # no frames: probability 1 of the empty target, 0 of any other
    if empty.any():
        nll = ops.where(creation.tensor(empty, device=device),
                        creation.tensor(numpy.where(tg_len == 0, 0.0, math.inf), dtype=dtype,
                                        device=device), nll)
    recording = log_probs.requires_grad and is_grad_enabled()
    if recording:  # value 0: torch's extra exp(log_probs) gradient term
        probs = ops.exp(log_probs)
        # (a where, not a product with the mask: steps past a sequence's end get 0 even from a
        # NaN upstream gradient, as in torch's kernel)
        nll = nll + ops.sum(ops.where(active, probs - probs.detach(), 0.0), (0, 2))
    if zero_infinity:
        nll = ops.where(nll == math.inf, 0.0, nll)
    elif recording:  # torch's NaN gradients for the impossible alignments
        impossible = ops.isinf(nll.detach()).reshape((1, batch, 1)) & active
        nll = nll + ops.sum(_nan_gradient(log_probs, impossible), (0, 2))
    if reduction == "mean":
        divisor = creation.tensor(numpy.maximum(tg_len, 1), dtype=dtype, device=device)
        return ops.mean(nll / divisor)
    if reduction == "sum":
        return ops.sum(nll)
    return nll if batched else nll.reshape(())


def _logsumexp_or_minus_inf(x):
    """logsumexp over the last dim, whose rows of -inf (states no alignment reaches yet) give -inf
    with a zero gradient; logsumexp's is NaN there, as torch's."""
    dead = ops.all(x == -math.inf, dim=-1, keepdim=True)
    out = ops.logsumexp(ops.where(dead, 0.0, x), -1)
    return ops.where(dead.squeeze(-1), -math.inf, out)


def _unbind_steps(x, count):
    """x[0], ..., x[count - 1] by halving (as recurrent.py cuts steps), so that backward through
    the slices costs O(T log T), not O(T^2)."""
    if count <= 1:
        return [x[0]]
    half = count // 2
    return _unbind_steps(x[:half], half) + _unbind_steps(x[half:count], count - half)


# ---- Modules ----------------------------------------------------------------------------------
class _Loss(Module):
    """reduction 'mean', 'sum' or 'none'; the deprecated size_average and reduce, when given,
    decide it as in torch."""

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = legacy_reduction(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCELoss(_WeightedLoss):
    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class SmoothL1Loss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full,
                                eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                 reduction=self.reduction)


class _MarginLoss(_Loss):
    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin


class CosineEmbeddingLoss(_MarginLoss):
    def forward(self, input1, input2, target):
        return cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                     reduction=self.reduction)


class MarginRankingLoss(_MarginLoss):
    def forward(self, input1, input2, target):
        return margin_ranking_loss(input1, input2, target, margin=self.margin,
                                   reduction=self.reduction)


class HingeEmbeddingLoss(_MarginLoss):
    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(margin, size_average, reduce, reduction)

    def forward(self, input, target):
        return hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    def forward(self, input, target):
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    def forward(self, input, target):
        return multilabel_soft_margin_loss(input, target, weight=self.weight,
                                           reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 are supported, got {p}")
        self.p, self.margin = p, margin

    def forward(self, input, target):
        return multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                 reduction=self.reduction)


class TripletMarginLoss(_Loss):
    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: margin must be greater than 0, got {margin}")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                   eps=self.eps, swap=self.swap, reduction=self.reduction)


class CTCLoss(_Loss):
    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__(reduction=reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank,
                        self.reduction, self.zero_infinity)
