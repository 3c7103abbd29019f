"""Special functions that numpy lacks (scipy is not a dependency): host versions here in numpy,
CuPy's cupyx.scipy.special on the GPU. Inputs of any float dtype; the host computes in float64 and
returns the input's dtype. Poles and infinities follow PyTorch (lgamma(0) = inf, digamma(0) = -inf,
digamma at negative integers = nan)."""
import math

import numpy

from . import FLOAT_BITS, cupy, float64, where, xp_of

# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969).
# Accurate to float64 rounding.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_SMALL = 0.46875  # Cody's split: erf by a series below, erfc by a rational function above
_QUIET = {"divide": "ignore", "invalid": "ignore", "over": "ignore"}  # poles are by definition


def _on_gpu(x):
    return cupy is not None and type(x) is cupy.ndarray


def _gpu(name, *args):
    import cupyx.scipy.special
    return getattr(cupyx.scipy.special, name)(*args)


def _rational(t, num, den, n):
    # Horner's rule in place: the numbers of `xnum = (xnum + num[i]) * t` without a fresh array
    # per step (with _erfc_tail's in-place steps, erf of a million float64s 44 -> 30 ms)
    xnum, xden = num[-1] * t, t + den[0]
    xden *= t
    for i in range(n):
        xnum += num[i]
        xnum *= t
        if i:
            xden += den[i]
            xden *= t
    xnum += num[n]
    xden += den[n]
    xnum /= xden
    return xnum


def _erf_small(x):
    """erf(x) for |x| <= 0.46875 (other entries are clipped there, and unused)."""
    x = x.clip(-_SMALL, _SMALL)
    return x * _rational(x * x, _ERF_A, _ERF_B, 3)


def _erfc_tail(y):
    """erfc(y) for y >= 0.46875; exp(-y^2) is split as Cody does, so the tail keeps full relative
    precision down to the underflow near y = 27. (In place, step for step:
    head * exp(-ysq * ysq) * exp(-(y - ysq) * (y + ysq)).)"""
    xp = xp_of(y)
    y = xp.clip(y, _SMALL, 40.0)  # erfc(40) underflows to 0; clipping keeps inf out of y*y
    isq = y * y
    xp.divide(1.0, isq, out=isq)
    big = _rational(isq, _ERF_P, _ERF_Q, 4)
    xp.multiply(isq, big, out=big)  # operands in the plain order: NaN's sign bit follows it
    xp.subtract(0.56418958354775628695, big, out=big)
    big /= y
    head = xp.where(y <= 4.0, _rational(y, _ERF_C, _ERF_D, 7), big)
    ysq = y * 16.0
    xp.trunc(ysq, out=ysq)
    ysq /= 16.0
    factor = xp.multiply(ysq, ysq, out=isq)
    xp.exp(xp.negative(factor, out=factor), out=factor)
    head *= factor
    xp.subtract(y, ysq, out=factor)
    xp.add(y, ysq, out=ysq)
    factor *= ysq
    xp.exp(xp.negative(factor, out=factor), out=factor)
    head *= factor
    return head


# erf in float32 arithmetic for float32 and float16 arrays: three pieces fitted by
# scripts/fit_erf.py (least squares at Chebyshev nodes against the float64 erf above; its docstring
# has the pieces), each a short polynomial whose last steps round small against the result. Within
# about 1 ulp of the float64 erf (torch's CPU erff: 0.74, CUDA's: 2), about 3x faster than
# Cody's in float64: a million float32s 23 -> 8 ms.
_ERF32_SMALL, _ERF32_MID, _ERF32_TOP = 0.84375, 1.25, 4.0  # erf rounds to +-1 from 3.92 on
_ERF32_P = (0.12837916612625122, -0.3761258125305176, 0.11282815039157867, -0.02680663764476776,
            0.005058061331510544, -0.0006356527446769178)
_ERF32_E = 0.8427007794380188
_ERF32_Q = (1.0557132945621106e-08, 0.41510748863220215, -0.4151056408882141,
            0.1383669525384903, 0.06900813430547714, -0.0687505379319191, 0.008832150138914585)
_ERF32_R = (0.0001302229065913707, 0.5615153908729553, 0.023392269387841225,
            -0.39357224106788635, 0.2974606156349182, 0.07631074637174606,
            -0.28599002957344055, 0.19699418544769287, -0.04869203269481659)


def _polynomial(coefficients, t):
    """sum c_i t^i by Horner's rule in t's dtype, in one fresh array."""
    xp, kind = xp_of(t), t.dtype.type
    out = xp.multiply(t, kind(coefficients[-1]))
    for c in coefficients[-2:0:-1]:
        out += kind(c)
        out *= t
    out += kind(coefficients[0])
    return out


def _erf_float32(x):
    """erf of a 1-D float32 array, computed in float32 (see _ERF32_P). On numpy, when most
    entries lie below 0.84375 (a normal's activations: GELU's exact form), the other pieces run
    on those entries alone: gathered, computed and put back (a million GELU inputs 8 -> 4 ms);
    each entry takes the same steps either way, so the bits are the same."""
    xp, f = xp_of(x), x.dtype.type
    if type(x) is numpy.ndarray and x.size >= _GATHER_FROM:
        rest = numpy.logical_not(numpy.abs(x) < f(_ERF32_SMALL))  # (NaN among them)
        count = numpy.count_nonzero(rest)
        if count < 0.4 * x.size:  # gathering and putting back cost about 6 passes of the rest
            out = _erf32_small(x)
            if count:
                at = numpy.flatnonzero(rest)
                out.put(at, _erf32_rest(x.take(at)))
            return out
    out = _erf32_rest(x)
    return where(xp.abs(x) < f(_ERF32_SMALL), _erf32_small(x), out)


_GATHER_FROM = 1 << 14  # entries: below, the pieces over every entry cost less than a gather


def _erf32_small(x):
    """x + x P(x^2), erf's piece below 0.84375 (other entries are clipped there, and unused)."""
    xp, f = xp_of(x), x.dtype.type
    inner = xp.clip(x, f(-_ERF32_SMALL), f(_ERF32_SMALL))  # clipped: no inf or NaN steps
    small = _polynomial(_ERF32_P, inner * inner)
    small *= inner
    small += inner
    return small


def _erf32_rest(x):
    """erf's pieces from 0.84375 up, x's sign bit put on (entries below are clipped, unused)."""
    xp, f = xp_of(x), x.dtype.type
    size = xp.abs(x)
    xp.clip(size, f(_ERF32_SMALL), f(_ERF32_TOP), out=size)  # (NaN stays NaN)
    mid = _polynomial(_ERF32_Q, size - f(1))
    mid += f(_ERF32_E)
    outer = xp.maximum(size, f(_ERF32_MID))
    tail = _polynomial(_ERF32_R, xp.divide(f(1), outer))
    xp.multiply(outer, outer, out=outer)
    xp.exp(xp.negative(outer, out=outer), out=outer)
    tail *= outer
    xp.subtract(f(1), tail, out=tail)
    out = where(size < f(_ERF32_MID), mid, tail)
    # x's sign bit onto out (>= 0 or +NaN): numpy's copysign has no SIMD loop, 6x slower
    bits = out.view(FLOAT_BITS[out.dtype])
    bits |= xp.bitwise_and(x.view(bits.dtype), bits.dtype.type(1 << 31))
    return out


def erf(x):
    """The error function, elementwise: cupyx.scipy.special.erf on CUDA; on the host Cody's in
    float64, and _erf_float32 for float32 and narrower floats."""
    if _on_gpu(x):
        return _gpu("erf", x)
    if x.dtype.kind == "f" and x.dtype.itemsize <= 4:
        out = _erf_float32(x.astype(numpy.float32, copy=False).reshape(-1))  # 1-D: in-place steps
        return out.reshape(x.shape).astype(x.dtype, copy=False)
    xp, x64 = xp_of(x), x.astype(float64).reshape(-1)  # 1-D: in-place steps need arrays
    y = xp.abs(x64)
    tail = _erfc_tail(y)
    xp.subtract(1.0, tail, out=tail)
    xp.multiply(xp.sign(x64), tail, out=tail)
    out = where(y <= _SMALL, _erf_small(x64), tail)  # backend.where: a select on the bits
    return out.reshape(x.shape).astype(x.dtype, copy=False)


def erfc(x):
    """1 - erf(x) without the cancellation: full relative precision in the right tail."""
    if _on_gpu(x):
        return _gpu("erfc", x)
    xp, x64 = xp_of(x), x.astype(float64).reshape(-1)  # 1-D: in-place steps need arrays
    tail = _erfc_tail(xp.abs(x64))
    out = xp.where(xp.abs(x64) <= _SMALL, 1.0 - _erf_small(x64),
                   xp.where(x64 > 0, tail, 2.0 - tail))
    return out.reshape(x.shape).astype(x.dtype, copy=False)


def _erfinv_guess(a):
    """M. Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011), single-precision
    version (relative error 4e-7 up to |x| = 1 - 1e-7, rougher beyond): the Newton steps' start."""
    xp = xp_of(a)
    w = -xp.log((1.0 - a) * (1.0 + a))
    central, tail = w - 2.5, xp.sqrt(w) - 3.0
    p = q = 0.0
    for c in (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
              -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
        p = p * central + c
    for c in (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
              -0.0076224613, 0.00943887047, 1.00167406, 2.83297682):
        q = q * tail + c
    return xp.where(w < 5.0, p, q) * a


def erfinv(x):
    """The inverse error function: Giles' approximation polished by Newton steps (on
    log erfc(y) = log(1 - |x|) near |x| = 1, where erf(y) - |x| would cancel); nan outside
    [-1, 1], +-inf at +-1, like torch.erfinv."""
    if _on_gpu(x):
        return _gpu("erfinv", x)
    xp, x64 = xp_of(x), x.astype(float64)
    magnitude = xp.abs(x64)
    inside = magnitude < 1.0
    a = xp.where(inside, magnitude, 0.0)
    y = _erfinv_guess(a)
    tail, log_rest = a >= 0.5, xp.log(1.0 - a)  # 1 - a is exact there
    for _ in range(4):
        # Newton on erf(y) = a in the middle, on log erfc(y) = log(1 - a) in the tail (nearly
        # linear there, so the rough start beyond |x| = 1 - 1e-7 converges as fast)
        rest = erfc(y)
        step = xp.where(tail, (xp.log(rest) - log_rest) * rest, a - erf(y))
        y = y + step * (0.5 * math.sqrt(math.pi)) * xp.exp(y * y)
    out = xp.where(inside, xp.copysign(y, x64),
                   xp.where(magnitude == 1.0, xp.copysign(xp.inf, x64), xp.nan))
    return out.astype(x.dtype, copy=False)


# ---- gamma family: shift the argument up by recurrence, then an asymptotic series; reflect below
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)
# B_2k / (2k) for digamma's series, and B_2k / (2k)! for the Hurwitz zeta's Euler-Maclaurin tail
_DIGAMMA = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)
_ZETA = (1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160, -691 / 1307674368000,
         1 / 74724249600, -3617 / 10670622842880000, 43867 / 5109094217170944000,
         -174611 / 802857662698291200000, 77683 / 14101100039391805440000,
         -236364091 / 1693824136341347256000000000)


def _series(t, coefficients):
    """sum_k coefficients[k] t^k, k from 0, by Horner's rule."""
    total = 0.0
    for c in reversed(coefficients):
        total = total * t + c
    return total


def _shift_up(xp, z, step):
    """Raise every z below 10 to [10, 11) in ten masked steps of z -> z + 1 (all callers have
    z > 0), calling step(mask, z) before each."""
    for _ in range(10):
        low = z < 10.0
        step(low, z)
        z = xp.where(low, z + 1.0, z)
    return z


def _sin_pi_abs(xp, x):
    """|sin(pi x)|, exactly 0 at integers (pi x itself would round away from them)."""
    return xp.abs(xp.sin(math.pi * (x - xp.round(x))))


def _host_lgamma(x):
    xp = xp_of(x)
    reflect = x < 0.5
    z = xp.where(reflect, 1.0 - x, x)
    product = [xp.ones_like(z)]

    def grow(low, z):
        product[0] = xp.where(low, product[0] * z, product[0])
    z = _shift_up(xp, z, grow)
    inv = 1.0 / z
    stirling = ((z - 0.5) * xp.log(z) - z + _HALF_LOG_2PI + inv * _series(inv * inv, _STIRLING)
                - xp.log(product[0]))
    out = xp.where(reflect, math.log(math.pi) - xp.log(_sin_pi_abs(xp, x)) - stirling, stirling)
    # near the zeros at 1 and 2 the shift's logarithms cancel: a Taylor series keeps the relative
    # precision there, lgamma(1 + e) = -euler e + sum_k (-1)^k zeta(k) e^k / k
    e = xp.where(x < 1.5, x - 1.0, x - 2.0).clip(-0.25, 0.25)
    series = e * _series(e, _LGAMMA_AT_1)
    series = xp.where(x < 1.5, series, series + xp.log1p(e))
    out = xp.where(xp.abs(xp.abs(x - 1.5) - 0.5) <= 0.25, series, out)  # |x - 1|, |x - 2| <= 1/4
    return xp.where(xp.isinf(x), xp.inf, out)


def lgamma(x):
    """log |Gamma(x)|, inf at the poles 0, -1, -2, ... and at +-inf, like torch.lgamma."""
    if _on_gpu(x):
        return _gpu("gammaln", x)
    with numpy.errstate(**_QUIET):
        return _host_lgamma(x.astype(float64)).astype(x.dtype, copy=False)


def _host_digamma(x):
    xp = xp_of(x)
    reflect = x < 0.0
    z = xp.where(reflect, 1.0 - x, x)
    total = [xp.zeros_like(z)]

    def subtract(low, z):
        total[0] = xp.where(low, total[0] - 1.0 / z, total[0])
    z = _shift_up(xp, z, subtract)
    inv2 = 1.0 / (z * z)
    out = total[0] + xp.log(z) - 0.5 / z - inv2 * _series(inv2, _DIGAMMA)
    r = x - xp.round(x)  # tan has period pi: tan(pi x) = tan(pi r), without pi x's rounding
    out = xp.where(reflect, out - math.pi / xp.tan(math.pi * r), out)
    return _digamma_poles(xp, x, out)


def _digamma_poles(xp, x, out):
    # torch: -inf at +0, +inf at -0, nan at the negative integers (the limits disagree by side)
    out = xp.where(x == 0.0, xp.copysign(xp.inf, -x), out)
    return xp.where((x < 0.0) & (x == xp.floor(x)), xp.nan, out)


def digamma(x):
    """The logarithmic derivative of Gamma, with torch.digamma's values at the poles."""
    if _on_gpu(x):
        return _digamma_poles(cupy, x, _gpu("digamma", x))
    with numpy.errstate(**_QUIET):
        return _host_digamma(x.astype(float64)).astype(x.dtype, copy=False)


def _hurwitz_zeta(xp, s, q):
    """zeta(s, q) = sum_k (q + k)^-s for an integer s >= 2 and q > 0: the first terms summed up to
    q >= 10, the rest by Euler-Maclaurin (as Cephes' zeta, which torch uses)."""
    total = [xp.zeros_like(q)]

    def add(low, q):
        total[0] = xp.where(low, total[0] + q ** -s, total[0])
    q = _shift_up(xp, q, add)
    inv = 1.0 / q
    power = inv ** (s + 1)  # q^(-s-2j+1) for j = 1
    rising = float(s)       # s (s+1) ... (s+2j-2)
    tail = q ** (1 - s) / (s - 1) + 0.5 * q ** -s
    for j, coefficient in enumerate(_ZETA, start=1):
        tail = tail + coefficient * rising * power
        rising *= (s + 2 * j - 1) * (s + 2 * j)
        power = power * (inv * inv)
    return total[0] + tail


# Taylor coefficients of lgamma(1 + e) / e, up to e^25 (enough for |e| <= 0.25)
_LGAMMA_AT_1 = (-0.5772156649015329,) + tuple(
    (-1) ** k * float(_hurwitz_zeta(numpy, k, numpy.array(1.0))) / k for k in range(2, 27))


def _cot_derivative(xp, n, x):
    """d^n/dx^n cot(pi x) = pi^n Q_n(cot(pi x)) with Q_0(c) = c, Q_k+1(c) = -(1 + c^2) Q_k'(c)."""
    poly = numpy.polynomial.polynomial
    q = numpy.array([0.0, 1.0])
    for _ in range(n):
        q = -poly.polymul([1.0, 0.0, 1.0], poly.polyder(q))
    c = 1.0 / xp.tan(math.pi * (x - xp.round(x)))
    return math.pi ** n * _series(c, tuple(q))


def _host_polygamma(n, x):
    xp = xp_of(x)
    reflect = x <= 0.0
    z = xp.where(reflect, 1.0 - x, x)
    sign = 1.0 if n % 2 else -1.0
    out = sign * math.factorial(n) * _hurwitz_zeta(xp, n + 1, z)
    # psi_n(x) = (-1)^n psi_n(1 - x) - pi d^n/dx^n cot(pi x)
    out = xp.where(reflect, (-1.0) ** n * out - math.pi * _cot_derivative(xp, n, x), out)
    return _polygamma_poles(xp, n, x, out)


def _polygamma_poles(xp, n, x, out):
    # +inf for odd n, -inf for even n at 0, -1, -2, ... (torch's zeta; its trigamma gives huge
    # finite numbers at the negative integers instead, from rounding in sin(pi x))
    # At the infinities torch's: trigamma is 0 at +inf and NaN at -inf; higher orders are NaN at
    # +inf (its zeta there) and take the poles' value at -inf.
    pole = (x <= 0.0) & (x == xp.floor(x))
    out = xp.where(pole, xp.inf if n % 2 else -xp.inf, out)
    out = xp.where(x == xp.inf, 0.0 if n == 1 else xp.nan, out)
    return xp.where(x == -xp.inf, xp.nan, out) if n == 1 else out


def polygamma(n, x):
    """The n-th derivative of digamma (n = 0 is digamma itself), like torch.polygamma."""
    if n == 0:
        return digamma(x)
    if _on_gpu(x):
        return _polygamma_poles(cupy, n, x, _gpu("polygamma", n, x).astype(x.dtype, copy=False))
    with numpy.errstate(**_QUIET):
        return _host_polygamma(n, x.astype(float64)).astype(x.dtype, copy=False)
