"""Special functions that numpy lacks (scipy is not a dependency); CuPy's cupyx.scipy.special
serves them on the GPU."""
from . import cupy, float64, xp_of

# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969):
# numpy has no erf, and scipy is not a dependency. Accurate to float64 rounding.
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


def _rational(t, num, den, n):
    xnum, xden = num[-1] * t, t
    for i in range(n):
        xnum, xden = (xnum + num[i]) * t, (xden + den[i]) * t
    return (xnum + num[n]) / (xden + den[n])


def erf(x):
    """The error function, elementwise (cupyx.scipy.special.erf on CUDA, Cody's on the host)."""
    if cupy is not None and type(x) is cupy.ndarray:
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    xp = xp_of(x)
    y = xp.abs(x.astype(float64))
    small = x * _rational(y * y, _ERF_A, _ERF_B, 3)
    y_mid, y_big = xp.clip(y, 0.46875, 4.0), xp.maximum(y, 4.0)
    erfc_mid = _rational(y_mid, _ERF_C, _ERF_D, 7)
    isq = 1.0 / (y_big * y_big)
    erfc_big = (0.56418958354775628695 - isq * _rational(isq, _ERF_P, _ERF_Q, 4)) / y_big
    erfc = xp.where(y <= 4.0, erfc_mid, erfc_big) * xp.exp(-y * y)
    out = xp.where(y <= 0.46875, small, xp.sign(x) * (1.0 - erfc))
    return out.astype(x.dtype, copy=False)
