"""Fused kernels: the one place where CUDA code lives.

Each fused function is a reference written in plain array-module ops, beside the op it serves (what
numpy, the strict backend and any case a kernel does not cover run), plus a CuPy kernel here,
compiled on first use and picked for CuPy arrays it accepts: `@fused(name)` on the reference joins
the two. REGISTRY maps name -> (reference, kernel) so tests run both on the same inputs. Every
kernel is built from a source declared as data first (cuda_sources()), which tests compile with
NVRTC without a GPU. Callers pass raw arrays and host Python scalars only: nothing here reads a
device value.
"""
import math

import numpy

from . import cuda, cupy

REGISTRY = {}  # name -> (reference, kernel)
DISPATCHERS = {}  # name -> what the op calls: the kernel or the reference, as the arrays allow
ELEMENTWISE = set()  # fused functions that may run once over concatenations (fused(elementwise=))
BLOCKED = set()  # elementwise ones that run on numpy block by block (fused(blocked=))
_ON_HOST = {}  # blocked name -> what numpy arrays run (_on_host)
_KERNEL_DTYPES = (numpy.dtype("float32"), numpy.dtype("float64"))
_CTYPE = {numpy.dtype("float32"): "float", numpy.dtype("float64"): "double"}
# No multiply-add contraction: each kernel rounds exactly where its reference's separate ops do.
_OPTIONS = ("--fmad=false",)
_COMPILED = {}
_SOURCES = {}  # kernel name -> its cuda_sources() entry: every kernel is built from one of these


def _elementwise_source(name, in_params, out_params, operation, scalars=()):
    """Declare the cupy.ElementwiseKernel `name`; `scalars` names the inputs that callers pass as
    host scalars (the others are arrays)."""
    _SOURCES[name] = {"name": name, "kind": "elementwise", "in_params": in_params,
                      "out_params": out_params, "operation": operation, "scalars": scalars,
                      "options": _OPTIONS, "dtypes": tuple(d.name for d in _KERNEL_DTYPES)}


def _raw_source(name, code, functions, options=_OPTIONS):
    """Declare raw CUDA `code` defining the kernels `functions`: it is compiled once per dtype, with
    CTYPE (in the code and in templated function names) replaced by that dtype's C type."""
    _SOURCES[name] = {"name": name, "kind": "raw", "code": code, "functions": functions,
                      "options": options, "dtypes": tuple(d.name for d in _KERNEL_DTYPES)}


def cuda_sources():
    """Every CUDA source gpuad ships, as plain data: name, kind ('elementwise' or 'raw'), the pieces
    CuPy is given, compile options and the dtypes it is instantiated for. Tests compile each one
    with NVRTC, which needs no GPU."""
    return [dict(entry) for entry in _SOURCES.values()]


def _same_float(*arrays):
    """The kernels' usual condition: CuPy arrays (None allowed) of one dtype, float32 or float64."""
    dtype = arrays[0].dtype
    return dtype in _KERNEL_DTYPES and all(
        a is None or (type(a) is cupy.ndarray and a.dtype == dtype) for a in arrays)


_KERNELS = {}  # name -> (kernel, accepts), declared below


def _kernel(name, accepts=_same_float):
    """Declare the decorated launcher as the kernel of fused function `name`; it runs for CuPy
    arrays that `accepts` takes (array arguments only)."""
    def decorate(kernel):
        _KERNELS[name] = (kernel, accepts)
        return kernel
    return decorate


def fused(name, elementwise=False, blocked=False):
    """Join the decorated reference (array-module code, beside its op) with kernel `name`: return
    a dispatcher that runs the kernel for CuPy arrays it accepts and the reference otherwise. Both
    are looked up at call time, so a test can swap them. `elementwise`: its array arguments all
    have one shape and each element of every result comes from the same element of each input
    and host numbers alone, so one call over concatenated arrays computes what a call per array
    does (gpuad.compile's flat optimizer updates). A name with no kernel declared runs the
    reference everywhere, still as one unit that gpuad.compile records whole: its host-side
    choices (a fast path on numpy) are made again on every replay. `blocked` (elementwise ones
    only): the reference makes many passes over its arrays and runs on numpy block by block over
    big ones (run_blocked); one of two or three passes (relu's backward, say) loses more to
    copying its blocks' results into the whole result than the cache gives it."""
    kernel, accepts = _KERNELS.get(name, (None, None))
    if blocked and not elementwise:
        raise ValueError(f"fused {name!r}: only an elementwise function runs block by block")
    if elementwise:
        ELEMENTWISE.add(name)
    if blocked:
        BLOCKED.add(name)

    def decorate(reference):
        REGISTRY[name] = (reference, kernel)

        def run(*args, **kwargs):
            first = args[0]
            if type(first) is not numpy.ndarray:
                if cupy is not None and type(first) is cupy.ndarray:
                    if accepts is not None and accepts(*args):
                        return REGISTRY[name][1](*args, **kwargs)
                elif hasattr(type(first), "fused_call"):  # gpuad.compile's: recorded whole
                    return first.fused_call(name, args, kwargs)
            elif blocked:
                return _ON_HOST[name](*args, **kwargs)
            return REGISTRY[name][0](*args, **kwargs)
        run.__name__ = run.__qualname__ = name
        run.__doc__ = reference.__doc__
        DISPATCHERS[name] = run
        if blocked:
            _ON_HOST[name] = _on_host(name)
        return run
    return decorate


def _on_host(name):
    """What a blocked fused function runs for numpy arrays: its reference, block by block over
    big arrays (a compiled replay binds this)."""
    def on_host(*args, **kwargs):
        if args[0].nbytes >= 2 * BLOCK_BYTES:
            return run_blocked(REGISTRY[name][0], args, kwargs)
        return REGISTRY[name][0](*args, **kwargs)
    on_host.__name__ = on_host.__qualname__ = name
    return on_host


# An optimizer's update or an activation's formula is many passes over its arrays; over big ones,
# each pass streams them from memory beyond the core's cache. Run block by block, a block's passes
# find it in cache: SGD with momentum over the MNIST MLP's 270k parameters 290 -> 236 us, Adam
# over LeNet's 207k 770 -> 650 us, the tanh GELU's forward and backward on (2048, 512) 11.4 ->
# 6.6 ms (float32, 2-core Xeon). Smaller blocks lose it to per-call cost.
BLOCK_BYTES = 256 << 10


def run_blocked(reference, args, kwargs):
    """reference(*args, **kwargs) for a blocked fused function on numpy arrays, over
    BLOCK_BYTES-sized blocks of its arrays in turn: each element takes the same steps, so the
    results are the same bits. Arrays that are not all C-contiguous of one shape (a transposed
    parameter, say, whose flat view would be a copy) run in one call."""
    arrays = [a for a in args if type(a) is numpy.ndarray]
    shape = arrays[0].shape
    if not all(a.shape == shape and a.flags.c_contiguous for a in arrays):
        return reference(*args, **kwargs)
    flat = [a.reshape(-1) if type(a) is numpy.ndarray else a for a in args]
    size, step = arrays[0].size, BLOCK_BYTES // arrays[0].itemsize
    outs = result = None  # a block's results go into the whole results while still in cache
    for start in range(0, size, step):
        result = reference(*[a[start:start + step] if type(a) is numpy.ndarray else a
                             for a in flat], **kwargs)
        if result is None:  # an update in place
            continue
        parts = result if type(result) is tuple else (result,)
        if outs is None:
            outs = [numpy.empty(size, dtype=part.dtype) for part in parts]
        for out, part in zip(outs, parts):
            out[start:start + part.size] = part
    if outs is None:
        return None
    outs = [out.reshape(shape) for out in outs]
    return tuple(outs) if type(result) is tuple else outs[0]


def implementation(name, args):
    """What fused function `name` runs for these arrays, the kernel or the reference (a compiled
    replay calls it directly)."""
    kernel, accepts = _KERNELS.get(name, (None, None))
    if (cupy is not None and type(args[0]) is cupy.ndarray and accepts is not None
            and accepts(*args)):
        return REGISTRY[name][1]
    if name in BLOCKED and type(args[0]) is numpy.ndarray:
        return _ON_HOST[name]
    return REGISTRY[name][0]


def _elementwise(name):
    """The declared cupy.ElementwiseKernel `name`, built once (CuPy compiles and caches a binary per
    device and dtype). Elementwise kernels take any strides and broadcast their inputs."""
    kernel = _COMPILED.get(name)
    if kernel is None:
        source = _SOURCES[name]
        kernel = _COMPILED[name] = cupy.ElementwiseKernel(
            source["in_params"], source["out_params"], source["operation"], name,
            options=source["options"])
    return kernel


def _raw_kernel(name, function, dtype):
    """Kernel `function` of the declared raw source `name` for float `dtype` (one module per name
    and dtype)."""
    ctype = _CTYPE[dtype]
    module = _COMPILED.get((name, dtype))
    if module is None:
        source = _SOURCES[name]
        templates = [f.replace("CTYPE", ctype) for f in source["functions"] if "<" in f]
        module = _COMPILED[name, dtype] = cupy.RawModule(
            code=source["code"].replace("CTYPE", ctype), options=source["options"],
            name_expressions=templates or None)
    return module.get_function(function.replace("CTYPE", ctype))


def _c(value):
    """A Python float as a C literal of exactly the same double (the reference's constant)."""
    return repr(float(value))


# ---- activations: forward and backward ---------------------------------------------------------


_SIGMOID_C = "T z = exp(-fabs(x)); T s = x >= (T)0 ? (T)1 / ((T)1 + z) : z / ((T)1 + z);"
_elementwise_source("gpuad_sigmoid", "T x", "T y", _SIGMOID_C + " y = s;")


@_kernel("sigmoid")
def _sigmoid_kernel(x):
    return _elementwise("gpuad_sigmoid")(x)




_elementwise_source("gpuad_relu_backward", "T g, T y", "T out", "out = y <= (T)0 ? (T)0 : g;")


@_kernel("relu_backward")
def _relu_backward_kernel(g, y):
    return _elementwise("gpuad_relu_backward")(g, y)




_elementwise_source("gpuad_tanh_backward", "T g, T y", "T out", "out = g * ((T)1 - y * y);")


@_kernel("tanh_backward")
def _tanh_backward_kernel(g, y):
    return _elementwise("gpuad_tanh_backward")(g, y)




_elementwise_source("gpuad_sigmoid_backward", "T g, T y", "T out", "out = g * y * ((T)1 - y);")


@_kernel("sigmoid_backward")
def _sigmoid_backward_kernel(g, y):
    return _elementwise("gpuad_sigmoid_backward")(g, y)




_elementwise_source("gpuad_silu", "T x", "T y", _SIGMOID_C + " y = x * s;")


@_kernel("silu")
def _silu_kernel(x):
    return _elementwise("gpuad_silu")(x)




_elementwise_source("gpuad_silu_backward", "T g, T x", "T out",
                    _SIGMOID_C + " out = g * (s * ((T)1 + x * ((T)1 - s)));")


@_kernel("silu_backward")
def _silu_backward_kernel(g, x):
    return _elementwise("gpuad_silu_backward")(g, x)




# gelu: PyTorch's two forms; erf is CUDA's here.
_SQRT1_2, _INV_SQRT_2PI = 1 / math.sqrt(2), 1 / math.sqrt(2 * math.pi)
_K, _C = math.sqrt(2 / math.pi), 0.044715
_GELU_C = {  # kernel bodies, each the reference's expression in the same order
    "none": f"T cdf = (T)0.5 * ((T)1 + erf(x * (T){_c(_SQRT1_2)}));",
    "tanh": f"T t = tanh((T){_c(_K)} * (x + (T){_c(_C)} * x * x * x));",
}


def _check_approximate(approximate):
    if approximate not in _GELU_C:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


_elementwise_source("gpuad_gelu_none", "T x", "T y",
                    f"y = (T)0.5 * x * ((T)1 + erf(x * (T){_c(_SQRT1_2)}));")
_elementwise_source("gpuad_gelu_tanh", "T x", "T y",
                    _GELU_C["tanh"] + " y = (T)0.5 * x * ((T)1 + t);")


@_kernel("gelu")
def _gelu_kernel(x, *, approximate="none"):
    _check_approximate(approximate)
    return _elementwise("gpuad_gelu_" + approximate)(x)




_GELU_DERIVATIVE_C = {
    "none": f"T d = cdf + x * (exp((T)-0.5 * x * x) * (T){_c(_INV_SQRT_2PI)});",
    "tanh": (f"T d = (T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * "
             f"((T){_c(_K)} * ((T)1 + (T){_c(3 * _C)} * x * x));"),
}
for _form, _setup in _GELU_C.items():
    _elementwise_source("gpuad_gelu_backward_" + _form, "T g, T x", "T out",
                        _setup + " " + _GELU_DERIVATIVE_C[_form] + " out = g * d;")


@_kernel("gelu_backward")
def _gelu_backward_kernel(g, x, *, approximate="none"):
    _check_approximate(approximate)
    return _elementwise("gpuad_gelu_backward_" + approximate)(g, x)




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
_raw_source("gpuad_rows", _ROWS_SOURCE, ("gpuad_softmax_nll", "gpuad_softmax_nll_grad"))


def _two_d_logits(x, target, w):
    """The row kernels' case: C-contiguous float (N, C) logits, N, C >= 1, CuPy targets and
    per-row weights (cast on the device when their dtypes differ)."""
    return (x.ndim == 2 and x.size > 0 and x.flags.c_contiguous and x.dtype in _KERNEL_DTYPES
            and type(target) is cupy.ndarray and type(w) is cupy.ndarray
            and target.dtype.kind in "iu" and w.shape == (x.shape[0],))


def _launch_rows(name, x, target, w, out):
    target = cupy.ascontiguousarray(target.astype(numpy.int64, copy=False))
    w = cupy.ascontiguousarray(w.astype(x.dtype, copy=False))
    classes = x.shape[1]
    threads = 32 if classes <= 32 else 64 if classes <= 64 else 128 if classes <= 128 else 256
    kernel = _raw_kernel("gpuad_rows", name, x.dtype)
    kernel((x.shape[0],), (threads,), (x, target, w, out, numpy.int64(classes)))
    return out


@_kernel("softmax_nll", accepts=_two_d_logits)
def _softmax_nll_kernel(x, target, w):
    return _launch_rows("gpuad_softmax_nll", x, target, w,
                        cupy.empty(x.shape[:1], x.dtype))






@_kernel("softmax_nll_grad", accepts=_two_d_logits)
def _softmax_nll_grad_kernel(x, target, scale):
    return _launch_rows("gpuad_softmax_nll_grad", x, target, scale, cupy.empty_like(x))




# ---- optimizer updates: in place, one kernel per parameter, host scalars only ------------------
_elementwise_source("gpuad_sgd", "T g, T sign, T wd, T lr", "T p",
                    "T d = sign * g; if (wd != (T)0) d = d + wd * p; p = p - lr * d;",
                    scalars=("sign", "wd", "lr"))
_elementwise_source(
    "gpuad_sgd_momentum",
    "T g, T sign, T wd, T lr, T momentum, T damp1, int32 first, int32 nesterov", "T p, T buf",
    "T d = sign * g; if (wd != (T)0) d = d + wd * p;"
    " T b = first ? d : momentum * buf + damp1 * d; buf = b;"
    " p = p - lr * (nesterov ? d + momentum * b : b);",
    scalars=("sign", "wd", "lr", "momentum", "damp1", "first", "nesterov"))


def _optimizer_arrays(p, g, *state):
    return _same_float(p, g, *state) and p.shape == g.shape


@_kernel("sgd_step", accepts=_optimizer_arrays)
def _sgd_kernel(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    sign, weight_decay, lr = -1.0 if maximize else 1.0, float(weight_decay), float(lr)
    if buf is None:
        _elementwise("gpuad_sgd")(g, sign, weight_decay, lr, p)
        return
    _elementwise("gpuad_sgd_momentum")(
        g, sign, weight_decay, lr, float(momentum), 1.0 - dampening, int(first), int(nesterov), p,
        buf)




_ADAM_IN = "T g, T sign, T decay, T wd, T w1, T beta2, T w2, T eps, T step_size, T bc2"
_ADAM_C = ("T d = sign * g; p = p * decay; if (wd != (T)0) d = d + wd * p;"
           " m = m + (d - m) * w1; v = v * beta2 + w2 * d * d;")
_ADAM_UPDATE_C = " p = p - step_size * m / (sqrt(VV) / bc2 + eps);"
_ADAM_SCALARS = ("sign", "decay", "wd", "w1", "beta2", "w2", "eps", "step_size", "bc2")
_elementwise_source("gpuad_adam", _ADAM_IN, "T p, T m, T v",
                    _ADAM_C + _ADAM_UPDATE_C.replace("VV", "v"), scalars=_ADAM_SCALARS)
_elementwise_source("gpuad_adam_amsgrad", _ADAM_IN, "T p, T m, T v, T vmax",
                    _ADAM_C + " if (!(vmax >= v)) vmax = v;" + _ADAM_UPDATE_C.replace("VV", "vmax"),
                    scalars=_ADAM_SCALARS)


@_kernel("adam_step", accepts=_optimizer_arrays)
def _adam_kernel(p, g, m, v, vmax, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
                 step_size, bias_correction2_sqrt):
    decay, wd = (1 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
    scalars = tuple(map(float, (-1 if maximize else 1, decay, wd, 1 - beta1, beta2, 1 - beta2, eps,
                                step_size, bias_correction2_sqrt)))
    if vmax is None:
        _elementwise("gpuad_adam")(g, *scalars, p, m, v)
    else:
        _elementwise("gpuad_adam_amsgrad")(g, *scalars, p, m, v, vmax)




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
_raw_source("gpuad_gemm", _GEMM_SOURCE, ("gpuad_gemm<CTYPE>",), options=())


def _capturing_matrices(a, b):
    """CuPy refuses cuBLAS while a CUDA graph records: then float products of matrices (2-D, or
    stacks of them, as gpuad.compile's graphs meet in attention and grouped convolutions) run
    here."""
    return (cuda.capturing() and a.ndim >= 2 and b.ndim >= 2 and a.dtype == b.dtype
            and a.dtype in _KERNEL_DTYPES and type(b) is cupy.ndarray)


@_kernel("matmul", accepts=_capturing_matrices)
def _gemm_kernel(a, b):
    if a.ndim == 2 and b.ndim == 2:
        return _gemm_into(a, b, cupy.empty((a.shape[0], b.shape[1]), dtype=a.dtype))
    batch = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = cupy.broadcast_to(a, batch + a.shape[-2:])
    b = cupy.broadcast_to(b, batch + b.shape[-2:])
    out = cupy.empty(batch + (a.shape[-2], b.shape[-1]), dtype=a.dtype)
    for index in numpy.ndindex(*batch):  # a launch per matrix: recorded in a graph, they are free
        _gemm_into(a[index], b[index], out[index])
    return out


def _gemm_into(a, b, out):
    """out (C-contiguous, m x n) = a @ b for 2-D a and b of any strides."""
    kernel = _raw_kernel("gpuad_gemm", "gpuad_gemm<CTYPE>", a.dtype)
    (m, k), n = a.shape, b.shape[1]
    sa, sb = [s // a.itemsize for s in a.strides], [s // b.itemsize for s in b.strides]
    tile = _GEMM_TILE
    kernel(((n + tile - 1) // tile, (m + tile - 1) // tile), (tile, tile),
           (a, b, out, numpy.int32(m), numpy.int32(n), numpy.int32(k), numpy.int64(sa[0]),
            numpy.int64(sa[1]), numpy.int64(sb[0]), numpy.int64(sb[1])))
    return out


