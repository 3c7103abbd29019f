"""Linear algebra: matmul (and its strict variants mm, bmm, mv, dot, outer), einsum, and the
products composed from them (addmm and friends, tensordot, kron, cross, cdist).

Two primitives carry every gradient: matmul, whose rule is two more matmuls on transposed views,
and _einsum, whose rule is one einsum per operand. einsum normalises its equation (ellipsis,
implicit output, size-1 broadcasting) before calling _einsum, so the primitive only ever sees
explicit equations with consistent sizes. Shape errors are ValueErrors naming the op and the
shapes.
"""
import functools
import math
import string
import warnings

import numpy as np

from .. import creation, ops
from ..backend import linalg as backend_linalg
from ..backend import xp_of
from ..backend.kernels import fused
from ..tensor import Tensor
from . import elementwise as _elementwise
from . import pointwise as _pointwise
from . import primitive, public
from . import reduce as _reduce
from . import shape as _shape


# CuPy refuses cuBLAS while a CUDA graph records (cupy/cupy#6290), so then 2-D float products run
# on gpuad's tiled kernel (backend/kernels.py), slower on big matrices, fine for small models.
# On numpy, backend.linalg.matmul splits the products OpenBLAS runs slowly.
@fused("matmul")
def _matmul_arrays(a, b):
    return backend_linalg.matmul(a, b)


# ---- matmul -------------------------------------------------------------------------------------
def _matmul_error(name, sa, sb):
    """The message for shapes that `name` cannot multiply, or None when they are compatible."""
    if not sa or not sb:
        return f"{name}: both arguments need to be at least 1-D, but got shapes {sa} and {sb}"
    ka, kb = sa[-1], sb[-2] if len(sb) > 1 else sb[0]
    if ka != kb:
        return (f"{name}: shapes {sa} and {sb} are not aligned: {ka} (dim -1 of a) != {kb} "
                f"(dim {-2 if len(sb) > 1 else 0} of b)")
    for m, n in zip(reversed(sa[:-2]), reversed(sb[:-2])):
        if m != n and m != 1 and n != 1:
            return (f"{name}: shapes {sa} and {sb} have batch dims {sa[:-2]} and {sb[:-2]} that do "
                    f"not broadcast")
    return None


def _matmul_vjp(g, y, a, b):
    # Promote 1-D operands to matrices (a: 1 x k, b: k x 1) and g to match, then
    # d(a @ b) = g @ b^T for a and a^T @ g for b; the engine sums broadcast batch dims away.
    a2 = a if a.ndim > 1 else a.reshape((1,) + a.shape)
    b2 = b if b.ndim > 1 else b.reshape(b.shape + (1,))
    if b.ndim == 1:
        g = g.reshape(g.shape + (1,))
    if a.ndim == 1:
        g = g.reshape(g.shape[:-1] + (1, g.shape[-1]))
    ga = gb = None
    if getattr(a, "requires_grad", False):
        ga = matmul(g, b2.mT)
        if a.ndim == 1:
            ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
    if getattr(b, "requires_grad", False):
        if b2.ndim == 2 and a2.ndim > 2:  # fold a's batch into one GEMM, not a (batch, k, n) sum
            gb = matmul(a2.reshape((_rows(a2.shape), a2.shape[-1])).mT,
                        g.reshape((_rows(g.shape), g.shape[-1])))
        else:
            gb = matmul(a2.mT, g)
        if b.ndim == 1:
            gb = gb.reshape(gb.shape[:-1])
    return ga, gb


@primitive(vjp=_matmul_vjp, promote=True, autocast="lower")
def matmul(a, b):
    """Matrix product with numpy/torch rules: 1-D operands are vectors, batch dims broadcast."""
    error = _matmul_error("matmul", getattr(a, "shape", ()), getattr(b, "shape", ()))
    if error:
        raise ValueError(error)
    if a.ndim > 2 and b.ndim <= 2:  # one GEMM over the folded batch, as torch.matmul does
        return _matmul_arrays(a.reshape(_rows(a.shape), a.shape[-1]), b).reshape(
            a.shape[:-1] + b.shape[1:])
    return _matmul_arrays(a, b)


def _rows(shape):
    return math.prod(shape[:-1])


def _as_matrix(a):
    """a with its leading dims folded into rows: a itself when it is a matrix already (the common
    case costs no reshape, and a gradient handed out stays a fresh array, not a view)."""
    return a if a.ndim == 2 else a.reshape(_rows(a.shape), a.shape[-1])


# ---- linear (x @ W.T + b in one op, like torch's addmm) -----------------------------------------
def _linear_mismatch(sx, sw, sb):
    """Why linear cannot combine these shapes, in words, or None."""
    if len(sw) != 2:
        return f"linear: weight must have shape (out_features, in_features), got {sw}"
    if not sx or sx[-1] != sw[1]:
        return (f"linear: input of shape {sx} does not fit weight of shape {sw} "
                f"(out_features, in_features): expected {sw[1]} features in the input's last dim")
    if sb is not None and sb != (sw[0],):
        return (f"linear: bias of shape {sb} does not fit weight of shape {sw}; "
                f"expected ({sw[0]},)")
    return None


def _linear_vjp(g, y, x, weight, bias):
    # Leading dims fold into rows. The weight's gradient is g^T x computed as one GEMM into a fresh
    # (out, in) array: matmul on weight.T would hand back a transposed view the engine must copy.
    if ops.plain_backward() and g.array.dtype.kind == "f":
        return _linear_grads(g, x, weight, bias)
    g2 = g.reshape((_rows(g.shape), g.shape[-1]))
    gx = gw = gb = None
    if getattr(x, "requires_grad", False):
        gx = matmul(g2, weight).reshape(x.shape)
    if getattr(weight, "requires_grad", False):
        gw = matmul(g2.mT, x.reshape((_rows(x.shape), x.shape[-1])))
    if getattr(bias, "requires_grad", False):
        gb = g2.sum(0)
    return gx, gw, gb


def _linear_grads(g, x, weight, bias):
    """_linear_vjp in a plain backward (nothing records): the same products and sum on the raw
    arrays, without the bookkeeping of six ops per layer."""
    g2 = _as_matrix(g.array)
    gx = gw = gb = None
    if getattr(x, "requires_grad", False):
        gx = _matmul_arrays(g2, weight.array)
        gx = Tensor(gx if x.ndim == 2 else gx.reshape(x.shape))
    if getattr(weight, "requires_grad", False):
        gw = Tensor(_matmul_arrays(g2.T, _as_matrix(x.array)))
    if getattr(bias, "requires_grad", False):
        gb = Tensor(g2.sum(0))
    return gx, gw, gb


@primitive(vjp=_linear_vjp, promote=True, autocast="lower")
def _linear(x, weight, bias):
    """x @ weight.T + bias (bias may be None) over any leading dims: F.linear's one op."""
    # shapes are tuples for every array type (a trace's too): no tuple() copies on this path
    error = _linear_mismatch(x.shape, weight.shape, None if bias is None else bias.shape)
    if error:
        raise ValueError(error)
    out = _matmul_arrays(_as_matrix(x), weight.T)
    if bias is not None:
        out += bias
    return out if x.ndim == 2 else out.reshape(x.shape[:-1] + weight.shape[:1])


def _require(name, a, b, ndim_a, ndim_b, what):
    if a.ndim != ndim_a or b.ndim != ndim_b:
        raise ValueError(f"{name}: expected {what}, but got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    error = _matmul_error(name, tuple(a.shape), tuple(b.shape))
    if error:
        raise ValueError(error)


@public
def mm(a, b):
    """Matrix times matrix, 2-D only (torch.mm); use matmul for broadcasting."""
    _require("mm", a, b, 2, 2, "two 2-D matrices")
    return matmul(a, b)


@public
def bmm(a, b):
    """Batched matrix product of (B, n, k) and (B, k, m), without broadcasting (torch.bmm)."""
    _require("bmm", a, b, 3, 3, "two 3-D batches of matrices")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: batch sizes differ: {a.shape[0]} and {b.shape[0]} (shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}); bmm does not broadcast, "
                         f"matmul does")
    return matmul(a, b)


@public
def mv(a, b):
    """Matrix times vector, (n, k) @ (k,) -> (n,) (torch.mv)."""
    _require("mv", a, b, 2, 1, "a 2-D matrix and a 1-D vector")
    return matmul(a, b)


@public
def dot(a, b):
    """Inner product of two 1-D tensors of the same length, a 0-d result (torch.dot)."""
    _require("dot", a, b, 1, 1, "two 1-D tensors")
    return matmul(a, b)


@public
def outer(a, b):
    """Outer product of two 1-D tensors, (n,) x (m,) -> (n, m) (torch.outer)."""
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: expected two 1-D tensors, but got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return _elementwise.mul(_shape.reshape(a, (a.shape[0], 1)), b)


# ---- einsum -------------------------------------------------------------------------------------
_LETTERS = string.ascii_uppercase + string.ascii_lowercase  # the labels numpy and CuPy accept


def _einsum_operand_grad(g, operands, subs, out, k):
    # d/dx_k of einsum(subs -> out) is einsum(out, other subs -> subs[k]). A label summed out of
    # x_k alone is absent from g and the others, so that gradient is broadcast along it afterwards;
    # so is a label repeated in subs[k] (a diagonal), renamed, and then everything off the
    # diagonal is set to 0 (a where, not a product with an identity: a NaN in g stays on it).
    x = operands[k]
    unused = iter(c for c in _LETTERS if c not in "".join(subs) + out)
    terms = [(out, g)] + [(s, o) for i, (s, o) in enumerate(zip(subs, operands)) if i != k]
    target, diagonals = [], []
    for axis, (label, n) in enumerate(zip(subs[k], x.shape)):
        if label in target:
            diagonals.append((target.index(label), axis, n))
            label = next(unused)
        target.append(label)
    have = set("".join(s for s, _ in terms))
    kept = "".join(c for c in target if c in have)
    gx = _einsum(*[t for _, t in terms], equation=",".join(s for s, _ in terms) + "->" + kept)
    if len(kept) < len(target):
        gx = gx.reshape(tuple(n if c in have else 1 for c, n in zip(target, x.shape)))
        gx = gx.expand(x.shape)
    for first, axis, n in diagonals:
        on = creation.eye(n, dtype=g.dtype, device=g.device) != 0
        gx = _elementwise.where(on.reshape(tuple(n if d in (first, axis) else 1
                                                 for d in range(x.ndim))), gx, 0)
    return gx


def _einsum_vjp(g, y, *operands, equation):
    lhs, out = equation.split("->")
    subs = lhs.split(",")
    return tuple(_einsum_operand_grad(g, operands, subs, out, k)
                 if getattr(x, "requires_grad", False) else None for k, x in enumerate(operands))


@primitive(vjp=_einsum_vjp, promote=True, autocast="lower")
def _einsum(*operands, equation):
    """einsum on an explicit equation ('ij,jk->ik': no ellipsis, sizes already consistent)."""
    return xp_of(operands[0]).einsum(equation, *operands, optimize=len(operands) > 1)


@functools.lru_cache(maxsize=256)  # a training loop parses the same few equations every step
def _parse_einsum(equation, shapes):
    """(subscripts per operand, output subscripts) with '...' replaced by unused labels."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} has {len(subs)} operand(s) but "
                         f"{len(shapes)} tensor(s) were given")
    if "->" in out or any(c not in _LETTERS and c not in ".," for c in lhs + out):
        raise ValueError(f"einsum: invalid equation {equation!r}; use letters a-z, A-Z, ',', "
                         f"'...' and at most one '->'")
    unused = [c for c in _LETTERS if c not in eq]
    ellipsis = max((len(s) - len(sub) + 3 for sub, s in zip(subs, shapes) if "..." in sub),
                   default=0)
    if ellipsis > len(unused):
        raise ValueError(f"einsum: too many dimensions for the labels left in {equation!r}")
    batch = "".join(unused[:ellipsis])
    for i, (sub, shape) in enumerate(zip(subs, shapes)):
        named = len(sub) - 3 if "..." in sub else len(sub)
        if sub.count(".") not in (0, 3) or "." in sub.replace("...", "") or (
                "..." in sub and len(shape) < named) or ("..." not in sub and len(shape) != named):
            raise ValueError(f"einsum: operand {i} has shape {tuple(shape)}, which its subscripts "
                             f"{sub!r} do not describe")
        subs[i] = sub.replace("...", batch[ellipsis - (len(shape) - named):])
    if not arrow:  # implicit output: batch dims, then the labels used once, in alphabetical order
        labels = "".join(subs)
        out = batch + "".join(sorted(c for c in set(labels)
                                     if labels.count(c) == 1 and c not in batch))
    else:
        if out.count(".") not in (0, 3) or "." in out.replace("...", ""):
            raise ValueError(f"einsum: invalid output subscripts in {equation!r}")
        out = out.replace("...", batch)
        for c in out:
            if out.count(c) > 1 or not any(c in s for s in subs):
                raise ValueError(f"einsum: output label {c!r} in {equation!r} must appear exactly "
                                 f"once in the output and at least once in the inputs")
    return tuple(subs), out


@public
def einsum(equation, *operands):
    """Einstein summation like torch.einsum: einsum('ij,jk->ik', a, b) or einsum('ij,jk', [a, b]);
    '...' broadcasts batch dims, size-1 dims broadcast against the same label, an equation
    without '->' sums the labels that appear more than once."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: at least one operand is required")
    if not isinstance(equation, str):
        raise TypeError("einsum: expected the equation first, as in einsum('ij,jk->ik', a, b); "
                        "the sublist form einsum(a, [0, 1], b, [1, 2]) is not supported")
    subs, out = _parse_einsum(equation, tuple(tuple(x.shape) for x in operands))
    subs = list(subs)
    size = {}
    for i, (sub, x) in enumerate(zip(subs, operands)):
        for c, n in zip(sub, x.shape):
            if size.get(c, 1) == 1:
                size[c] = n
            elif n != 1 and n != size[c]:
                raise ValueError(f"einsum: label {c!r} has size {size[c]} elsewhere but {n} in "
                                 f"operand {i} (shape {tuple(x.shape)}) in {equation!r}")
    operands = list(operands)
    for i, (sub, x) in enumerate(zip(subs, operands)):
        drop = [j for j, (c, n) in enumerate(zip(sub, x.shape)) if n == 1 and size[c] != 1]
        if drop:  # a size-1 dim broadcasts: the operand simply does not depend on that label
            subs[i] = "".join(c for j, c in enumerate(sub) if j not in drop)
            operands[i] = _shape.reshape(x, tuple(n for j, n in enumerate(x.shape)
                                                  if j not in drop))
    return _einsum(*operands, equation=",".join(subs) + "->" + out)


# ---- products built on matmul and broadcasting --------------------------------------------------
@public
def t(x):
    """The transpose of a matrix; 0-d and 1-d tensors come back as they are (torch.t)."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions, but self is {x.ndim}D (shape "
                         f"{tuple(x.shape)}); use .mT or .transpose(dim0, dim1)")
    return _shape.swapaxes(x, 0, 1) if x.ndim == 2 else x


def keep_first(kept, ignored):
    """`kept` broadcast against `ignored`, which gets a zero gradient and whose nan and inf do not
    propagate."""
    return _elementwise.where(creation.tensor(True, device=kept.device), kept, ignored)


def _add_product(name, input, product, beta, alpha):
    """beta * input + alpha * product, with torch's rule that beta = 0 ignores input (its nan and
    inf do not propagate; its gradient is g * 0: zero, or NaN where g is NaN)."""
    shape = tuple(product.shape)
    try:
        broadcast = tuple(np.broadcast_shapes(tuple(input.shape), shape))
    except ValueError:
        broadcast = None
    if broadcast != shape:
        raise ValueError(f"{name}: input of shape {tuple(input.shape)} does not broadcast to the "
                         f"product's shape {shape}")
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product + _pointwise.nan_to_num(input, nan=0.0, posinf=0.0, neginf=0.0) * beta
    return (input if beta == 1 else input * beta) + product


@public
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2) for 2-D mat1 and mat2 (torch.addmm)."""
    return _add_product("addmm", input, mm(mat1, mat2), beta, alpha)


@public
def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec) for a 2-D mat and a 1-D vec (torch.addmv)."""
    return _add_product("addmv", input, mv(mat, vec), beta, alpha)


@public
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2) (torch.baddbmm)."""
    return _add_product("baddbmm", input, bmm(batch1, batch2), beta, alpha)


@public
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * sum_b batch1[b] @ batch2[b] (torch.addbmm), as one GEMM over the
    batch folded into the inner dim."""
    _require("addbmm", batch1, batch2, 3, 3, "two 3-D batches of matrices")
    if batch1.shape[0] != batch2.shape[0]:
        raise ValueError(f"addbmm: batch sizes differ: {batch1.shape[0]} and {batch2.shape[0]} "
                         f"(shapes {tuple(batch1.shape)} and {tuple(batch2.shape)})")
    b, n, k = batch1.shape
    folded = _shape.reshape(_shape.permute(batch1, dims=(1, 0, 2)), (n, b * k))
    product = matmul(folded, _shape.reshape(batch2, (b * k, batch2.shape[2])))
    return _add_product("addbmm", input, product, beta, alpha)


@public
def kron(a, b):
    """The Kronecker product (torch.kron): the smaller-rank input gains leading size-1 dims."""
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    a = _shape.reshape(a, tuple(n for d in sa for n in (d, 1)))
    b = _shape.reshape(b, tuple(n for d in sb for n in (1, d)))
    return _shape.reshape(_elementwise.mul(a, b), tuple(x * y for x, y in zip(sa, sb)))


def _tensordot_dims(a, b, dims):
    if isinstance(dims, int):
        if dims < 0 or dims > min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: dims={dims} must be between 0 and the smaller rank "
                             f"({a.ndim} and {b.ndim})")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        if hasattr(dims, "tolist"):
            dims = dims.tolist()
        if not isinstance(dims, (tuple, list)) or len(dims) != 2:
            raise ValueError(f"tensordot: dims must be an int or a pair of lists of dims, got "
                             f"{dims!r}")
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(da) != len(db):
        raise ValueError(f"tensordot: both lists of dims must have the same length, got {da} and "
                         f"{db}")
    da = [d + a.ndim if d < 0 else d for d in da]
    db = [d + b.ndim if d < 0 else d for d in db]
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise ValueError(f"tensordot: contracted dimensions need to match, but first has size "
                             f"{a.shape[i]} in dim {i} and second has size {b.shape[j]} in dim "
                             f"{j} (shapes {tuple(a.shape)} and {tuple(b.shape)})")
    return da, db


@public
def tensordot(a, b, dims=2):
    """Sum over dims of a against dims of b (torch.tensordot): dims=n pairs a's last n dims with
    b's first n; dims=([...], [...]) names them. One GEMM on permuted, reshaped operands."""
    da, db = _tensordot_dims(a, b, dims)
    free_a = [d for d in range(a.ndim) if d not in da]
    free_b = [d for d in range(b.ndim) if d not in db]
    size = math.prod(a.shape[d] for d in da)
    a2 = _shape.reshape(_shape.permute(a, dims=tuple(free_a + da)),
                        (math.prod(a.shape[d] for d in free_a), size))
    b2 = _shape.reshape(_shape.permute(b, dims=tuple(db + free_b)),
                        (size, math.prod(b.shape[d] for d in free_b)))
    return _shape.reshape(matmul(a2, b2), tuple(a.shape[d] for d in free_a)
                          + tuple(b.shape[d] for d in free_b))


def _cross(name, a, b, dim):
    shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    a, b = _shape.expand(a, shape=shape), _shape.expand(b, shape=shape)
    d = dim + len(shape) if dim < 0 else dim
    if not 0 <= d < len(shape) or shape[d] != 3:
        raise ValueError(f"{name}: inputs dimension {dim} must have length 3. Got "
                         f"{a.shape[d] if 0 <= d < len(shape) else None} (shape {shape})")

    def part(x, i):
        return x[(slice(None),) * d + (slice(i, i + 1),)]
    a0, a1, a2 = (part(a, i) for i in range(3))
    b0, b1, b2 = (part(b, i) for i in range(3))
    return _shape.cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


@public
def linalg_cross(a, b, *, dim=-1):
    """The cross product of 3-vectors along dim, broadcasting a and b (torch.linalg.cross)."""
    return _cross("linalg.cross", a, b, dim)


@public
def cross(a, b, dim=None):
    """torch.cross: like linalg.cross, but dim=None (deprecated in torch, which warns) means the
    first dim of size 3."""
    if dim is None:
        shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
        dim = next((i for i, n in enumerate(shape) if n == 3), None)
        if dim is None:
            raise ValueError(f"cross: no dimension of size 3 in input (shape {shape})")
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated. Please "
                      "either pass the dim explicitly or simply use linalg.cross.",
                      UserWarning, stacklevel=3)
    return _cross("cross", a, b, dim)


@public
def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distance between each row of x1 (..., P, M) and each row of x2 (..., R, M),
    (..., P, R) (torch.cdist; compute_mode is accepted and ignored: always the exact pairwise
    difference, which takes P * R * M memory)."""
    if x1.ndim < 2 or x2.ndim < 2:
        raise ValueError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D, X2 got: "
                         f"{x2.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"cdist: X1 and X2 must have the same number of columns. X1: "
                         f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise ValueError(f"cdist only supports non-negative p values, got {p}")
    diff = _shape.unsqueeze(x1, -2) - _shape.unsqueeze(x2, -3)
    return _reduce.norm(diff, p, -1)


@public
def linalg_vecdot(x, y, *, dim=-1):
    """The dot product of vectors along dim, broadcasting x and y (torch.linalg.vecdot)."""
    return _reduce.sum(_elementwise.mul(x, y), dim=dim)


@public
def linalg_multi_dot(tensors):
    """The product of a chain of matrices (torch.linalg.multi_dot): the first may be a row vector
    and the last a column vector (1-D), the others 2-D."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise ValueError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    shapes = [tuple(t.shape) for t in tensors]
    if (any(len(s) != 2 for s in shapes[1:-1]) or len(shapes[0]) not in (1, 2)
            or len(shapes[-1]) not in (1, 2)):
        raise ValueError(f"multi_dot(): the first and last tensors must be 1-D or 2-D and the "
                         f"others 2-D, got shapes {shapes}")
    out = tensors[0]
    for t in tensors[1:]:  # left to right: the same result as torch's cheapest order, up to
        out = matmul(out, t)  # rounding
    return out
