"""Tensor creation: gpuad.tensor, zeros, ones, arange, randn, ... (PyTorch's names and defaults).

Floats default to float32, Python ints to int64; every function takes device= and dtype=, and random
ones draw from the per-device generators seeded by gpuad.manual_seed, or from a gpuad.Generator
passed as generator= (see backend/random.py). Random values cannot equal torch's (other bit
generators); their distributions, shapes, dtypes, devices and argument errors do.
"""
import math

import numpy

from . import autograd, backend
from .tensor import Tensor


def _float_dtype(dtype):
    return backend.DEFAULT_FLOAT if dtype is None else numpy.dtype(dtype)


def _size(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _make(array, requires_grad):
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor copied from data (lists, scalars, numpy/CuPy arrays, Tensors), like
    torch.tensor: Python floats become float32, Python ints int64; arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.array
    elif backend.is_array(data):
        backend.note_host_data(data)  # gpuad.compile: made anew each call?
    if dtype is None and not backend.is_array(data) and not isinstance(data, numpy.generic):
        probe = numpy.asarray(data)
        if probe.dtype.kind == "f":
            dtype = backend.DEFAULT_FLOAT
        elif probe.dtype.kind in "iu":
            dtype = backend.int64
        data = probe
    dev = backend.device(device) if device is not None else (
        backend.device_of(data) if backend.is_array(data) else backend.CPU)
    array = backend.asarray(data, None if dtype is None else numpy.dtype(dtype), dev)
    if array is data:
        array = array.copy()  # torch.tensor always copies
    return _make(array, requires_grad)


def from_numpy(array):
    """A CPU tensor sharing memory with a numpy array: writes through either show in the other."""
    if type(array) is not numpy.ndarray:
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"from_numpy: can't convert an array of dtype {array.dtype}; the supported "
                        f"kinds are bool, integer, unsigned, floating and complex")
    backend.note_host_data(array)
    return Tensor(array)


def from_dlpack(obj):
    """A tensor sharing memory with any DLPack exporter (a torch, JAX, CuPy or numpy array, or a
    gpuad Tensor), on the exporter's device: host memory becomes a cpu tensor, GPU memory a cuda
    one, like torch.from_dlpack. Nothing is copied."""
    return Tensor(backend.dlpack.from_dlpack(obj))


def as_tensor(data, dtype=None, device=None):
    """data as a tensor without copying when it can be, like torch.as_tensor: a Tensor (or a numpy
    or CuPy array) already of that dtype and device is shared, not copied; anything else is
    copied as by gpuad.tensor."""
    if isinstance(data, Tensor):
        return data.to(*(a for a in (dtype, device) if a is not None))
    if backend.is_array(data) and (dtype is None or numpy.dtype(dtype) == data.dtype) and (
            device is None or backend.device(device) == backend.device_of(data)):
        backend.note_host_data(data)
        return Tensor(data)
    return tensor(data, dtype, device)


def is_tensor(obj):
    """Whether obj is a gpuad Tensor, like torch.is_tensor."""
    return isinstance(obj, Tensor)


def _triangle_indices(op, row, col, offset, dtype, device):
    if row < 0 or col < 0:
        raise RuntimeError(f"{op}: row and col must be non-negative, got {row} and {col}")
    rows, cols = getattr(numpy, op)(row, offset, col)
    dtype = backend.int64 if dtype is None else numpy.dtype(dtype)
    return Tensor(backend.asarray(numpy.stack([rows, cols]), dtype, backend.device(device)))


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (row, col) indices of the lower triangle of a row x col matrix (on and below the
    offset-th diagonal) as a 2 x N int64 tensor, row by row, like torch.tril_indices."""
    return _triangle_indices("tril_indices", row, col, offset, dtype, device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (row, col) indices of the upper triangle (on and above the offset-th diagonal), like
    torch.triu_indices."""
    return _triangle_indices("triu_indices", row, col, offset, dtype, device)


def _full(size, value, dtype, device, requires_grad):
    dev = backend.device(device)
    if dtype is None:
        dtype = (backend.bool_ if isinstance(value, bool) else
                 backend.int64 if isinstance(value, int) else backend.DEFAULT_FLOAT)
    array = backend.create(dev, "full", _size(size), value, dtype=numpy.dtype(dtype))
    return _make(array, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _full(size, 0, _float_dtype(dtype), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _full(size, 1, _float_dtype(dtype), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    array = backend.create(device, "empty", _size(size), dtype=_float_dtype(dtype))
    return _make(array, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    return _full((size,) if isinstance(size, int) else (tuple(size),), fill_value, dtype, device,
                 requires_grad)


def _like(x, dtype, device):
    return (x.dtype if dtype is None else dtype), (x.device if device is None else device)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(x, dtype, device)
    return _full(x.shape, 0, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(x, dtype, device)
    return _full(x.shape, 1, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(x, dtype, device)
    return _full(x.shape, fill_value, dtype, device, requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad=False):
    """Like torch.empty_like; gpuad fills it with zeros (an uninitialised array buys nothing here
    and would make runs unrepeatable)."""
    return zeros_like(x, dtype, device, requires_grad)


def numel(x):
    """The number of elements of a tensor, like torch.numel."""
    return x.numel()


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """[start, end) by step; int64 for integer arguments, float32 otherwise, like torch.arange."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.DEFAULT_FLOAT
    return _make(backend.create(device, "arange", start, end, step, dtype=numpy.dtype(dtype)),
                 requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _make(backend.create(device, "linspace", start, end, steps, dtype=_float_dtype(dtype)),
                 requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    """base ** linspace(start, end, steps), like torch.logspace (float32 by default)."""
    exponents = numpy.linspace(start, end, steps, dtype=numpy.float64)
    values = numpy.power(float(base), exponents).astype(_float_dtype(dtype))
    return _make(backend.to_device(values, device or "cpu"), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(backend.create(device, "eye", n, m, dtype=_float_dtype(dtype)), requires_grad)


class Generator(backend.random.Generator):
    """A random number generator of its own, like torch.Generator(device="cpu"): seed it with
    manual_seed(seed), pass it as generator= to any random function, and its draws repeat
    without touching (or being touched by) the global generator. get_state() is a uint8 Tensor
    that set_state() takes back."""

    def get_state(self):
        return Tensor(super().get_state())

    def set_state(self, new_state):
        return super().set_state(new_state.array if isinstance(new_state, Tensor) else new_state)


def _generator(name, generator):
    if generator is not None and not isinstance(generator, backend.random.Generator):
        raise TypeError(f"{name}: generator must be a gpuad.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator


def _draw(name, kind, shape, dtype, device, *args, generator=None):
    return backend.random.draw(kind, shape, dtype, device or "cpu", *args,
                               generator=_generator(name, generator))


# gpuad.func.vmap's say over random draws while some vmap runs (its randomness=), None otherwise:
# hook(name, shape, draw, requires_grad) -> the Tensor, where draw(shape) makes the array. Draws
# it cannot batch come with draw=None: the hook refuses them or returns None (draw as usual).
VMAP_RANDOMNESS = [None]


def _random(name, shape, draw, requires_grad):
    """draw(shape) as a Tensor; inside vmap, batched or shared as its randomness= says."""
    hook = VMAP_RANDOMNESS[0]
    if hook is not None:
        out = hook(name, shape, draw, requires_grad)
        if out is not None:
            return out
    return _make(draw(shape), requires_grad)


def _check_vmap_randomness(name):
    if VMAP_RANDOMNESS[0] is not None:
        VMAP_RANDOMNESS[0](name, None, None, False)


def _floating(name, dtype, kernel):
    # torch names the missing kernel; gpuad says what would work
    if numpy.dtype(dtype).kind != "f":
        raise NotImplementedError(f"{name}: \"{kernel}\" not implemented for '{numpy.dtype(dtype)}'"
                                  f": gpuad draws these only in floating dtypes; pass "
                                  f"dtype=gpuad.float32")


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1) from gpuad's seeded generator (or `generator`)."""
    dtype = _float_dtype(dtype)
    _floating("rand", dtype, "check_uniform_bounds")
    return _random("rand", _size(size), lambda shape: _draw(
        "rand", "uniform", shape, dtype, device, generator=generator), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal from gpuad's seeded generator (or `generator`)."""
    dtype = _float_dtype(dtype)
    _floating("randn", dtype, "normal_kernel_cpu")
    return _random("randn", _size(size), lambda shape: _draw(
        "randn", "normal", shape, dtype, device, generator=generator), requires_grad)


def _check_range(low, high):
    if not low < high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= "
                           f"to={high}")


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False):
    """Integers in [low, high) (int64 by default): randint(high, size) or randint(low, high,
    size), like torch.randint."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    _check_range(low, high)
    dtype = backend.int64 if dtype is None else numpy.dtype(dtype)
    return _random("randint", _size(size or ()), lambda shape: _draw(
        "randint", "integers", shape, dtype, device, low, high, generator=generator),
        requires_grad)


def rand_like(input, *, generator=None, dtype=None, device=None, requires_grad=False,
              memory_format=None):
    """rand with input's shape, dtype and device (unless given)."""
    dtype, device = _like(input, dtype, device)
    _floating("rand_like", dtype, "check_uniform_bounds")
    return _random("rand_like", input.shape, lambda shape: _draw(
        "rand_like", "uniform", shape, dtype, device, generator=generator), requires_grad)


def randn_like(input, *, generator=None, dtype=None, device=None, requires_grad=False,
               memory_format=None):
    """randn with input's shape, dtype and device (unless given)."""
    dtype, device = _like(input, dtype, device)
    _floating("randn_like", dtype, "normal_kernel_cpu")
    return _random("randn_like", input.shape, lambda shape: _draw(
        "randn_like", "normal", shape, dtype, device, generator=generator), requires_grad)


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, device=None,
                 requires_grad=False, memory_format=None):
    """Integers in [low, high) (randint_like(input, high) means low=0) with input's shape, in
    input's dtype (a float tensor gives whole floats, as in torch)."""
    if high is None:
        low, high = 0, low
    _check_range(low, high)
    dtype, device = _like(input, dtype, device)
    return _random("randint_like", input.shape, lambda shape: _draw(
        "randint_like", "integers", shape, dtype, device, low, high, generator=generator),
        requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False,
             pin_memory=False):
    """A random permutation of 0..n-1 (int64 by default), like torch.randperm."""
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    dtype = backend.int64 if dtype is None else numpy.dtype(dtype)
    _check_vmap_randomness("randperm")
    return _make(_draw("randperm", "permutation", None, dtype, device, int(n),
                       generator=generator), requires_grad)


# Draws whose parameters require grad: torch records them with zero gradients (a sample does not
# move with its parameters in torch's rule), so gpuad records the same Node.
def _zero_gradients(g, y, *inputs):
    return tuple(Tensor(backend.xp_of(x.array).zeros_like(x.array)) for x in inputs)


def _sampled(name, sample, *params):
    out = Tensor(sample)
    tracked = tuple(p for p in params if isinstance(p, Tensor) and p.requires_grad)
    if tracked and autograd.is_grad_enabled():
        out._node = autograd.Node(name, _zero_gradients, tracked, {})
        out._requires_grad = True
    return out


def _bad_values(array, bad):
    """Whether bad(array) holds anywhere, read only where a check may read values."""
    return backend.random.may_inspect(array) and bool(bad(array).any())


def _same_device(name, *tensors):
    devices = {t.device for t in tensors if isinstance(t, Tensor)}
    if len(devices) > 1:
        a, b = sorted(map(str, devices))[:2]
        raise RuntimeError(f"{name}: expected all tensors to be on the same device, but found at "
                           f"least two devices, {a} and {b}; move them with .to(device) first")


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False):
    """Normal samples, like torch.normal: normal(mean_tensor, std_tensor_or_float),
    normal(mean_float, std_tensor) (shapes broadcast; dtype the mean's, else the std's), or
    normal(mean_float, std_float, size) with dtype= and device=."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal: with a float mean and std, give the size: "
                            "normal(mean, std, size)")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        dtype = _float_dtype(dtype)
        shape = tuple(size) if isinstance(size, (tuple, list)) else (size,)
        return _random("normal", shape, lambda shape: _draw(
            "normal", "normal", shape, dtype, device, generator=generator) * std + mean,
            requires_grad)
    _check_vmap_randomness("normal")
    _same_device("normal", mean, std)
    tensor_arg = mean if isinstance(mean, Tensor) else std
    out_dtype = tensor_arg.dtype
    _floating("normal", out_dtype, "normal_kernel_cpu")
    if isinstance(std, Tensor):
        if _bad_values(std.array, lambda s: s < 0):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    shapes = [t.shape for t in (mean, std) if isinstance(t, Tensor)]
    try:
        shape = numpy.broadcast_shapes(*shapes)
    except ValueError:
        raise RuntimeError(f"normal: the shapes of mean {tuple(shapes[0])} and std "
                           f"{tuple(shapes[-1])} do not broadcast") from None
    raw = [t.array.astype(out_dtype, copy=False) if isinstance(t, Tensor) else t
           for t in (mean, std)]
    z = _draw("normal", "normal", shape, out_dtype, tensor_arg.device, generator=generator)
    return _sampled("Normal", z * raw[1] + raw[0], mean, std)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples in input's dtype: with probability input (each element in [0, 1]), or with
    the float p for every element of input's shape, like torch.bernoulli."""
    _check_vmap_randomness("bernoulli")
    if p is None:
        _floating("bernoulli", input.dtype, "bernoulli_tensor_cpu_p_")
        if _bad_values(input.array, lambda a: ~((a >= 0) & (a <= 1))):
            raise RuntimeError("bernoulli: expected every probability in [0, 1] (torch: Expected "
                               "p_in >= 0 && p_in <= 1 to be true)")
        probs = input.array
    else:
        _check_probability("bernoulli_", p)
        probs = p
    u = _draw("bernoulli", "uniform", input.shape, _uniform_dtype(input.dtype), input.device,
              generator=generator)
    return _sampled("Bernoulli", (u < probs).astype(input.dtype), input)


def _uniform_dtype(dtype):
    return dtype if dtype in (backend.float32, backend.float64) else backend.float64


def _check_probability(name, p):
    if not 0 <= p <= 1:
        raise RuntimeError(f"{name} expects p to be in [0, 1], but got p={p}")


def poisson(input, generator=None):
    """Poisson samples with rates input (each >= 0), in input's dtype, like torch.poisson."""
    _check_vmap_randomness("poisson")
    _floating("poisson", input.dtype, "poisson_cpu")
    if _bad_values(input.array, lambda a: ~(a >= 0)):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    rates = input.array
    sample = _draw("poisson", "poisson", rates.shape, input.dtype, input.device, rates,
                   generator=generator)
    return _sampled("Poisson", sample, input)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Indices (int64) drawn from the rows of input (1-D, or 2-D for a batch) taken as
    unnormalised category weights, with or without replacement, like torch.multinomial."""
    _check_vmap_randomness("multinomial")
    probs = input.array
    if probs.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if input.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype}")
    n = probs.shape[-1]
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > n:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    if n > 2 ** 24:
        raise RuntimeError("number of categories cannot exceed 2^24")
    if _bad_values(probs, lambda a: ~(backend.xp_of(a).isfinite(a) & (a >= 0))):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if _bad_values(probs, lambda a: a.sum(axis=-1) <= 0):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    rows = probs.reshape(-1, n)
    xp, dev = backend.xp_of(probs), input.device
    with backend.device_scope(probs):
        if not replacement:
            # the exponential race (torch's algorithm): the num_samples largest p / E, E ~ Exp(1),
            # are a sample without replacement
            race = rows / _draw("multinomial", "exponential", rows.shape, rows.dtype, dev,
                                generator=generator)
            index = xp.argsort(-race, axis=-1)[:, :num_samples]
        else:
            index = _inverse_cdf(xp, rows, num_samples, dev, generator)
    return Tensor(index.reshape(probs.shape[:-1] + (num_samples,)).astype(backend.int64))


def _inverse_cdf(xp, rows, num_samples, dev, generator):
    """num_samples categories per row by inverting the row's CDF, all rows in one searchsorted:
    row r's CDF is shifted to [2r, 2r + 1], so the rows never overlap."""
    count, n = rows.shape
    cdf = xp.cumsum(rows.astype(backend.float64), axis=-1)
    cdf /= cdf[:, -1:]
    shift = 2 * xp.arange(count, dtype=backend.float64)[:, None]
    u = _draw("multinomial", "uniform", (count, num_samples), backend.float64, dev,
              generator=generator)
    index = xp.searchsorted((cdf + shift).ravel(), (u + shift).ravel(), side="right")
    index = index.reshape(count, num_samples) - (xp.arange(count) * n)[:, None]
    # u + 2r can round up to 2r + 1, past the row: take its last category of positive weight
    last = n - 1 - xp.argmax((rows[:, ::-1] > 0).astype(backend.int8), axis=-1)
    return xp.minimum(index, last[:, None])


# ---- in-place fills (Tensor.normal_, uniform_, ...) ---------------------------------------------
def fill_random(t, name, *args, generator=None):
    """Tensor.<name>(*args): validate like torch, then draw and write in place (the tensor's
    version is bumped; a tensor that requires grad is refused, as for other in-place writes)."""
    _check_vmap_randomness(name)
    make = _FILLS[name](t, *args)
    dev = t.device
    _generator(name, generator)

    def draw(kind, *extra, dtype=None):
        return backend.random.draw(kind, t.shape, dtype or _uniform_dtype(t.dtype), dev, *extra,
                                   generator=generator)
    return t._inplace(name, lambda a, _: _assign(a, make(draw)))


def _assign(a, values):
    a[...] = values


def _fill_normal(t, mean=0, std=1):
    _floating("normal_", t.dtype, "normal_kernel_cpu")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return lambda draw: draw("normal", dtype=t.dtype) * std + mean


def _fill_uniform(t, from_=0, to=1):
    _floating("uniform_", t.dtype, "check_uniform_bounds")
    if from_ > to:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found "
                           f"from={from_} > to={to}")
    return lambda draw: draw("uniform", dtype=t.dtype) * (to - from_) + from_


def _fill_bernoulli(t, p=0.5):
    if isinstance(p, Tensor):
        if p.device != t.device:
            raise RuntimeError(f"bernoulli_: p is on {p.device} but the tensor is on {t.device}")
        if _bad_values(p.array, lambda a: ~((a >= 0) & (a <= 1))):
            raise RuntimeError("bernoulli_: expected every probability in p to be in [0, 1]")
        p = p.array
    else:
        _check_probability("bernoulli_", p)
    return lambda draw: draw("uniform") < p


def _fill_exponential(t, lambd=1):
    if t.dtype.kind != "f":
        raise RuntimeError(f"Exponential distribution is a continuous probability distribution. "
                           f"dtype must be a floating point but you specified {t.dtype}")
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    return lambda draw: draw("exponential", dtype=t.dtype) / lambd


def _fill_cauchy(t, median=0, sigma=1):
    _floating("cauchy_", t.dtype, "cauchy_cpu")
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    return lambda draw: draw("cauchy", dtype=t.dtype) * sigma + median


def _fill_log_normal(t, mean=1, std=2):
    _floating("log_normal_", t.dtype, "log_normal_cpu")
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    return lambda draw: backend.xp_of(t.array).exp(draw("normal", dtype=t.dtype) * std + mean)


def _fill_geometric(t, p):
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    # the trial of the first success: ceil(log(U) / log(1 - p)) with U in (0, 1]
    return lambda draw: backend.xp_of(t.array).ceil(
        backend.xp_of(t.array).log(1 - draw("uniform")) / math.log1p(-p))


def _fill_random_ints(t, from_=0, to=None):
    if to is None and from_ != 0:  # random_(to)
        from_, to = 0, from_
    if to is None:  # torch: [0, 2^mantissa] for floats, the whole positive range for integers
        kind = t.dtype.kind
        to = (2 ** (numpy.finfo(t.dtype).nmant + 1) + 1 if kind == "f" else
              2 if kind == "b" else int(numpy.iinfo(t.dtype).max) + 1)
    _check_range(from_, to)
    if to - 1 > 2 ** 63 - 1:  # numpy draws int64; uint64's top half is out of reach
        to = 2 ** 63
    return lambda draw: draw("integers", from_, to, dtype=backend.int64)


_FILLS = {"normal_": _fill_normal, "uniform_": _fill_uniform, "bernoulli_": _fill_bernoulli,
          "exponential_": _fill_exponential, "cauchy_": _fill_cauchy,
          "log_normal_": _fill_log_normal, "geometric_": _fill_geometric,
          "random_": _fill_random_ints}


def manual_seed(seed):
    """Seed the generators of every device, like torch.manual_seed."""
    backend.random.manual_seed(seed)


def get_rng_state():
    """The random generators' state, to save in a checkpoint (gpuad.set_rng_state restores it)."""
    return backend.random.get_rng_state()


def set_rng_state(state):
    backend.random.set_rng_state(state)
