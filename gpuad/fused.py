"""Fused kernels: the one place where CUDA code lives, between backend.py and the ops/optimizers.

Each fused function is a reference written in plain array-module ops (what numpy, the strict backend
and any case a kernel does not cover run) plus a CuPy kernel compiled on first use, picked for CuPy
arrays the kernel accepts. REGISTRY maps name -> (reference, kernel) so tests run both on the same
inputs. Callers pass raw arrays and host Python scalars only: nothing here reads a device value.
"""
import math

import numpy

from . import backend
from .backend import xp_of

REGISTRY = {}  # name -> (reference, kernel)
_KERNEL_DTYPES = (numpy.dtype("float32"), numpy.dtype("float64"))
_CTYPE = {numpy.dtype("float32"): "float", numpy.dtype("float64"): "double"}
# No multiply-add contraction: each kernel rounds exactly where its reference's separate ops do.
_OPTIONS = ("--fmad=false",)
_COMPILED = {}


def _same_float(*arrays):
    """The kernels' usual condition: CuPy arrays (None allowed) of one dtype, float32 or float64."""
    dtype = arrays[0].dtype
    return dtype in _KERNEL_DTYPES and all(
        a is None or (type(a) is backend.cupy.ndarray and a.dtype == dtype) for a in arrays)


def _fused(name, kernel, accepts=_same_float):
    """Register the decorated reference and `kernel` under `name`; return the dispatcher, which
    runs the kernel for CuPy arrays that `accepts` takes (array arguments only) and the reference
    otherwise. Both are looked up at call time, so a test can swap them."""
    def decorate(reference):
        REGISTRY[name] = (reference, kernel)

        def run(*args, **kwargs):
            first = args[0]
            if (type(first) is not numpy.ndarray and backend.cupy is not None
                    and type(first) is backend.cupy.ndarray and accepts(*args)):
                return REGISTRY[name][1](*args, **kwargs)
            return REGISTRY[name][0](*args, **kwargs)
        run.__name__ = run.__qualname__ = name
        run.__doc__ = reference.__doc__
        return run
    return decorate


def _elementwise(name, in_params, out_params, operation):
    """A cupy.ElementwiseKernel, compiled once per name (CuPy caches the binary per device and
    dtype). Elementwise kernels take any strides and broadcast their inputs."""
    kernel = _COMPILED.get(name)
    if kernel is None:
        kernel = _COMPILED[name] = backend.cupy.ElementwiseKernel(
            in_params, out_params, operation, "gpuad_" + name, options=_OPTIONS)
    return kernel


def _c(value):
    """A Python float as a C literal of exactly the same double (the reference's constant)."""
    return repr(float(value))


# ---- activations: forward and backward ---------------------------------------------------------
def _sigmoid_of(x):
    xp = xp_of(x)
    z = xp.exp(-xp.abs(x))  # never overflows: exp of a non-positive number
    return xp.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)


_SIGMOID_C = "T z = exp(-fabs(x)); T s = x >= (T)0 ? (T)1 / ((T)1 + z) : z / ((T)1 + z);"


def _sigmoid_kernel(x):
    return _elementwise("sigmoid", "T x", "T y", _SIGMOID_C + " y = s;")(x)


@_fused("sigmoid", _sigmoid_kernel)
def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow."""
    return _sigmoid_of(x)


def _relu_backward_kernel(g, y):
    return _elementwise("relu_backward", "T g, T y", "T out", "out = g * (T)(y > (T)0);")(g, y)


@_fused("relu_backward", _relu_backward_kernel)
def relu_backward(g, y):
    """g * (y > 0): relu's gradient from its output."""
    return xp_of(g).multiply(g, y > 0)  # a bool mask times g beats where() on the CPU


def _tanh_backward_kernel(g, y):
    return _elementwise("tanh_backward", "T g, T y", "T out", "out = g * ((T)1 - y * y);")(g, y)


@_fused("tanh_backward", _tanh_backward_kernel)
def tanh_backward(g, y):
    """g * (1 - y^2): tanh's gradient from its output."""
    return g * (1 - y * y)


def _sigmoid_backward_kernel(g, y):
    return _elementwise("sigmoid_backward", "T g, T y", "T out",
                        "out = g * y * ((T)1 - y);")(g, y)


@_fused("sigmoid_backward", _sigmoid_backward_kernel)
def sigmoid_backward(g, y):
    """g * y * (1 - y): sigmoid's gradient from its output."""
    return g * y * (1 - y)


def _silu_kernel(x):
    return _elementwise("silu", "T x", "T y", _SIGMOID_C + " y = x * s;")(x)


@_fused("silu", _silu_kernel)
def silu(x):
    """x * sigmoid(x)."""
    return x * _sigmoid_of(x)


def _silu_backward_kernel(g, x):
    return _elementwise("silu_backward", "T g, T x", "T out",
                        _SIGMOID_C + " out = g * (s * ((T)1 + x * ((T)1 - s)));")(g, x)


@_fused("silu_backward", _silu_backward_kernel)
def silu_backward(g, x):
    """g * s * (1 + x (1 - s)) with s = sigmoid(x): silu's gradient from its input."""
    s = _sigmoid_of(x)
    return g * (s * (1 + x * (1 - s)))


# gelu: PyTorch's two forms. erf is CUDA's in kernels and in the GPU reference (backend.special.erf).
_SQRT1_2, _INV_SQRT_2PI = 1 / math.sqrt(2), 1 / math.sqrt(2 * math.pi)
_K, _C = math.sqrt(2 / math.pi), 0.044715
_GELU_C = {  # kernel bodies, each the reference's expression in the same order
    "none": f"T cdf = (T)0.5 * ((T)1 + erf(x * (T){_c(_SQRT1_2)}));",
    "tanh": f"T t = tanh((T){_c(_K)} * (x + (T){_c(_C)} * x * x * x));",
}


def _check_approximate(approximate):
    if approximate not in _GELU_C:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _gelu_kernel(x, *, approximate="none"):
    _check_approximate(approximate)
    body = (_GELU_C["tanh"] + " y = (T)0.5 * x * ((T)1 + t);" if approximate == "tanh"
            else f"y = (T)0.5 * x * ((T)1 + erf(x * (T){_c(_SQRT1_2)}));")
    return _elementwise("gelu_" + approximate, "T x", "T y", body)(x)


@_fused("gelu", _gelu_kernel)
def gelu(x, *, approximate="none"):
    """x * Phi(x) (erf form), or PyTorch's tanh approximation with approximate='tanh'."""
    _check_approximate(approximate)
    if approximate == "tanh":
        return 0.5 * x * (1 + xp_of(x).tanh(_K * (x + _C * x * x * x)))
    return 0.5 * x * (1 + backend.special.erf(x * _SQRT1_2))


def _gelu_backward_kernel(g, x, *, approximate="none"):
    _check_approximate(approximate)
    if approximate == "tanh":
        body = (f"T d = (T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * "
                f"((T){_c(_K)} * ((T)1 + (T){_c(3 * _C)} * x * x));")
    else:
        body = f"T d = cdf + x * (exp((T)-0.5 * x * x) * (T){_c(_INV_SQRT_2PI)});"
    return _elementwise("gelu_backward_" + approximate, "T g, T x", "T out",
                        _GELU_C[approximate] + " " + body + " out = g * d;")(g, x)


@_fused("gelu_backward", _gelu_backward_kernel)
def gelu_backward(g, x, *, approximate="none"):
    """g * gelu'(x): Phi(x) + x phi(x), or the derivative of the tanh form."""
    _check_approximate(approximate)
    if approximate == "tanh":
        t = xp_of(x).tanh(_K * (x + _C * x * x * x))
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (_K * (1 + 3 * _C * x * x)))
    cdf = 0.5 * (1 + backend.special.erf(x * _SQRT1_2))
    return g * (cdf + x * (xp_of(x).exp(-0.5 * x * x) * _INV_SQRT_2PI))


# ---- softmax cross entropy: one block per row of 2-D logits ------------------------------------
_ROWS_SOURCE = r"""
typedef CTYPE T;

__device__ T nan_max(T a, T b) { return (a > b || a != a) ? a : b; }

__device__ T block_reduce(T v, T* buf, bool take_max) {  // blockDim.x: a power of two <= 256
    int tid = threadIdx.x;
    buf[tid] = v;
    __syncthreads();
    for (int s = blockDim.x >> 1; s > 0; s >>= 1) {
        if (tid < s) {
            T other = buf[tid + s];
            buf[tid] = take_max ? nan_max(buf[tid], other) : buf[tid] + other;
        }
        __syncthreads();
    }
    T r = buf[0];
    __syncthreads();
    return r;
}

__device__ void row_stats(const T* row, long long c, T* buf, T* m_out, T* s_out) {
    T m = row[0];
    for (long long j = threadIdx.x; j < c; j += blockDim.x) m = nan_max(m, row[j]);
    m = block_reduce(m, buf, true);
    T s = 0;
    for (long long j = threadIdx.x; j < c; j += blockDim.x) s += exp(row[j] - m);
    *m_out = m;
    *s_out = block_reduce(s, buf, false);
}

extern "C" __global__ void gpuad_softmax_nll(const T* x, const long long* target, const T* w,
                                             T* out, long long c) {
    __shared__ T buf[256];
    long long n = blockIdx.x;
    const T* row = x + n * c;
    T m, s;
    row_stats(row, c, buf, &m, &s);
    if (threadIdx.x == 0) {
        long long t = target[n];
        T picked = (t >= 0 && t < c) ? row[t] : sqrt((T)-1);  // a bad class gives NaN, not a fault
        out[n] = (log(s) + m - picked) * w[n];
    }
}

extern "C" __global__ void gpuad_softmax_nll_grad(const T* x, const long long* target,
                                                  const T* scale, T* out, long long c) {
    __shared__ T buf[256];
    long long n = blockIdx.x;
    const T* row = x + n * c;
    T m, s;
    row_stats(row, c, buf, &m, &s);
    T sc = scale[n];
    T f = sc / s;
    long long t = target[n];
    T* o = out + n * c;
    for (long long j = threadIdx.x; j < c; j += blockDim.x) {
        T v = exp(row[j] - m) * f;
        o[j] = j == t ? v - sc : v;
    }
}
"""


def _rows_kernel(name, dtype):
    key = (name, dtype)
    kernel = _COMPILED.get(key)
    if kernel is None:
        source = _ROWS_SOURCE.replace("CTYPE", _CTYPE[dtype])
        kernel = _COMPILED[key] = backend.cupy.RawKernel(source, name, options=_OPTIONS)
    return kernel


def _two_d_logits(x, target, w):
    """The row kernels' case: C-contiguous float (N, C) logits, N, C >= 1, CuPy targets and
    per-row weights (cast on the device when their dtypes differ)."""
    return (x.ndim == 2 and x.size > 0 and x.flags.c_contiguous and x.dtype in _KERNEL_DTYPES
            and type(target) is backend.cupy.ndarray and type(w) is backend.cupy.ndarray
            and target.dtype.kind in "iu" and w.shape == (x.shape[0],))


def _launch_rows(name, x, target, w, out):
    cupy = backend.cupy
    target = cupy.ascontiguousarray(target.astype(numpy.int64, copy=False))
    w = cupy.ascontiguousarray(w.astype(x.dtype, copy=False))
    classes = x.shape[1]
    threads = 32 if classes <= 32 else 64 if classes <= 64 else 128 if classes <= 128 else 256
    kernel = _rows_kernel(name, x.dtype)
    kernel((x.shape[0],), (threads,), (x, target, w, out, numpy.int64(classes)))
    return out


def _softmax_nll_kernel(x, target, w):
    return _launch_rows("gpuad_softmax_nll", x, target, w,
                        backend.cupy.empty(x.shape[:1], x.dtype))


def _at_class(target):
    """The index of x[n, target[n, d1, ...], d1, ...] for logits x (N, C, d1, ...)."""
    xp, shape = xp_of(target), target.shape
    grids = [xp.arange(s).reshape((s,) + (1,) * (len(shape) - i - 1)) for i, s in enumerate(shape)]
    return (grids[0], target) + tuple(grids[1:])


@_fused("softmax_nll", _softmax_nll_kernel, accepts=_two_d_logits)
def softmax_nll(x, target, w):
    """(logsumexp(x, 1) - x[target]) * w for logits x (N, C, ...), class indices target (N, ...)
    and weights w (N, ...): cross_entropy's per-element loss."""
    xp = xp_of(x)
    top = x.max(axis=1, keepdims=True)
    e = x - top
    xp.exp(e, out=e)
    lse = xp.log(e.sum(axis=1)) + top[:, 0]
    return (lse - x[_at_class(target)]) * w.astype(x.dtype, copy=False)


def _softmax_nll_grad_kernel(x, target, scale):
    return _launch_rows("gpuad_softmax_nll_grad", x, target, scale, backend.cupy.empty_like(x))


@_fused("softmax_nll_grad", _softmax_nll_grad_kernel, accepts=_two_d_logits)
def softmax_nll_grad(x, target, scale):
    """(softmax(x, 1) - one_hot(target, dim 1)) * scale[:, None]: softmax_nll's gradient for
    upstream gradient times weights `scale` (N, ...), without a one-hot array."""
    xp = xp_of(x)
    p = x - x.max(axis=1, keepdims=True)
    xp.exp(p, out=p)
    s = scale[:, None].astype(p.dtype, copy=False)
    p *= s / p.sum(axis=1, keepdims=True)
    p[_at_class(target)] -= scale.astype(p.dtype, copy=False)
    return p


# ---- optimizer updates: in place, one kernel per parameter, host scalars only ------------------
def _sgd_kernel(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    sign, weight_decay, lr = -1.0 if maximize else 1.0, float(weight_decay), float(lr)
    if buf is None:
        _elementwise("sgd", "T g, T sign, T wd, T lr", "T p",
                     "T d = sign * g; if (wd != (T)0) d = d + wd * p; p = p - lr * d;")(
            g, sign, weight_decay, lr, p)
        return
    _elementwise("sgd_momentum",
                 "T g, T sign, T wd, T lr, T momentum, T damp1, int32 first, int32 nesterov",
                 "T p, T buf",
                 "T d = sign * g; if (wd != (T)0) d = d + wd * p;"
                 " T b = first ? d : momentum * buf + damp1 * d; buf = b;"
                 " p = p - lr * (nesterov ? d + momentum * b : b);")(
        g, sign, weight_decay, lr, float(momentum), 1.0 - dampening, int(first), int(nesterov), p,
        buf)


def _optimizer_arrays(p, g, *state):
    return _same_float(p, g, *state) and p.shape == g.shape


@_fused("sgd_step", _sgd_kernel, accepts=_optimizer_arrays)
def sgd_step(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """torch.optim.SGD's update of p in place; `buf` is the momentum buffer (None without
    momentum), which the first step (`first`) sets to the gradient."""
    xp = xp_of(p)
    if weight_decay:  # d = (-g if maximize else g) + wd * p, in a temporary of our own
        d = p * weight_decay
        if maximize:
            d -= g
        else:
            d += g
        owned, sign = True, 1
    else:  # d = g, and maximize flips the sign where d is used (negation is exact)
        d, owned, sign = g, False, -1 if maximize else 1
    if buf is not None:
        if first:
            xp.multiply(d, sign, out=buf)
        else:
            buf *= momentum
            if dampening:
                buf += (1 - dampening) * sign * d
            elif sign > 0:
                buf += d
            else:
                buf -= d
        if nesterov:
            step = buf * momentum
            if sign > 0:
                step += d
            else:
                step -= d
            d, owned, sign = step, True, 1
        else:
            d, owned, sign = buf, False, 1
    if owned:
        d *= lr
        p -= d
    elif sign > 0:
        p -= lr * d
    else:
        p += lr * d


def _adam_kernel(p, g, m, v, vmax, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
                 step_size, bias_correction2_sqrt):
    decay, wd = (1 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
    body = ("T d = sign * g; p = p * decay; if (wd != (T)0) d = d + wd * p;"
            " m = m + (d - m) * w1; v = v * beta2 + w2 * d * d;")
    scalars = tuple(map(float, (-1 if maximize else 1, decay, wd, 1 - beta1, beta2, 1 - beta2, eps,
                                step_size, bias_correction2_sqrt)))
    params = "T g, T sign, T decay, T wd, T w1, T beta2, T w2, T eps, T step_size, T bc2"
    update = " p = p - step_size * m / (sqrt(VV) / bc2 + eps);"
    if vmax is None:
        _elementwise("adam", params, "T p, T m, T v", body + update.replace("VV", "v"))(
            g, *scalars, p, m, v)
    else:
        _elementwise("adam_amsgrad", params, "T p, T m, T v, T vmax",
                     body + " if (!(vmax >= v)) vmax = v;" + update.replace("VV", "vmax"))(
            g, *scalars, p, m, v, vmax)


@_fused("adam_step", _adam_kernel, accepts=_optimizer_arrays)
def adam_step(p, g, m, v, vmax, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
              step_size, bias_correction2_sqrt):
    """torch.optim.Adam/AdamW's update of p, m, v (and vmax with amsgrad, else None) in place;
    the bias corrections come as host floats: step_size = lr / (1 - beta1^t) and
    bias_correction2_sqrt = sqrt(1 - beta2^t)."""
    xp = xp_of(p)
    d = -g if maximize else g
    if weight_decay and decoupled:
        p *= 1 - lr * weight_decay
    elif weight_decay:
        d = d + weight_decay * p
    t = xp.subtract(d, m, out=xp.empty_like(m))  # the one scratch array (an array even if 0-d)
    t *= 1 - beta1
    m += t  # m + (d - m)(1 - beta1): torch's lerp_
    v *= beta2
    xp.multiply(d, 1 - beta2, out=t)
    t *= d
    v += t
    if vmax is not None:
        v = xp.maximum(vmax, v, out=vmax)
    xp.sqrt(v, out=t)
    t /= bias_correction2_sqrt
    t += eps
    update = m * step_size
    update /= t
    p -= update


# ---- matmul while a CUDA graph is being recorded -------------------------------------------------
# CuPy refuses to call cuBLAS during stream capture (cupy/cupy#6290: cuBLAS may allocate its
# workspace then), so inside gpuad.cuda.graph 2-D float products run on this tiled kernel instead.
# It is slower than cuBLAS on big matrices but fine for the small models graphs are for.
_GEMM_TILE = 16
_GEMM_SOURCE = r"""
template<typename T>
__global__ void gpuad_gemm(const T* A, const T* B, T* C, int M, int N, int K,
                           long long sam, long long sak, long long sbk, long long sbn) {
    __shared__ T As[16][17];  // +1 column: no shared-memory bank conflicts on the transposed read
    __shared__ T Bs[16][17];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx;
    T acc = 0;
    for (int k0 = 0; k0 < K; k0 += 16) {
        int ka = k0 + tx, kb = k0 + ty;
        As[ty][tx] = (row < M && ka < K) ? A[row * sam + ka * sak] : (T)0;
        Bs[ty][tx] = (kb < K && col < N) ? B[kb * sbk + col * sbn] : (T)0;
        __syncthreads();
        for (int k = 0; k < 16; ++k) acc += As[ty][k] * Bs[k][tx];
        __syncthreads();
    }
    if (row < M && col < N) C[(long long)row * N + col] = acc;
}
"""


def _gemm_kernel(a, b):
    cupy = backend.cupy
    module = _COMPILED.get("gemm")
    if module is None:
        module = _COMPILED["gemm"] = cupy.RawModule(
            code=_GEMM_SOURCE, name_expressions=["gpuad_gemm<float>", "gpuad_gemm<double>"])
    kernel = module.get_function(f"gpuad_gemm<{_CTYPE[a.dtype]}>")
    (m, k), n = a.shape, b.shape[1]
    out = cupy.empty((m, n), dtype=a.dtype)
    sa, sb = [s // a.itemsize for s in a.strides], [s // b.itemsize for s in b.strides]
    tile = _GEMM_TILE
    kernel(((n + tile - 1) // tile, (m + tile - 1) // tile), (tile, tile),
           (a, b, out, numpy.int32(m), numpy.int32(n), numpy.int32(k), numpy.int64(sa[0]),
            numpy.int64(sa[1]), numpy.int64(sb[0]), numpy.int64(sb[1])))
    return out


def matmul(a, b):
    """a @ b; while gpuad.cuda.graph records, 2-D float CuPy products use the tiled kernel above."""
    if (backend.cuda.capturing() and a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype
            and a.dtype in _KERNEL_DTYPES and type(a) is backend.cupy.ndarray):
        return _gemm_kernel(a, b)
    return a @ b
