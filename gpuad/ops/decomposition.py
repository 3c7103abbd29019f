"""Matrix decompositions and what is built on them: det, slogdet, cholesky, qr, svd, svdvals, eigh,
eigvalsh, pinv and lstsq, with torch.linalg's signatures and gradients
(FunctionsManual.cpp's formulas, gauge terms included).

One output per primitive: a factorisation's factors leave its primitive packed side by side in one
array (each factor's matrix dims flattened) and are sliced apart by the public function, so the
rule sees every factor's gradient at once; a factor the loss never used brings a zero gradient.
Where torch skips such a term, a zero numerator over a zero gap counts as zero here (_safe_div),
so unused factors cost nothing but work, while a used one at a degenerate point gives torch's inf.
"""
import collections
import math

import numpy

from .. import backend, creation
from ..backend import xp_of
from . import elementwise as _ew
from . import linalg as _linalg
from . import primitive, public
from . import reduce as _reduce
from . import shape as _shape
from . import solve as _solvers
from .solve import eye_like, is_vector_rhs, matrix_input, same_dtype

_matmul = _linalg.matmul

# torch.return_types' names and fields
SlogdetResult = collections.namedtuple("linalg_slogdet", "sign logabsdet")
QRResult = collections.namedtuple("linalg_qr", "Q R")
SVDResult = collections.namedtuple("linalg_svd", "U S Vh")
EighResult = collections.namedtuple("linalg_eigh", "eigenvalues eigenvectors")
LstsqResult = collections.namedtuple("linalg_lstsq", "solution residuals rank singular_values")
TorchSVDResult = collections.namedtuple("svd", "U S V")


# ---- packing several factors into one output ----------------------------------------------------
def _pack(batch, *arrays):
    xp = xp_of(arrays[0])
    flat = [a.reshape(batch + (math.prod(a.shape[len(batch):]),)) for a in arrays]
    return xp.concatenate(flat, axis=-1)


def _unpack(packed, batch, cores):
    parts, start = [], 0
    for core in cores:
        size = math.prod(core)
        parts.append(packed[..., start:start + size].reshape(batch + core))
        start += size
    return parts


def _safe_div(num, den):
    """num / den, except that 0 / 0 is 0 (a term torch leaves out when its gradient is undefined);
    x / 0 stays inf as in torch."""
    return num / _ew.where((num == 0) & (den == 0), 1, den)


def _diag_embed(v):
    return _shape.unsqueeze(v, -1) * eye_like(v.shape[-1], v)


def _off_diagonal_gaps(values):
    """E[..., j, k] = values[k] - values[j], with ones on the diagonal."""
    gaps = _shape.unsqueeze(values, -2) - _shape.unsqueeze(values, -1)
    return _ew.where(eye_like(values.shape[-1], values) == 1, 1, gaps)


def _skew(x):
    return x - x.mT


# ---- det, slogdet --------------------------------------------------------------------------------
def _prod_of_others(s):
    """prod_{j != i} s_j for each i, exact when some s_j are zero."""
    n = s.shape[-1]
    others = _ew.where(eye_like(n, s) == 1, 1, _shape.unsqueeze(s, -2))
    return _reduce.prod(others, dim=-1)


def _det_adjugate(a, g):
    # g * adj(A)^T from the SVD, valid for singular A (torch's singular branch; Higham 2020)
    u, s, vh = linalg_svd(a)
    alpha = _det(u) * _det(vh) * g
    return _matmul(u * _shape.unsqueeze(_shape.unsqueeze(alpha, -1) * _prod_of_others(s), -2), vh)


def _det_vjp(g, y, a):
    if a.numel() == 0:
        return (a * 0,)
    n = a.shape[-1]
    d = _shape.unsqueeze(_shape.unsqueeze(g * y, -1), -1) * eye_like(n, a)
    singular = y.abs() < 100 * numpy.finfo(a.dtype).eps
    if not singular.any().item():  # d det = det * A^-T, torch's usual branch
        return (_solvers._solve(a.mT, d),)
    mask = _shape.unsqueeze(_shape.unsqueeze(singular, -1), -1)
    eye = eye_like(n, a)
    regular = _solvers._solve(_ew.where(mask, eye, a).mT, d)
    return (_ew.where(mask, _det_adjugate(_ew.where(mask, a, eye), g), regular),)


@primitive(vjp=_det_vjp, autocast="float32")
def _det(a):
    """The determinant of each matrix of a (..., n, n) stack."""
    return xp_of(a).linalg.det(a)


@public
def det(A):
    """The determinant of a square matrix or a batch of them (torch.det, torch.linalg.det); the
    gradient at a (numerically) singular matrix is the adjugate, from the SVD, as torch computes
    it under create_graph."""
    return _det(matrix_input("linalg.det", A))


def _slogdet_vjp(g, y, a):
    # the sign is locally constant: only logabsdet has a gradient, A^-T (torch raises nothing at
    # a singular matrix and returns inf; the solve here raises LinAlgError instead)
    d = _shape.unsqueeze(_shape.unsqueeze(g[1], -1), -1) * eye_like(a.shape[-1], a)
    return (_solvers._solve(a.mT, d),)


@primitive(vjp=_slogdet_vjp, autocast="float32")
def _slogdet(a):
    """sign and log|det| of each matrix of a (..., n, n) stack, stacked along a new first dim."""
    sign, logabsdet = xp_of(a).linalg.slogdet(a)
    return xp_of(a).stack([sign, logabsdet])


@public
def slogdet(A):
    """(sign, logabsdet) of the determinant, like torch.linalg.slogdet (and torch.slogdet)."""
    packed = _slogdet(matrix_input("linalg.slogdet", A))
    return SlogdetResult(packed[0], packed[1])


@public
def logdet(A):
    """log(det(A)): nan where det < 0 and -inf where it is 0, like torch.logdet."""
    sign, logabsdet = slogdet(A)
    return _ew.where(sign < 0, math.nan, logabsdet)


# ---- cholesky ------------------------------------------------------------------------------------
def _cholesky_vjp(g, l, a, *, upper):
    # Murray (2016), torch's cholesky_backward: gA = L^-T Phi(L^T gL) L^-1, symmetrised
    if upper:
        l, g = l.mT, g.mT
    ga = _shape.tril(_matmul(l.mT, g))
    ga = 0.5 * (ga + _shape.tril(ga, diagonal=-1).mT)
    ga = _solvers._solve_triangular(l.mT, ga, upper=True)
    return (_solvers._solve_triangular(l.mT, ga.mT, upper=True).mT,)


@primitive(vjp=_cholesky_vjp, autocast="float32")
def _cholesky(a, *, upper=False):
    """The Cholesky factor of each matrix of a (..., n, n) stack (only its lower triangle read)."""
    l = backend.linalg.cholesky(a)
    return l.swapaxes(-1, -2) if upper else l


@public
def cholesky(A, upper=False):
    """L with A = L L^T (U with A = U^T U for upper=True) for symmetric positive-definite A, like
    torch.linalg.cholesky and torch.cholesky; LinAlgError if A is not positive-definite."""
    return _cholesky(matrix_input("linalg.cholesky", A), upper=upper)


# ---- qr ------------------------------------------------------------------------------------------
def _qr_cores(shape, mode):
    m, n = shape[-2:]
    k = m if mode == "complete" else min(m, n)
    return [(min(m, n), n)] if mode == "r" else [(m, k), (k, n)]


def _qr_vjp(g, y, a, *, mode):
    m, n = a.shape[-2:]
    if mode == "r":
        raise RuntimeError("linalg.qr: The derivative of linalg.qr depends on Q, which is not "
                           "computed when mode='r'. Please use linalg.qr(A, mode='reduced') if "
                           "you are going to differentiate through linalg.qr.")
    if mode == "complete" and m > n:
        raise RuntimeError("linalg.qr: The QR decomposition is not differentiable when "
                           "mode='complete' and nrows > ncols.")
    batch, cores = tuple(a.shape[:-2]), _qr_cores(a.shape, mode)
    q, r = _unpack(y, batch, cores)
    gq, gr = _unpack(g, batch, cores)
    ga = _matmul(gr, r.mT) - _matmul(q.mT, gq)
    if m >= n:  # gA = (gQ + Q syminvadj(triu(gR R^T - Q^T gQ))) R^-T
        t = _shape.triu(ga)
        ga = _matmul(q, t + _shape.tril(t.mT, diagonal=-1)) + gq
        return (_solvers._solve_triangular(r, ga.mT, upper=True).mT,)
    ga = _matmul(q, _shape.tril(_skew(-ga)))  # wide: the leading m x m block of A carries it
    ga = _solvers._solve_triangular(r[..., :m], ga.mT, upper=True).mT
    zero = creation.zeros(batch + (m, n - m), dtype=ga.dtype, device=ga.device)
    return (_shape.cat([ga, zero], -1) + _matmul(q, gr),)


@primitive(vjp=_qr_vjp, autocast="float32")
def _qr(a, *, mode="reduced"):
    """Q and R of each matrix of a stack, packed (R alone for mode='r')."""
    out = xp_of(a).linalg.qr(a, mode=mode)
    return _pack(a.shape[:-2], *((out,) if mode == "r" else out))


@public
def linalg_qr(A, mode="reduced"):
    """(Q, R) with A = Q R, like torch.linalg.qr: mode 'reduced', 'complete' or 'r' (Q empty).
    Differentiable for 'reduced', and for 'complete' unless A has more rows than columns."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: qr received unrecognized mode '{mode}' but expected one of "
                         f"'reduced' (default), 'r', or 'complete'")
    A = matrix_input("linalg.qr", A, square=False)
    batch = tuple(A.shape[:-2])
    parts = _unpack(_qr(A, mode=mode), batch, _qr_cores(A.shape, mode))
    if mode == "r":
        return QRResult(creation.zeros(0, dtype=A.dtype, device=A.device), parts[0])
    return QRResult(*parts)


@public
def qr(A, some=True):
    """torch.qr: linalg.qr with mode 'reduced' (some=True) or 'complete'."""
    return collections.namedtuple("qr", "Q R")(*linalg_qr(A, "reduced" if some else "complete"))


# ---- svd -----------------------------------------------------------------------------------------
def _svd_cores(shape, full_matrices):
    m, n = shape[-2:]
    k = min(m, n)
    return [(m, m), (k,), (n, n)] if full_matrices else [(m, k), (k,), (k, n)]


def _svd_backward(gu, gs, gvh, u, s, vh):
    # torch's svd_backward, real case (Townsend 2016): gA = U [(skew(U^T gU) S + S skew(V^T gV))
    # / E + diag(gS)] V^T, E_jk = S_k^2 - S_j^2, plus the parts outside the span of U or V
    m, n = u.shape[-2], vh.shape[-1]
    s_row, s_col = _shape.unsqueeze(s, -2), _shape.unsqueeze(s, -1)
    num = _skew(_matmul(u.mT, gu)) * s_row + s_col * _skew(_matmul(vh, gvh.mT))
    core = _safe_div(num, _off_diagonal_gaps(s * s)) + _diag_embed(gs)
    if m > n:
        gu_s = _safe_div(gu, s_row)
        return _matmul(_matmul(u, core) + gu_s - _matmul(u, _matmul(u.mT, gu_s)), vh)
    if m < n:
        s_gvh = _safe_div(gvh, s_col)
        return _matmul(u, _matmul(core, vh) + s_gvh - _matmul(_matmul(s_gvh, vh.mT), vh))
    return _matmul(u, _matmul(core, vh))


def _svd_vjp(g, y, a, *, full_matrices):
    batch, cores = tuple(a.shape[:-2]), _svd_cores(a.shape, full_matrices)
    u, s, vh = _unpack(y, batch, cores)
    gu, gs, gvh = _unpack(g, batch, cores)
    k = s.shape[-1]
    if full_matrices:  # the completing columns are arbitrary: torch ignores their gradients
        u, gu, vh, gvh = u[..., :k], gu[..., :k], vh[..., :k, :], gvh[..., :k, :]
    return (_svd_backward(gu, gs, gvh, u, s, vh),)


@primitive(vjp=_svd_vjp, autocast="float32")
def _svd(a, *, full_matrices=True):
    """U, S and Vh of each matrix of a stack, packed."""
    return _pack(a.shape[:-2], *xp_of(a).linalg.svd(a, full_matrices=full_matrices))


@public
def linalg_svd(A, full_matrices=True, *, driver=None):
    """(U, S, Vh) with A = U diag(S) Vh and S descending, like torch.linalg.svd. Gradients follow
    torch: a loss that uses U or Vh is ill-defined (inf) at repeated singular values, and with
    full_matrices the completing columns of U and rows of Vh get none. driver (torch's, for
    CUDA) is accepted and ignored."""
    A = matrix_input("linalg.svd", A, square=False)
    batch = tuple(A.shape[:-2])
    return SVDResult(*_unpack(_svd(A, full_matrices=full_matrices), batch,
                              _svd_cores(A.shape, full_matrices)))


def _svdvals_vjp(g, y, a):
    u, _, vh = linalg_svd(a, full_matrices=False)  # U diag(g) Vh: defined at repeated values too
    return (_matmul(u * _shape.unsqueeze(g, -2), vh),)


@primitive(vjp=_svdvals_vjp, autocast="float32")
def _svdvals(a):
    """The singular values of each matrix of a stack, descending."""
    return xp_of(a).linalg.svd(a, compute_uv=False)


@public
def linalg_svdvals(A, *, driver=None):
    """The singular values, descending, like torch.linalg.svdvals; the gradient U diag(g) Vh is
    defined at repeated singular values too."""
    return _svdvals(matrix_input("linalg.svdvals", A, square=False))


@public
def svd(A, some=True, compute_uv=True):
    """torch.svd: (U, S, V) with V = Vh^T, reduced unless some=False; compute_uv=False gives
    zero U and V."""
    A = matrix_input("svd", A, square=False)
    if not compute_uv:
        m, n = A.shape[-2:]
        zeros = [creation.zeros(tuple(A.shape[:-2]) + (k, k), dtype=A.dtype, device=A.device)
                 for k in (m, n)]
        return TorchSVDResult(zeros[0], _svdvals(A), zeros[1])
    u, s, vh = linalg_svd(A, full_matrices=not some)
    return TorchSVDResult(u, s, vh.mT)


# ---- eigh ----------------------------------------------------------------------------------------
def _check_uplo(name, UPLO):
    if UPLO not in ("L", "U"):
        raise ValueError(f"{name}: Expected UPLO argument to be 'L' or 'U', but got {UPLO!r}")


def _eigh_vjp(g, y, a, *, UPLO):
    # torch's linalg_eig_backward, symmetric case: gA = V (skew(V^T gV) / 2E + diag(gL)) V^T,
    # E_ij = L_j - L_i; ill-defined (inf) at repeated eigenvalues when V is used
    n, batch = a.shape[-1], tuple(a.shape[:-2])
    values, vectors = _unpack(y, batch, [(n,), (n, n)])
    gl, gv = _unpack(g, batch, [(n,), (n, n)])
    core = _safe_div(0.5 * _skew(_matmul(vectors.mT, gv)), _off_diagonal_gaps(values))
    return (_matmul(vectors, _matmul(core + _diag_embed(gl), vectors.mT)),)


@primitive(vjp=_eigh_vjp, autocast="float32")
def _eigh(a, *, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors of each symmetric matrix of a stack, packed."""
    return _pack(a.shape[:-2], *xp_of(a).linalg.eigh(a, UPLO=UPLO))


@public
def linalg_eigh(A, UPLO="L"):
    """(eigenvalues ascending, eigenvectors as columns) of symmetric A, reading only the triangle
    UPLO names, like torch.linalg.eigh; the gradient is symmetric, as torch's."""
    _check_uplo("linalg.eigh", UPLO)
    A = matrix_input("linalg.eigh", A)
    n, batch = A.shape[-1], tuple(A.shape[:-2])
    return EighResult(*_unpack(_eigh(A, UPLO=UPLO), batch, [(n,), (n, n)]))


def _eigvalsh_vjp(g, y, a, *, UPLO):
    _, vectors = linalg_eigh(a, UPLO)
    return (_matmul(vectors * _shape.unsqueeze(g, -2), vectors.mT),)


@primitive(vjp=_eigvalsh_vjp, autocast="float32")
def _eigvalsh(a, *, UPLO="L"):
    """The eigenvalues (ascending) of each symmetric matrix of a stack."""
    return xp_of(a).linalg.eigvalsh(a, UPLO=UPLO)


@public
def linalg_eigvalsh(A, UPLO="L"):
    """The eigenvalues, ascending, of symmetric A, like torch.linalg.eigvalsh; the gradient
    V diag(g) V^T is defined at repeated eigenvalues too."""
    _check_uplo("linalg.eigvalsh", UPLO)
    return _eigvalsh(matrix_input("linalg.eigvalsh", A), UPLO=UPLO)


# ---- pinv, lstsq ---------------------------------------------------------------------------------
def _pinv_vjp(g, y, a, atol, rtol, *, hermitian):
    # torch's pinv_backward (Golub & Pereyra 1973): the derivative at constant rank
    m, n = a.shape[-2:]
    yt, gt = y.mT, g.mT
    if m <= n:
        k = _matmul(gt, y)
        kyt = _matmul(k, yt)
        ga = (-_matmul(y, k).mT + kyt - _matmul(_matmul(a, y), kyt)
              + _matmul(_matmul(yt, y), gt - _matmul(k, a)))
    else:
        k = _matmul(y, gt)
        ytk = _matmul(yt, k)
        ga = (-_matmul(k, y).mT + _matmul(_matmul(gt - _matmul(a, k), y), yt) + ytk
              - _matmul(_matmul(ytk, y), a))
    return ga, None, None


def _tolerance(tol):
    return tol[..., None] if backend.is_array(tol) else tol


@primitive(vjp=_pinv_vjp, autocast="float32")
def _pinv(a, atol, rtol, *, hermitian=False):
    """The pseudoinverse of each matrix of a stack: singular values (|eigenvalues| if hermitian)
    at most max(atol, rtol * largest) count as zero, as in torch."""
    xp = xp_of(a)
    m, n = a.shape[-2:]
    if a.size == 0:
        return xp.zeros(a.shape[:-2] + (n, m), dtype=a.dtype)
    if hermitian:
        s, u = xp.linalg.eigh(a)
        vt = u.swapaxes(-1, -2)
    else:
        u, s, vt = xp.linalg.svd(a, full_matrices=False)
    size = xp.abs(s)
    cutoff = xp.maximum(_tolerance(atol), _tolerance(rtol) * size.max(axis=-1, keepdims=True))
    keep = size > cutoff
    s_inv = xp.where(keep, 1 / xp.where(keep, s, 1), 0).astype(a.dtype)
    return vt.swapaxes(-1, -2) @ (s_inv[..., :, None] * u.swapaxes(-1, -2))


def pinv_tolerances(A, atol, rtol):
    """torch's defaults: rtol = eps * max(m, n) unless atol is given and positive, then 0."""
    if rtol is None:
        default = float(numpy.finfo(A.dtype).eps) * max(A.shape[-2:])
        if atol is None:
            rtol = default
        elif backend.is_array(getattr(atol, "array", None)):
            rtol = _ew.where(atol > 0, 0.0, default)
        else:
            rtol = 0.0 if atol > 0 else default
    return (0.0 if atol is None else atol), rtol


@public
def linalg_pinv(A, *, atol=None, rtol=None, hermitian=False, rcond=None):
    """The Moore-Penrose pseudoinverse, like torch.linalg.pinv: singular values at most
    max(atol, rtol * largest) are dropped (rcond is the older name for rtol); hermitian=True uses
    eigh on the lower triangle. The gradient is torch's (correct where the rank is constant)."""
    A = matrix_input("linalg.pinv", A, square=False)
    if rcond is not None:
        rtol = rcond
    atol, rtol = pinv_tolerances(A, atol, rtol)
    return _pinv(A, atol, rtol, hermitian=hermitian)


@public
def pinverse(A, rcond=1e-15):
    """torch.pinverse: linalg.pinv with rtol=rcond."""
    return linalg_pinv(A, atol=0.0, rtol=rcond)


_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


@public
def linalg_lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares solution of A X = B, like torch.linalg.lstsq: (solution, residuals, rank,
    singular_values) filled as torch fills them for the driver (default 'gelsy' on the CPU,
    'gels' elsewhere, as torch's CUDA default). Every driver computes the minimum-norm solution
    through the pseudoinverse (rank from singular values above rcond * largest); its gradient is
    torch's (pinv's)."""
    name = "linalg.lstsq"
    A = matrix_input(name, A, square=False)
    B = same_dtype(name, A, B)
    if driver is None:
        driver = "gelsy" if A.device.type == "cpu" else "gels"
    if driver not in _DRIVERS:
        raise ValueError(f"{name}: parameter `driver` should be one of {_DRIVERS}, got {driver!r}")
    vector = is_vector_rhs(A, B)
    B = _shape.unsqueeze(B, -1) if vector else B
    m, n = A.shape[-2:]
    if B.ndim < 2 or B.shape[-2] != m:
        raise ValueError(f"{name}: input.size(-2) should match other.size(-2), got shapes "
                         f"{tuple(A.shape)} and {tuple(B.shape)}")
    rcond = numpy.finfo(A.dtype).eps * max(m, n) if rcond is None or rcond < 0 else rcond
    X = _matmul(_pinv(A, 0.0, rcond), B)
    values = _svdvals(A.detach())
    if values.shape[-1]:
        rank = (values > rcond * _reduce.amax(values, dim=-1, keepdim=True)).sum(-1)
    else:
        rank = creation.zeros(tuple(A.shape[:-2]), dtype=backend.int64, device=A.device)
    empty = creation.zeros(0, dtype=A.dtype, device=A.device)
    residuals = empty
    if m > n and driver != "gelsy" and (driver == "gels" or bool((rank == n).all().item())):
        residuals = ((_matmul(A, X) - B) ** 2).sum(-2)  # Danskin: the same gradient as torch's
    return LstsqResult(_shape.squeeze(X, -1) if vector else X, residuals,
                       rank if driver != "gels" else creation.zeros(0, dtype=backend.int64,
                                                                    device=A.device),
                       values if driver in ("gelsd", "gelss") else empty)

