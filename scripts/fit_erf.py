"""Fit the coefficients of backend.special's float32 erf (_ERF32_*): least squares at Chebyshev
nodes against the float64 erf (Cody's, backend.special.erf), printed rounded to float32.

    python scripts/fit_erf.py

Three pieces, each a polynomial evaluated in float32 on the whole array (numpy cannot branch per
element) and selected by |x|:
  |x| < 0.84375:         erf(x) = x + x P(x^2)      P fitted for absolute error (P is small there)
  0.84375 <= |x| < 1.25: erf(x) = E + Q(|x| - 1)   E = erf(1) in float32, Q small
  1.25 <= |x| < 4:       erf(x) = 1 - exp(-x^2) R(1/|x|)   R fitted for relative error
Each piece keeps the float32 rounding of its last steps small against the result: a max error of
about 1 ulp (tests/test_backend.py checks it on a dense sweep).
"""
import numpy

from gpuad.backend import special

SMALL, MID, TOP = 0.84375, 1.25, 4.0
DEGREES = (5, 6, 8)


def _chebyshev_nodes(lo, hi, n):
    k = numpy.arange(n)
    return (lo + hi) / 2 + (hi - lo) / 2 * numpy.cos((2 * k + 1) * numpy.pi / (2 * n))


def _least_squares(x, y, degree, weight=None):
    """Coefficients, constant first, of the polynomial closest to y at x (weighted)."""
    v = numpy.vander(x, degree + 1, increasing=True)
    if weight is not None:
        v, y = v * weight[:, None], y * weight
    return numpy.linalg.lstsq(v, y, rcond=None)[0]


def fit():
    """(P, E, Q, R) with P, Q, R as tuples of float32 numbers, constant first."""
    d_small, d_mid, d_tail = DEGREES
    t = _chebyshev_nodes(0, SMALL ** 2, 500)
    a = numpy.sqrt(t)
    p = _least_squares(t, special.erf(a) / a - 1, d_small)
    e = numpy.float32(special.erf(numpy.array([1.0]))[0])
    s = _chebyshev_nodes(SMALL - 1, MID - 1, 500)
    q = _least_squares(s, special.erf(1 + s) - float(e), d_mid)
    a = _chebyshev_nodes(MID, TOP, 800)
    scaled = special.erfc(a) * numpy.exp(a * a)  # erfc(x) exp(x^2): smooth, about 1/(x sqrt(pi))
    r = _least_squares(1 / a, scaled, d_tail, weight=1 / scaled)
    as_float32 = lambda c: tuple(float(numpy.float32(v)) for v in c)  # noqa: E731
    return as_float32(p), float(e), as_float32(q), as_float32(r)


if __name__ == "__main__":
    for name, value in zip(("P", "E", "Q", "R"), fit()):
        print(f"{name} = {value!r}")
