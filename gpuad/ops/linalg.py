"""Linear algebra: matmul (and its strict variants mm, bmm, mv, dot, outer) and einsum.

Two primitives carry every gradient: matmul, whose rule is two more matmuls on transposed views,
and _einsum, whose rule is one einsum per operand. einsum normalises its equation (ellipsis,
implicit output, size-1 broadcasting) before calling _einsum, so the primitive only ever sees
explicit equations with consistent sizes. Shape errors are ValueErrors naming the op and the
shapes.
"""
import functools
import math
import string

from .. import creation
from ..backend import xp_of
from ..backend.kernels import fused
from . import primitive, public
from . import elementwise as _elementwise
from . import shape as _shape


# CuPy refuses cuBLAS while a CUDA graph records (cupy/cupy#6290), so then 2-D float products run
# on gpuad's tiled kernel (backend/kernels.py), slower on big matrices, fine for small models.
@fused("matmul")
def _matmul_arrays(a, b):
    return a @ b


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
    g2 = g.reshape((_rows(g.shape), g.shape[-1]))
    gx = gw = gb = None
    if getattr(x, "requires_grad", False):
        gx = matmul(g2, weight).reshape(x.shape)
    if getattr(weight, "requires_grad", False):
        gw = matmul(g2.mT, x.reshape((_rows(x.shape), x.shape[-1])))
    if getattr(bias, "requires_grad", False):
        gb = g2.sum(0)
    return gx, gw, gb


@primitive(vjp=_linear_vjp, promote=True, autocast="lower")
def _linear(x, weight, bias):
    """x @ weight.T + bias (bias may be None) over any leading dims: F.linear's one op."""
    error = _linear_mismatch(tuple(x.shape), tuple(weight.shape),
                             None if bias is None else tuple(bias.shape))
    if error:
        raise ValueError(error)
    out = _matmul_arrays(x.reshape(_rows(x.shape), x.shape[-1]), weight.T)
    if bias is not None:
        out += bias
    return out.reshape(x.shape[:-1] + weight.shape[:1])


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
    # d/dx_k of einsum(subs -> out) is einsum(out, other subs -> subs[k]). A label repeated in
    # subs[k] (a diagonal) is renamed and tied back with an identity matrix; a label summed out of
    # x_k alone is absent from g and the others, so that gradient is broadcast along it afterwards.
    x = operands[k]
    unused = iter(c for c in _LETTERS if c not in "".join(subs) + out)
    terms = [(out, g)] + [(s, o) for i, (s, o) in enumerate(zip(subs, operands)) if i != k]
    target = []
    for label, n in zip(subs[k], x.shape):
        if label in target:
            fresh = next(unused)
            terms.append((label + fresh, creation.eye(n, dtype=g.dtype, device=g.device)))
            label = fresh
        target.append(label)
    have = set("".join(s for s, _ in terms))
    kept = "".join(c for c in target if c in have)
    gx = _einsum(*[t for _, t in terms], equation=",".join(s for s, _ in terms) + "->" + kept)
    if len(kept) < len(target):
        gx = gx.reshape(tuple(n if c in have else 1 for c, n in zip(target, x.shape)))
        gx = gx.expand(x.shape)
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
