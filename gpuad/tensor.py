"""Tensor: an array of one backend (`.array`) plus what autograd needs (grad, requires_grad, its
Node, a version for in-place checks); `.data` is PyTorch's history-free view.

Operators and methods are one-line delegations to gpuad.ops, so reading this file shows the whole
Tensor API; the maths lives in ops/. The logic here is in-place updates, device and dtype moves,
conversions to Python and numpy, and hook registration.
"""
import operator

import numpy

from . import autograd, backend


class MovesWithTo:
    """torch's device and dtype shortcuts, each one call of self.to(...): shared by Tensor,
    nn.Module and PackedSequence, which differ only in what their to() does."""
    __slots__ = ()

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def float(self):
        return self.to(backend.float32)

    def double(self):
        return self.to(backend.float64)

    def half(self):
        return self.to(backend.float16)


class Tensor(MovesWithTo):
    """A numpy (CPU) or CuPy (CUDA) array that can record operations for reverse-mode autodiff."""
    __slots__ = ("array", "grad", "_requires_grad", "_node", "_version", "_retains_grad", "_hooks",
                 "_post_accumulate_hooks", "__weakref__")
    __array_ufunc__ = None  # `ndarray * tensor` defers to Tensor.__rmul__ instead of converting us
    __hash__ = object.__hash__  # identity, like torch; __eq__ below is elementwise

    def __init__(self, data, requires_grad=False):
        if type(data) not in backend.ARRAY_TYPES:  # Tensor([1, 2]) is float32, like torch.Tensor
            data = backend.asarray(data, backend.DEFAULT_FLOAT)
        self.array = data
        self.grad = None
        self._requires_grad = False
        self._node = None
        self._version = 0
        self._retains_grad = False
        self._hooks = None
        if requires_grad:
            self.requires_grad = True

    # ---- attributes ------------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self.array.dtype.kind not in "fc":
            raise RuntimeError(f"requires_grad: only floating point tensors can require gradients, "
                               f"but this tensor is {self.array.dtype}; convert it first, e.g. "
                               f"x.float().requires_grad_()")
        if not value and self._node is not None:
            raise RuntimeError("requires_grad: you can only change requires_grad of leaf tensors; "
                               "use .detach() to get a tensor that does not require grad")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def data(self):
        """PyTorch's `.data`: a tensor without history that shares this one's array (in-place
        updates through it bypass autograd). The raw numpy/CuPy array itself is `.array`."""
        return Tensor(self.array)

    @data.setter
    def data(self, value):
        self.array = value.array if isinstance(value, Tensor) else backend.asarray(
            value, None, self.device)

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)
    device = property(lambda self: backend.device_of(self.array))
    is_leaf = property(lambda self: self._node is None)
    grad_fn = property(lambda self: self._node)
    is_cuda = property(lambda self: self.device.type == "cuda")
    T = property(lambda self: ops.permute(self, tuple(range(self.ndim - 1, -1, -1))))
    mT = property(lambda self: ops.swapaxes(self, -1, -2))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return int(self.array.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        body = numpy.array2string(backend.asnumpy(self.array), separator=", ", prefix="tensor(")
        extra = f", device='{self.device}', dtype={self.dtype}"
        if self._node is not None:
            extra += f", grad_fn=<{self._node.name}Backward>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- leaving the graph, the device, Python -----------------------------------------------
    def detach(self):
        """A tensor sharing this data but cut from the graph."""
        return Tensor(self.array)

    def clone(self):
        return ops.clone(self)

    def to(self, *args, dtype=None, device=None):
        """Move to a device and/or cast to a dtype: `x.to('cuda')`, `x.to(gpuad.float64)`."""
        for arg in args:
            if isinstance(arg, (str, backend.Device)):
                device = arg
            else:
                dtype = arg
        out = self
        if dtype is not None and numpy.dtype(dtype) != self.dtype:
            out = ops.cast(out, numpy.dtype(dtype))
        if device is not None and backend.device(device) != self.device:
            out = ops.to_device(out, backend.device(device))
        return out

    def long(self):
        return self.to(backend.int64)

    def int(self):
        return self.to(backend.int32)

    def bool(self):
        return self.to(backend.bool_)

    def type_as(self, other):
        return self.to(other.dtype)

    def type(self, dtype=None):
        """The type name ('gpuad.FloatTensor', like torch's) without a dtype; else a cast."""
        if dtype is None:
            return f"gpuad.{_TYPE_NAMES.get(self.dtype.name, self.dtype.name)}Tensor"
        return self.to(dtype)

    is_cpu = property(lambda self: self.device.type == "cpu")

    def __format__(self, spec):
        """format(t, '+.2f') for a 0-d tensor formats its value, as in torch."""
        if self.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __getattr__(self, name):  # only reached when the name does not exist
        if name.startswith("_"):
            raise AttributeError(f"'Tensor' object has no attribute {name!r}")
        raise AttributeError(f"'Tensor' object has no attribute {name!r}: gpuad's Tensor does "
                             f"not have torch.Tensor.{name}")

    def numpy(self, force=False):
        """The numpy array itself, sharing memory (writes show through both), for a CPU tensor that
        needs no grad, as in PyTorch; force=True allows any tensor and may copy (detach, cpu)."""
        if force:
            return backend.asnumpy(self.array)
        if self.requires_grad:
            raise RuntimeError("numpy: Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if type(self.array) is not numpy.ndarray:
            raise TypeError(f"numpy: can't convert a {self.device} tensor to numpy; copy it to the "
                            f"host first with tensor.cpu().numpy()")
        return self.array

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """DLPack export of the data, zero-copy (torch.from_dlpack(t), numpy.from_dlpack(t),
        cupy.from_dlpack(t)); the keywords are the array API's, passed on when given. Like torch,
        refuses (BufferError) a tensor that requires grad."""
        if self.requires_grad:
            raise BufferError("__dlpack__: Can't export tensors that require gradient, use "
                              "tensor.detach()")
        given = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
        given = {k: v for k, v in given.items() if v is not None}
        return backend.dlpack.to_dlpack(self.array, **given)

    def __dlpack_device__(self):
        return backend.dlpack.dlpack_device(self.array)

    def item(self):
        if self.array.size != 1:
            raise RuntimeError(f"item: only one-element tensors can be converted to Python "
                               f"scalars, but this one has shape {self.shape}")
        return self.array.item()

    def tolist(self):
        return backend.asnumpy(self.array).tolist()

    def __array__(self, dtype=None, copy=None):
        if type(self.array) is not numpy.ndarray:
            raise TypeError(f"can't convert a {self.device} tensor to a numpy array implicitly; "
                            f"use tensor.cpu().numpy()")
        return self.array if dtype is None else self.array.astype(dtype)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.array.size} elements is "
                               f"ambiguous; use .any() or .all()")
        return bool(self.item())

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ---- autograd ------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad; see autograd.run_backward."""
        retain = create_graph if retain_graph is None else retain_graph
        autograd.run_backward([self], [gradient], retain, create_graph)

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward."""
        if self._node is not None:
            self._retains_grad = True

    def register_hook(self, hook):
        """Call hook(grad) when this tensor's gradient is computed; a non-None return replaces
        it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't "
                               "require gradient")
        self._hooks = (self._hooks or []) + [hook]
        return hook

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(self) once backward has written this leaf's final gradient into .grad, while
        the rest of backward may still run (what DistributedDataParallel overlaps with). Returns
        a handle whose remove() unregisters it."""
        if self._node is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors get a .grad "
                               "to accumulate into; use register_hook on a non-leaf tensor")
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on a "
                               "tensor that doesn't require gradient")
        hooks = getattr(self, "_post_accumulate_hooks", None) or []
        self._post_accumulate_hooks = hooks + [hook]
        autograd.POST_ACCUMULATE_HOOKS[0] = True
        return autograd.RemovableHandle(self, "_post_accumulate_hooks", hook)

    # ---- in place (only where no gradient can be corrupted) ------------------------------------
    def _inplace(self, name, write, value=None):
        """Run write(data, raw value) on this tensor's array; a refused or failed update changes
        nothing, not even the version."""
        if self._requires_grad and autograd.grad_mode.enabled:
            kind = "a leaf tensor" if self._node is None else "a tensor"
            raise RuntimeError(f"{name}: {kind} that requires grad is being used in an in-place "
                               f"operation; wrap it in `with gpuad.no_grad():` (for parameter "
                               f"updates) or use the out-of-place form (x = x + y)")
        raw = self._inplace_value(name, value)
        if backend.TRACER[0] is not None:  # gpuad.compile records the write into self's array
            backend.TRACER[0].adopt(self)
        try:
            write(self.array, raw)
        except (ValueError, TypeError, IndexError) as error:
            detail = f"tensor {self.dtype} {self.shape}, value " + (
                f"{raw.dtype} {raw.shape}" if hasattr(raw, "shape") else repr(raw))
            raise rebuilt(error, f"{name}: {error} ({detail})") from None
        self._bump_version()
        return self

    def _bump_version(self):
        """Record that .array changed in place (optimizers call this before writing parameters):
        nodes recorded before now will refuse to use this tensor."""
        autograd.INPLACE_CLOCK[0] += 1
        self._version = autograd.INPLACE_CLOCK[0]

    def _inplace_value(self, name, value):
        if isinstance(value, Tensor):
            if value.device != self.device:
                raise RuntimeError(f"{name}: value is on {value.device} but the tensor is on "
                                   f"{self.device}; move it with .to('{self.device}')")
            return value.array
        if value is None or isinstance(value, (int, float, bool)):
            return value
        return backend.asarray(value, self.dtype, self.device)

    def copy_(self, src):
        return self._inplace("copy_", _assign_all, src)

    def zero_(self):
        return self._inplace("zero_", lambda a, _: a.fill(0))

    def fill_(self, value):
        return self._inplace("fill_", lambda a, v: a.fill(v), value)

    def __setitem__(self, index, value):
        index = ops.shape.raw_index(index, self.array)
        self._inplace("__setitem__", lambda a, v: a.__setitem__(index, v), value)

    def add_(self, other, alpha=1):
        write = _iadd if alpha == 1 else lambda a, v: _iadd(a, v * alpha)
        return self._inplace("add_", write, other)

    def sub_(self, other):
        return self._inplace("sub_", _isub, other)

    def mul_(self, other):
        return self._inplace("mul_", _imul, other)

    def div_(self, other):
        return self._inplace("div_", _itruediv, other)

    # ---- random in-place fills (PyTorch breadth) ----
    def _fill_random(self, name, *args, generator=None):
        from . import creation  # creation imports this module, so look it up when first used
        return creation.fill_random(self, name, *args, generator=generator)

    def normal_(self, mean=0, std=1, *, generator=None):
        return self._fill_random("normal_", mean, std, generator=generator)

    def uniform_(self, from_=0, to=1, *, generator=None):
        return self._fill_random("uniform_", from_, to, generator=generator)

    def bernoulli_(self, p=0.5, *, generator=None):
        return self._fill_random("bernoulli_", p, generator=generator)

    def exponential_(self, lambd=1, *, generator=None):
        return self._fill_random("exponential_", lambd, generator=generator)

    def cauchy_(self, median=0, sigma=1, *, generator=None):
        return self._fill_random("cauchy_", median, sigma, generator=generator)

    def log_normal_(self, mean=1, std=2, *, generator=None):
        return self._fill_random("log_normal_", mean, std, generator=generator)

    def geometric_(self, p, *, generator=None):
        return self._fill_random("geometric_", p, generator=generator)

    def random_(self, from_=0, to=None, *, generator=None):
        return self._fill_random("random_", from_, to, generator=generator)

    def bernoulli(self, p=None, *, generator=None):
        from . import creation
        return creation.bernoulli(self, p, generator=generator)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        from . import creation
        return creation.multinomial(self, num_samples, replacement, generator=generator)

    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    # ---- operators -----------------------------------------------------------------------------
    def __add__(self, o): return ops.add(self, o)
    def __radd__(self, o): return ops.add(o, self)
    def __sub__(self, o): return ops.sub(self, o)
    def __rsub__(self, o): return ops.sub(o, self)
    def __mul__(self, o): return ops.mul(self, o)
    def __rmul__(self, o): return ops.mul(o, self)
    def __truediv__(self, o): return ops.div(self, o)
    def __rtruediv__(self, o): return ops.div(o, self)
    def __pow__(self, o): return ops.pow(self, o)
    def __rpow__(self, o): return ops.pow(o, self)
    def __matmul__(self, o): return ops.matmul(self, o)
    def __rmatmul__(self, o): return ops.matmul(o, self)
    def __neg__(self): return ops.neg(self)
    def __pos__(self): return self
    def __abs__(self): return ops.abs(self)
    def __eq__(self, o): return ops.eq(self, o)
    def __ne__(self, o): return ops.ne(self, o)
    def __lt__(self, o): return ops.lt(self, o)
    def __le__(self, o): return ops.le(self, o)
    def __gt__(self, o): return ops.gt(self, o)
    def __ge__(self, o): return ops.ge(self, o)
    def __and__(self, o): return ops.logical_and(self, o)
    def __or__(self, o): return ops.logical_or(self, o)
    def __invert__(self): return ops.logical_not(self)
    def __getitem__(self, index): return ops.getitem(self, index)

    # ---- methods (PyTorch names) ---------------------------------------------------------------
    def add(self, o): return ops.add(self, o)
    def sub(self, o): return ops.sub(self, o)
    def mul(self, o): return ops.mul(self, o)
    def div(self, o): return ops.div(self, o)
    def pow(self, o): return ops.pow(self, o)
    def neg(self): return ops.neg(self)
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def log1p(self): return ops.log1p(self)
    def expm1(self): return ops.expm1(self)
    def sqrt(self): return ops.sqrt(self)
    def rsqrt(self): return ops.rsqrt(self)
    def square(self): return ops.square(self)
    def reciprocal(self): return ops.reciprocal(self)
    def abs(self): return ops.abs(self)
    def sign(self): return ops.sign(self)
    def sin(self): return ops.sin(self)
    def cos(self): return ops.cos(self)
    def tan(self): return ops.tan(self)
    def tanh(self): return ops.tanh(self)
    def sigmoid(self): return ops.sigmoid(self)
    def relu(self): return ops.relu(self)
    def erf(self): return ops.erf(self)
    def clamp(self, min=None, max=None): return ops.clamp(self, min=min, max=max)
    def clip(self, min=None, max=None): return ops.clamp(self, min=min, max=max)
    def maximum(self, o): return ops.maximum(self, o)
    def minimum(self, o): return ops.minimum(self, o)
    def where(self, condition, o): return ops.where(condition, self, o)
    def masked_fill(self, mask, value): return ops.masked_fill(self, mask, value)
    def isnan(self): return ops.isnan(self)
    def isinf(self): return ops.isinf(self)
    def isfinite(self): return ops.isfinite(self)
    def sum(self, *a, **k): return ops.sum(self, *a, **k)
    def mean(self, *a, **k): return ops.mean(self, *a, **k)
    def prod(self, *a, **k): return ops.prod(self, *a, **k)
    def max(self, *a, **k): return ops.max(self, *a, **k)
    def min(self, *a, **k): return ops.min(self, *a, **k)
    def amax(self, *a, **k): return ops.amax(self, *a, **k)
    def amin(self, *a, **k): return ops.amin(self, *a, **k)
    def var(self, *a, **k): return ops.var(self, *a, **k)
    def std(self, *a, **k): return ops.std(self, *a, **k)
    def logsumexp(self, *a, **k): return ops.logsumexp(self, *a, **k)
    def norm(self, *a, **k): return ops.norm(self, *a, **k)
    def argmax(self, *a, **k): return ops.argmax(self, *a, **k)
    def argmin(self, *a, **k): return ops.argmin(self, *a, **k)
    def cumsum(self, dim, dtype=None): return ops.cumsum(self, dim, dtype=dtype)
    def any(self, *a, **k): return ops.any(self, *a, **k)
    def all(self, *a, **k): return ops.all(self, *a, **k)
    def reshape(self, *shape): return ops.reshape(self, _shape_arg(shape))
    def view(self, *shape): return ops.reshape(self, _shape_arg(shape))
    def flatten(self, start_dim=0, end_dim=-1): return ops.flatten(self, start_dim, end_dim)
    def permute(self, *dims): return ops.permute(self, _shape_arg(dims))
    def transpose(self, dim0, dim1): return ops.swapaxes(self, dim0, dim1)
    def swapaxes(self, dim0, dim1): return ops.swapaxes(self, dim0, dim1)
    def squeeze(self, dim=None): return ops.squeeze(self, dim)
    def unsqueeze(self, dim): return ops.unsqueeze(self, dim)
    def expand(self, *shape): return ops.expand(self, _shape_arg(shape))
    def expand_as(self, other): return ops.expand(self, other.shape)
    def sum_to_size(self, *size): return ops.sum_to(self, shape=_shape_arg(size))
    def broadcast_to(self, shape): return ops.expand(self, tuple(shape))
    def repeat(self, *repeats): return ops.repeat(self, _shape_arg(repeats))
    def tile(self, *reps): return ops.tile(self, _shape_arg(reps))
    def split(self, split_size, dim=0): return ops.split(self, split_size, dim)
    def chunk(self, chunks, dim=0): return ops.chunk(self, chunks, dim)
    def flip(self, *dims): return ops.flip(self, _shape_arg(dims))
    def gather(self, dim, index): return ops.gather(self, dim, index)
    def index_select(self, dim, index): return ops.index_select(self, dim, index)
    def tril(self, diagonal=0): return ops.tril(self, diagonal)
    def triu(self, diagonal=0): return ops.triu(self, diagonal)
    def matmul(self, o): return ops.matmul(self, o)
    def dot(self, o): return ops.dot(self, o)
    def outer(self, o): return ops.outer(self, o)
    # ---- linear algebra (PyTorch breadth) ----
    def t(self): return ops.t(self)
    def mm(self, o): return ops.mm(self, o)
    def bmm(self, o): return ops.bmm(self, o)
    def mv(self, o): return ops.mv(self, o)
    def addmm(self, *a, **k): return ops.addmm(self, *a, **k)
    def addmv(self, *a, **k): return ops.addmv(self, *a, **k)
    def baddbmm(self, *a, **k): return ops.baddbmm(self, *a, **k)
    def addbmm(self, *a, **k): return ops.addbmm(self, *a, **k)
    def kron(self, o): return ops.kron(self, o)
    def cross(self, o, dim=None): return ops.cross(self, o, dim)
    def det(self): return ops.det(self)
    def logdet(self): return ops.logdet(self)
    def slogdet(self): return ops.slogdet(self)
    def inverse(self): return ops.inverse(self)
    def cholesky(self, upper=False): return ops.cholesky(self, upper)
    def qr(self, some=True): return ops.qr(self, some)
    def svd(self, some=True, compute_uv=True): return ops.svd(self, some, compute_uv)
    def pinverse(self, rcond=1e-15): return ops.pinverse(self, rcond)
    def matrix_power(self, n): return ops.matrix_power(self, n)
    def matrix_exp(self): return ops.matrix_exp(self)
    def contiguous(self): return self


_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
               "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
               "bool": "Bool"}


def _assign_all(a, v):
    a[...] = v


_iadd, _isub, _imul, _itruediv = operator.iadd, operator.isub, operator.imul, operator.itruediv


def rebuilt(error, message):
    """`error` with a new message, as the same type when it can be rebuilt from one (numpy's
    UFuncTypeError cannot), else as the nearest builtin type."""
    try:
        return type(error)(message)
    except Exception:
        for kind in (IndexError, TypeError, ValueError):
            if isinstance(error, kind):
                return kind(message)
        return RuntimeError(message)


def _shape_arg(args):
    """x.reshape(2, 3) and x.reshape((2, 3)) both mean the shape (2, 3), as in PyTorch."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


from . import ops  # noqa: E402  (ops import Tensor; methods look ops up at call time)
