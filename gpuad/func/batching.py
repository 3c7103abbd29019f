"""Batched tensors and the batching rules vmap runs ops by (torch.func's BatchedTensor).

Inside vmap a tensor that differs per example is a BatchedTensor: it has one example's shape, and
its `_phys` holds the whole batch with the batch dim first (a plain Tensor, or the BatchedTensor
of an enclosing vmap: nesting is wrapping). A rule runs an op once on the whole batch: most ops
already broadcast over leading dims, so a rule moves the batch dim in front of the example's own
dims (padding ranks, shifting `dim` arguments) and calls the op; it answers NotImplemented when
it cannot, and vmap then loops over the examples. Rules return the batch (batch dim first).
"""
import math
import string

import numpy

from .. import backend, creation, ops
from ..tensor import Tensor


class BatchedArrayAccess(RuntimeError):
    """Something needed the raw values of a tensor batched by vmap."""


class BatchedTensor(Tensor):
    """One example's view of a batch inside vmap (shape, dtype and device are the example's);
    the raw array is out of reach, so data-dependent Python fails loudly, as in torch.func."""
    __slots__ = ("_phys", "_vlevel")

    def __init__(self, phys, level):
        self._phys, self._vlevel = phys, level
        self.grad, self._requires_grad, self._node, self._version = None, False, None, 0
        self._retains_grad, self._hooks = False, None

    @property
    def array(self):
        raise BatchedArrayAccess(
            f"vmap: this needs the values of a tensor batched by vmap (example shape "
            f"{tuple(self.shape)}, batch size {self._vlevel.size}): item(), bool(), tolist(), "
            f"numpy(), in-place writes and data-dependent control flow cannot run inside vmap, "
            f"as in torch.func.vmap; rewrite them with tensor ops (gpuad.where instead of if)")

    shape = property(lambda self: self._phys.shape[1:])
    dtype = property(lambda self: self._phys.dtype)
    ndim = property(lambda self: self._phys.ndim - 1)
    device = property(lambda self: self._phys.device)
    is_leaf = property(lambda self: self._phys.is_leaf)
    grad_fn = property(lambda self: self._phys.grad_fn)

    @property
    def requires_grad(self):
        return self._phys.requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        raise RuntimeError("vmap: requires_grad cannot be set on a batched tensor inside vmap; "
                           "differentiate inside vmap with gpuad.func.grad or vjp")

    @property
    def data(self):
        return BatchedTensor(self._phys.data, self._vlevel)

    def numel(self):
        return math.prod(self.shape)

    def detach(self):
        return BatchedTensor(self._phys.detach(), self._vlevel)

    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        raise RuntimeError("vmap: backward() cannot run inside vmap (each example has no graph "
                           "of its own); use gpuad.func.grad or gpuad.func.vjp inside vmap")

    def __repr__(self):
        return f"BatchedTensor(lvl={self._vlevel.depth + 1}, bdim=0, value=\n{self._phys!r})"


def ours(x, level):
    return isinstance(x, BatchedTensor) and x._vlevel is level


def _any_ours(values, level):
    return any(ours(v, level) or (type(v) in (list, tuple) and _any_ours(v, level))
               for v in values)


def front(x, level):
    """x's batch at `level`, batch dim first: its own, or x repeated (a broadcast view)."""
    if ours(x, level):
        return x._phys
    return ops.expand(ops.unsqueeze(x, 0), (level.size,) + tuple(x.shape))


def _padded(x, level, rank):
    """A batched x's batch with 1s inserted after the batch dim up to `rank` example dims, so
    broadcasting against unbatched tensors lines up the example dims."""
    n = x.ndim
    if n >= rank:
        return x._phys
    return ops.reshape(x._phys, (level.size,) + (1,) * (rank - n) + tuple(x.shape))


def _rank(a):
    if isinstance(a, Tensor):
        return a.ndim
    return 0 if a is None or isinstance(a, (int, float, complex)) else numpy.ndim(a)


def _checked(dim, n):
    if not -max(n, 1) <= dim < max(n, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(n, 1)}, "
                         f"{max(n, 1) - 1}], but got {dim})")
    return dim % n if n else 0


# ---- rules for primitives: rule(call, level, args, kwargs) -> the batch, or NotImplemented ------
def pointwise(call, level, args, kwargs):
    """Broadcasting ops (ops/elementwise.py, tril...): batched inputs padded to a common rank."""
    if _any_ours(kwargs.values(), level):
        return NotImplemented
    rank = max(map(_rank, args), default=0)
    return call(*(_padded(a, level, rank) if ours(a, level) else a for a in args), **kwargs)


def every_batched(call, level, args, kwargs):
    """Ops that want their batch dims alike (some linear algebra): every tensor input gets the
    batch dim, repeated where it was shared, and ranks are padded as for pointwise ops."""
    if _any_ours(kwargs.values(), level):
        return NotImplemented
    rank = max(map(_rank, args), default=0)
    return call(*(_padded(BatchedTensor(front(a, level), level), level, rank)
                  if isinstance(a, Tensor) else a for a in args), **kwargs)


def along_dim(call, level, args, kwargs, default=None):
    """Ops of one tensor and a `dim` (reductions, scans, sorting, softmax): the dims shift past
    the batch dim; dim=None (all dims) flattens each example first. `default`: the op's own
    default dim."""
    x = args[0]
    if not ours(x, level) or _any_ours(args[1:], level) or _any_ours(kwargs.values(), level):
        return NotImplemented
    n, p, size = x.ndim, x._phys, level.size
    dim = kwargs.get("dim", default)
    if dim is None or n == 0:
        if dim is not None:
            for d in dim if isinstance(dim, (tuple, list)) else (dim,):
                _checked(d, 0)
        out = call(ops.reshape(p, (size, -1)), *args[1:], **{**kwargs, "dim": 1})
        keep = kwargs.get("keepdim") and dim is None
        return ops.reshape(out, (size,) + (1,) * n * bool(keep))
    several = isinstance(dim, (tuple, list))
    dims = tuple(_checked(d, n) + 1 for d in (dim if several else (dim,)))
    return call(p, *args[1:], **{**kwargs, "dim": dims if several else dims[0]})


def stacked_first(call, level, args, kwargs):
    """Ops that stack their results along a new first dim (slogdet's sign and logabsdet)."""
    if not ours(args[0], level) or len(args) != 1:
        return NotImplemented
    out = call(args[0]._phys, **kwargs)
    return ops.permute(out, (1, 0) + tuple(range(2, out.ndim)))


def diagonal(call, level, args, kwargs):
    """diagonal and diagonal_scatter: dim1 and dim2 shift past the batch dim (the diagonal is
    appended last, so the batch dim stays first)."""
    x = args[0]
    n = x.ndim
    dims = {"dim1": _checked(kwargs.get("dim1", 0), n) + 1,
            "dim2": _checked(kwargs.get("dim2", 1), n) + 1}
    return call(*(front(a, level) for a in args), **{**kwargs, **dims})


def take_along(call, level, args, kwargs):
    """gather-like ops (x, index, dim=): both batched, the dim shifted."""
    x, index = args
    d = _checked(kwargs["dim"], x.ndim) + 1
    return call(front(x, level), front(index, level), **{**kwargs, "dim": d})


def scatter_add(call, level, args, kwargs):
    src, index = args
    d = _checked(kwargs["dim"], src.ndim) + 1
    return call(front(src, level), front(index, level),
                **{**kwargs, "dim": d, "shape": (level.size,) + tuple(kwargs["shape"])})


def reshape(call, level, args, kwargs):
    return call(args[0]._phys, shape=(level.size,) + tuple(kwargs["shape"]))


def expand(call, level, args, kwargs):
    shape = tuple(kwargs["shape"])
    return call(_padded(args[0], level, len(shape)), shape=(level.size,) + shape)


def permute(call, level, args, kwargs):
    x, n = args[0], args[0].ndim
    dims = tuple(kwargs["dims"])
    if len(dims) != n:
        return NotImplemented  # the op's own error, per example
    return call(x._phys, dims=(0,) + tuple(_checked(d, n) + 1 for d in dims))


def sum_to(call, level, args, kwargs):
    x, target = args[0], tuple(kwargs["shape"])
    p, extra = x._phys, x.ndim - len(target)
    if extra > 0:
        p = ops.sum(p, dim=tuple(range(1, extra + 1)))
    return call(p, shape=(level.size,) + target)


def _advanced(item):
    return isinstance(item, (Tensor, list)) or backend.is_array(item)


def _shifted_index(index):
    """(slice(None),) + index when numpy puts the result's dims where they were (basic items,
    or advanced ones side by side); None otherwise."""
    items = index if type(index) is tuple else (index,)
    if any(isinstance(i, (bool, numpy.bool_)) for i in items):
        return None
    arrays = any(map(_advanced, items))
    at = [k for k, i in enumerate(items) if _advanced(i) or (arrays and isinstance(i, int))]
    if at and at[-1] - at[0] + 1 != len(at):
        return None
    return (slice(None),) + items


def getitem_primitive(call, level, args, kwargs):
    index = _shifted_index(kwargs["index"])
    if index is None or not ours(args[0], level):
        return NotImplemented
    return call(args[0]._phys, **{**kwargs, "index": index})


def embed(call, level, args, kwargs):
    index = _shifted_index(kwargs["index"])
    if index is None or not ours(args[0], level):
        return NotImplemented
    return call(args[0]._phys, **{**kwargs, "index": index,
                                  "shape": (level.size,) + tuple(kwargs["shape"])})


def cat(call, level, args, kwargs):
    d = _checked(kwargs.get("dim", 0), args[0].ndim)
    return call(*(front(x, level) for x in args), **{**kwargs, "dim": d + 1})


def matmul(call, level, args, kwargs):
    """Vectors become matrices, batched operands are padded to a common rank, and the dims the
    vectors added are dropped from the product."""
    a, b = args
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or not a.ndim or not b.ndim:
        return NotImplemented
    size = level.size

    def matrix(x, at):
        if x.ndim != 1:
            return x
        shape = (1, x.shape[0]) if at == -2 else (x.shape[0], 1)
        return (BatchedTensor(ops.reshape(x._phys, (size,) + shape), level) if ours(x, level)
                else ops.reshape(x, shape))
    am, bm = matrix(a, -2), matrix(b, -1)
    rank = max(am.ndim, bm.ndim)
    out = call(*(_padded(x, level, rank) if ours(x, level) else x for x in (am, bm)))
    shape = list(out.shape)
    if b.ndim == 1:
        del shape[-1]
    if a.ndim == 1:
        del shape[-1 if b.ndim == 1 else -2]
    return ops.reshape(out, tuple(shape))


def linear(call, level, args, kwargs):
    """x @ weight.T + bias; a batched weight (per-example parameters) makes it a batched
    matrix product."""
    x, weight, bias = args
    if not ours(weight, level) and not ours(bias, level):
        return call(front(x, level), weight, bias) if ours(x, level) else NotImplemented
    size, lead = level.size, tuple(x.shape[:-1])
    w = front(weight, level)
    y = ops.matmul(ops.reshape(front(x, level), (size, -1, x.shape[-1])), ops.swapaxes(w, -1, -2))
    y = ops.reshape(y, (size,) + lead + (weight.shape[0],))
    if bias is not None:
        y = y + ops.reshape(front(bias, level), (size,) + (1,) * len(lead) + tuple(bias.shape))
    return y


def einsum(call, level, args, kwargs):
    """A new subscript for the batch dim, on the batched operands and in front of the output."""
    equation = kwargs["equation"].replace(" ", "")
    if "->" not in equation:
        return NotImplemented
    inputs, output = equation.split("->")
    letter = next(c for c in string.ascii_letters if c not in equation)
    terms = [letter + t if ours(x, level) else t for t, x in zip(inputs.split(","), args)]
    return call(*(x._phys if ours(x, level) else x for x in args),
                equation=",".join(terms) + "->" + letter + output)


def merge_first(call, level, args, kwargs):
    """Ops whose tensors all share a leading dim N and treat each of its entries alone (fused
    losses, pooling): the batch is folded into N. One tensor passed twice stays one."""
    tensors = [a for a in args if isinstance(a, Tensor)]
    if not tensors or any(t.ndim == 0 or t.shape[0] != tensors[0].shape[0] for t in tensors):
        return NotImplemented
    size, n = level.size, tensors[0].shape[0]
    merged = {}
    for a in tensors:
        if id(a) not in merged:
            merged[id(a)] = ops.reshape(front(a, level), (size * n,) + tuple(a.shape[1:]))
    out = call(*(merged[id(a)] if isinstance(a, Tensor) else a for a in args), **kwargs)
    return ops.reshape(out, (size, n) + tuple(out.shape[1:]))


def convolution(call, level, args, kwargs):
    """Convolutions of a batch (N, C, *spatial) with shared weights: the batch joins N."""
    x, weight, bias = args
    if ours(weight, level) or ours(bias, level) or not ours(x, level) or x.ndim != weight.ndim:
        return NotImplemented
    size = level.size
    out = call(ops.reshape(x._phys, (size * x.shape[0],) + tuple(x.shape[1:])), weight, bias,
               **kwargs)
    return ops.reshape(out, (size, x.shape[0]) + tuple(out.shape[1:]))


def _last_to(x, position):
    dims = list(range(x.ndim - 1))
    dims.insert(position % x.ndim, x.ndim - 1)
    return ops.permute(x, tuple(dims))


def im2col(call, level, args, kwargs):
    """Windows (N, C, *spatial) -> (C, *kernel, *out, N): the batch joins N, then leaves it."""
    x = args[0]
    if not ours(x, level):
        return NotImplemented
    size, n = level.size, x.shape[0]
    out = call(ops.reshape(x._phys, (size * n,) + tuple(x.shape[1:])), **kwargs)
    out = ops.reshape(out, tuple(out.shape[:-1]) + (size, n))
    return ops.permute(out, (out.ndim - 2,) + tuple(range(out.ndim - 2)) + (out.ndim - 1,))


def col2im(call, level, args, kwargs):
    """im2col's adjoint, (C, *kernel, *out, N) -> (N, C, *spatial), batched the same way."""
    cols, shape = args[0], tuple(kwargs["shape"])
    if not ours(cols, level):
        return NotImplemented
    size, n = level.size, shape[0]
    p = _last_to(ops.permute(cols._phys, tuple(range(1, cols.ndim + 1)) + (0,)), -2)
    p = ops.reshape(p, tuple(p.shape[:-2]) + (size * n,))
    out = call(p, **{**kwargs, "shape": (size * n,) + shape[1:]})
    return ops.reshape(out, (size, n) + tuple(out.shape[1:]))


def one_hot(call, level, args, kwargs):
    if kwargs.get("num_classes", -1) == -1:
        return NotImplemented  # the class count would depend on the whole batch
    return call(args[0]._phys, **kwargs)


# ---- rules for composites (they read raw index arrays, so their body cannot run batched) -------
def getitem(call, level, args, kwargs):
    """x[index]: basic and side-by-side advanced items shift past the batch dim; batched integer
    indices index the batch with an arange alongside."""
    if kwargs or len(args) != 2:
        return NotImplemented
    x, index = args
    items = index if type(index) is tuple else (index,)
    if not _any_ours(items, level):
        shifted = _shifted_index(index)
        return NotImplemented if shifted is None or not ours(x, level) else call(x._phys,
                                                                                  shifted)
    if any(i is None or i is Ellipsis or isinstance(i, (bool, numpy.bool_)) or
           (isinstance(i, Tensor) and i.dtype.kind == "b") for i in items):
        return NotImplemented
    at = [k for k, i in enumerate(items) if not isinstance(i, slice)]
    if at[-1] - at[0] + 1 != len(at):
        return NotImplemented
    rank = max(_rank(i) for i in items)
    physical = [_padded(i, level, rank) if ours(i, level) else i for i in items]
    arange = creation.arange(level.size, device=x.device)
    out = call(front(x, level), (ops.reshape(arange, (level.size,) + (1,) * rank),
                                 *physical))
    before = at[0]  # slices ahead of the indices: numpy put the index dims first, undo that
    if before == 0:
        return out
    adv = out.ndim - 1 - (x.ndim - len(at))  # the index dims, after the batch dim
    dims = (0,) + tuple(range(1 + adv, 1 + adv + before)) + tuple(range(1, 1 + adv)) + tuple(
        range(1 + adv + before, out.ndim))
    return ops.permute(out, dims)


def gather(call, level, args, kwargs):
    if kwargs or len(args) != 3:
        return NotImplemented
    x, dim, index = args
    return call(front(x, level), _checked(dim, x.ndim) + 1, front(index, level))


def index_select(call, level, args, kwargs):
    if kwargs or len(args) != 3 or not ours(args[0], level) or ours(args[2], level):
        return NotImplemented
    x, dim, index = args
    return call(x._phys, _checked(dim, x.ndim) + 1, index)


def _args(args, kwargs, names):
    """The values of the named parameters, given positionally or by keyword (None if absent)."""
    return [args[k] if k < len(args) else kwargs.get(n) for k, n in enumerate(names)]


def class_loss(call, level, args, kwargs):
    """cross_entropy and nll_loss: the batch folded into N with reduction='none', then each
    example reduced as the loss reduces (a weighted mean over the targets not ignored)."""
    x, target, weight = _args(args, kwargs, ("input", "target", "weight"))
    if not isinstance(target, Tensor) or ours(weight, level) or not x.ndim:
        return NotImplemented
    size, single = level.size, x.ndim == 1
    xb, tb = front(x, level), front(target, level)
    if not single:
        xb = ops.reshape(xb, (size * x.shape[0],) + tuple(x.shape[1:]))
        tb = ops.reshape(tb, (size * target.shape[0],) + tuple(target.shape[1:]))
    options = {k: v for k, v in kwargs.items() if k not in ("input", "target", "weight")}
    loss = call(xb, tb, weight, **{**options, "reduction": "none"})
    loss = ops.reshape(loss, (size,) + tuple(x.shape[:1] if not single else ()) +
                       tuple(loss.shape[1:]))
    reduction = kwargs.get("reduction", "mean")
    if reduction not in ("sum", "mean"):
        return loss
    dims = tuple(range(1, loss.ndim))
    total = ops.sum(loss, dim=dims) if dims else loss
    if reduction == "sum":
        return total
    if target.dtype.kind == "f":  # class probabilities: the mean over the examples' entries
        return total / max(1, math.prod(loss.shape[1:]))
    t = ops.reshape(tb, (size,) + tuple(target.shape))
    valid = t != kwargs.get("ignore_index", -100)
    w = ops.cast(valid, dtype=loss.dtype) if weight is None else ops.where(
        valid, ops.getitem(weight.detach(), ops.where(valid, t, 0)), 0)
    denominator = ops.sum(w, dim=dims) if dims else w
    return total / ops.where(denominator == 0, math.nan, denominator)


def class_entries(call, level, args, kwargs):
    """cross_entropy's and nll_loss's ops, per entry (reduction='none') with a shared weight:
    the batch joins N."""
    x, target, weight = _args(args, kwargs, ("x", "target", "weight"))
    if kwargs.get("reduction") != "none" or ours(weight, level) or not x.ndim:
        return NotImplemented
    return merge_first(lambda x, target: call(x, target, weight, **kwargs), level,
                       (x, target), {})


def layer_norm(call, level, args, kwargs):
    """Normalising over the trailing dims: the batch dim in front of x shifts them by one; a
    batched weight or bias is left to the loop."""
    x, weight, bias = _args(args, kwargs, ("x", "weight", "bias"))
    if not ours(x, level) or ours(weight, level) or ours(bias, level):
        return NotImplemented
    return call(x._phys, weight, bias, dims=tuple(d + 1 for d in kwargs["dims"]),
                eps=kwargs["eps"])


def embedding(call, level, args, kwargs):
    """Rows of the weight at the indices; a batched weight is indexed per example."""
    indices, weight, padding_idx = _args(args, kwargs, ("input", "weight", "padding_idx"))
    if not isinstance(indices, Tensor):
        return NotImplemented
    if not ours(weight, level):
        return call(indices._phys, weight, padding_idx) if ours(indices, level) else NotImplemented
    size, w, index = level.size, weight._phys, front(indices, level)
    arange = ops.reshape(creation.arange(size, device=w.device), (size,) + (1,) * indices.ndim)
    out = ops.getitem(w, (arange, index))
    if padding_idx is not None and w.requires_grad:  # the padding row gets no gradient
        row = padding_idx + weight.shape[0] if padding_idx < 0 else padding_idx
        out = ops.where(ops.unsqueeze(index == row, -1), out.detach(), out)
    return out


# Rules by op name. Every primitive of the pointwise families (POINTWISE_MODULES: that is those
# files' contract) takes the pointwise rule without a row here; see vmap.rule_for.
POINTWISE_MODULES = ("gpuad.ops.elementwise", "gpuad.ops.pointwise", "gpuad.ops.comparison")
RULES = {
    "tril": pointwise, "triu": pointwise, "one_hot": one_hot,
    # linear algebra on the last two dims, batched over the leading ones
    "_cholesky": pointwise, "_det": pointwise, "_eigvalsh": pointwise, "_svdvals": pointwise,
    "_inv": pointwise, "_matrix_exp": pointwise, "_solve_triangular": every_batched,
    "_slogdet": stacked_first,
    "sum": along_dim, "prod": along_dim, "amax": along_dim, "amin": along_dim, "any": along_dim,
    "all": along_dim, "argmax": along_dim, "argmin": along_dim, "logsumexp": along_dim,
    "var": along_dim, "_norm2": along_dim, "count_nonzero": along_dim, "nansum": along_dim,
    "cumsum": along_dim, "_cumsum_reverse": along_dim, "cumprod": along_dim,
    "logcumsumexp": along_dim, "_cumextremum_index": along_dim, "argsort": along_dim,
    "_kth_index": along_dim, "_topk_index": along_dim, "_median_index": along_dim,
    "_softmax": along_dim, "_log_softmax": along_dim, "_layer_norm": layer_norm,
    "_gather": take_along, "_pick": take_along, "_scatter_add": scatter_add,
    "reshape": reshape, "expand": expand, "permute": permute, "sum_to": sum_to,
    "diagonal": diagonal, "diagonal_scatter": diagonal,
    "_getitem": getitem_primitive, "_embed": embed, "_cat": cat,
    "matmul": matmul, "_linear": linear, "_einsum": einsum, "_convolution": convolution,
    "_im2col": im2col, "_col2im": col2im,
    "_class_cross_entropy": class_entries, "_class_nll": class_entries,
    "_softmax_nll_grad": merge_first,
    "_pool_gather": merge_first, "_pool_scatter": merge_first, "_pool_indices": merge_first,
    "_adaptive_max_indices": merge_first, "_nan_gradient": pointwise,
    "getitem": getitem, "gather": gather, "index_select": index_select,
    "cross_entropy": class_loss, "nll_loss": class_loss, "embedding": embedding,
}
