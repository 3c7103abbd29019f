"""Tensor: an array of one backend (`.array`) plus what autograd needs (grad, requires_grad, its
Node, a version for in-place checks); `.data` is PyTorch's history-free view.

Operators and methods are one-line delegations to gpuad.ops, so reading this file shows the whole
Tensor API; the maths lives in ops/. The logic here is in-place updates, device and dtype moves,
conversions to Python and numpy, and hook registration.
"""
import operator

import numpy

from . import autograd, backend


def to_arguments(op, args, device, dtype, non_blocking=False, copy=False):
    """(device, dtype, copy) from torch's to() spellings: to(device, dtype, non_blocking, copy),
    to(dtype, non_blocking, copy), to(tensor, non_blocking, copy) (its device and dtype), each
    also by keyword. non_blocking is accepted and changes nothing but timing: a copy here is done
    when to() returns."""
    flags = []
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, (str, backend.Device)):
            device = arg
        elif isinstance(arg, bool):
            flags.append(arg)
        elif arg is not None:
            dtype = arg
    if len(flags) > 2:
        raise TypeError(f"{op}: expected at most two flags (non_blocking, copy), got {len(flags)}")
    copy = flags[1] if len(flags) == 2 else copy
    return (None if device is None else backend.device(device),
            None if dtype is None else numpy.dtype(dtype), bool(copy))


_PRINT = {}  # set_printoptions' settings, which Tensor.__repr__ hands to numpy.array2string
_PROFILES = {"default": {}, "short": {"precision": 2, "edgeitems": 2},
             "full": {"threshold": float("inf")}}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None):
    """How tensors print, as torch.set_printoptions: digits after the point, the element count
    above which a tensor is summarised, the items kept at each edge then, the line width, a
    profile ('default', 'short', 'full') to start from, and sci_mode (True: always scientific,
    False: never, None: numpy's choice). gpuad's defaults are numpy's (8 digits, not torch's 4)."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PROFILES)}, got "
                             f"{profile!r}")
        _PRINT.clear()
        _PRINT.update(_PROFILES[profile])
    for key, value in (("precision", precision), ("threshold", threshold),
                       ("edgeitems", edgeitems), ("max_line_width", linewidth),
                       ("sci_mode", sci_mode)):
        if value is not None:
            _PRINT[key] = value


def _array2string_options():
    options = {k: v for k, v in _PRINT.items() if k != "sci_mode"}
    if _PRINT.get("sci_mode") is True:
        digits = _PRINT.get("precision", 8)
        options["formatter"] = {"float_kind": lambda v: f"{v:.{digits}e}"}
    elif _PRINT.get("sci_mode") is False:
        options["suppress_small"] = True
    return options


class MovesWithTo:
    """torch's device and dtype shortcuts, each one call of self.to(...): shared by Tensor,
    nn.Module and PackedSequence, which differ only in what their to() does."""
    __slots__ = ()

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        return self.to("cuda" if device is None else f"cuda:{int(device)}",
                       non_blocking=non_blocking)

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
        autograd.CHANGES[0] += 1

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

    nelement = numel
    ndimension = dim

    def is_floating_point(self):
        return self.array.dtype.kind == "f"

    def is_complex(self):
        return self.array.dtype.kind == "c"

    def is_contiguous(self):
        return bool(self.array.flags.c_contiguous)

    def stride(self, dim=None):
        """Strides in elements, as torch's (numpy's are in bytes)."""
        strides = tuple(s // self.array.dtype.itemsize for s in self.array.strides)
        return strides if dim is None else strides[dim]

    def get_device(self):
        """The GPU's index, -1 on the CPU, as torch's."""
        dev = self.device
        return dev.index if dev.type == "cuda" else -1

    itemsize = property(lambda self: self.array.dtype.itemsize)  # bytes per element, as torch
    nbytes = property(lambda self: int(self.array.size) * self.array.dtype.itemsize)

    def element_size(self):
        return self.array.dtype.itemsize

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        body = numpy.array2string(backend.asnumpy(self.array), separator=", ", prefix="tensor(",
                                  **_array2string_options())
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

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False):
        """Move to a device and/or cast to a dtype, as torch's: `x.to('cuda')`,
        `x.to(gpuad.float64)`, `x.to('cuda', gpuad.float16)`, `x.to(other)` (other's device and
        dtype); this tensor itself when nothing changes, unless copy=True."""
        device, dtype, copy = to_arguments("Tensor.to", args, device, dtype, non_blocking, copy)
        out = self
        if dtype is not None and dtype != self.dtype:
            out = ops.cast(out, dtype)
        if device is not None and device != self.device:
            out = ops.to_device(out, device)
        return out.clone() if copy and out is self else out

    def long(self):
        return self.to(backend.int64)

    def short(self):
        return self.to(backend.int16)

    def char(self):
        return self.to(backend.int8)

    def byte(self):
        return self.to(backend.uint8)

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
        autograd.CHANGES[0] += 1
        return hook

    def _has_hooks(self):
        """Whether Python runs for this tensor during backward (hooks of either kind)."""
        return bool(self._hooks or getattr(self, "_post_accumulate_hooks", None))

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
        autograd.CHANGES[0] += 1
        return autograd.RemovableHandle(self, "_post_accumulate_hooks", hook)

    # ---- in place: recorded where torch records (setitem, the index ops), refused elsewhere ----
    def _inplace(self, name, write, value=None, record=None):
        """Run write(data, raw value) on this tensor's array; a refused or failed update changes
        nothing, not even the version. With a gradient involved, `record` = (op name, vjp, attrs)
        makes the write an op, as torch rebases a tensor modified in place: this tensor takes a
        node whose inputs are its old value and `value`; without one the write is refused."""
        if (isinstance(value, Tensor) and type(value.array) is not type(self.array)
                and value.device != self.device
                and (name == "copy_" or (value.ndim == 0 and value.device == backend.CPU))):
            value = value.to(self.device)  # as torch: copy_ crosses devices, a CPU scalar joins
        recording = self._records((value,))
        if recording:
            self._check_recordable(name, record is not None)
        raw = self._inplace_value(name, value)
        if backend.TRACER[0] is not None:  # gpuad.compile records the write into self's array
            backend.TRACER[0].adopt(self)
        old = self._old_value() if recording else None
        try:
            write(self.array, raw)
        except (ValueError, TypeError, IndexError) as error:
            detail = f"tensor {self.dtype} {self.shape}, value " + (
                f"{raw.dtype} {raw.shape}" if hasattr(raw, "shape") else repr(raw))
            raise rebuilt(error, f"{name}: {error} ({detail})") from None
        self._bump_version()
        if recording:
            op, vjp, attrs = record
            self._node = autograd.Node(op, vjp, (old, value), attrs)
            self._requires_grad = True
        return self

    def _update(self, name, op, *args, **kwargs):
        """The in-place form of an out-of-place op: this tensor takes op(self, *args, **kwargs)'s
        values (and, when autograd records, its node: the op ran on a copy of the old value)."""
        recording = self._records((*args, *kwargs.values()))
        if recording:
            self._check_recordable(name, True)
        if backend.TRACER[0] is not None:  # gpuad.compile records the write into self's array
            backend.TRACER[0].adopt(self)
        old = self._old_value(copy=True) if recording else Tensor(self.array)
        args = tuple(old if a is self else a for a in args)  # x.index_add_(0, i, x) reads old x
        result = op(old, *args, **{k: old if v is self else v for k, v in kwargs.items()})
        if result.shape != self.shape:
            raise RuntimeError(f"{name}: the result's shape {result.shape} does not match the "
                               f"tensor's {self.shape}, so it cannot be written in place")
        self.array[...] = result.array
        self._bump_version()
        if recording and result._node is not None:
            result._node.clock = autograd.INPLACE_CLOCK[0]  # its inputs are unchanged since
            self._node, self._requires_grad = result._node, True
        elif recording:  # an op without a gradient (x.eq_(0)): zeros reach the old value, as torch
            self._node = autograd.Node(name, _no_gradient, (old,), {})
        return self

    def _records(self, values):
        """Whether autograd records an in-place write into this tensor of `values`."""
        return autograd.grad_mode.enabled and (self._requires_grad or any(
            getattr(v, "_requires_grad", False) for v in values))

    def _check_recordable(self, name, recordable):
        """Refuse, as torch does, an in-place write into a leaf that requires grad; and those gpuad
        cannot record: other ops, and writes into a view (gpuad cannot rebase the tensor whose
        memory the view shares, so that tensor's gradient would silently be wrong)."""
        if self._requires_grad and (self._node is None or not recordable):
            kind = "a leaf tensor" if self._node is None else "a tensor"
            raise RuntimeError(f"{name}: {kind} that requires grad is being used in an in-place "
                               f"operation; wrap it in `with gpuad.no_grad():` (for parameter "
                               f"updates) or use the out-of-place form (x = x + y)")
        if not recordable:
            raise RuntimeError(f"{name}: the value requires grad, and gpuad records no in-place "
                               f"{name} (its gradient would be lost); use the out-of-place form "
                               f"(x = x + y)")
        if self._is_a_view():
            raise RuntimeError(f"{name}: this tensor is a view (it shares memory with another, "
                               f"e.g. it came from slicing, view or transpose), and gpuad cannot "
                               f"record an in-place write into a view: the other tensor's "
                               f"gradient would be wrong. Write through the base tensor with one "
                               f"index (x[i, j] = v, not x[i][j] = v), or .clone() the view first")

    def _is_a_view(self):
        """Whether this tensor's array may be a view of another tensor's: of an input of its node
        (an op's output that views a temporary of its own is not), or, without a node to ask, of
        anything. A tensor an in-place write recorded into already passed this check."""
        node = self._node
        if node is None or node.inputs is None:
            return self.array.base is not None
        if node.vjp is ops._index_put.vjp:
            return False
        xp = backend.xp_of(self.array)
        return any(isinstance(x, Tensor) and xp.may_share_memory(self.array, x.array)
                   for x in node.inputs)

    def _old_value(self, copy=False):
        """This tensor as it is before an in-place write, to be the input of the write's node: it
        takes over the current node. Its array is a copy when a rule might read it (only
        _index_put's rule never reads its output or input values)."""
        if self._node is not None and self._node.vjp is not ops._index_put.vjp:
            copy = True
        old = Tensor(self.array.copy() if copy else self.array)
        old._node, old._requires_grad, old._version = self._node, self._requires_grad, self._version
        return old

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
        """self[index] = value in place; recorded (as torch's index_put) when self or value
        requires grad, so value gets the gradient of what it wrote and self's old value the
        rest."""
        index = ops.indexing.setitem_index(self, index, value)
        self._inplace("__setitem__", lambda a, v: ops.indexing.assign(a, index, v), value,
                      ("_index_put", ops._index_put.vjp, {"index": index, "accumulate": False}))

    # In-place arithmetic writes into the array as numpy's in-place operators do (`write`);
    # when autograd records, it is the out-of-place op on the old value (_inplace_op).
    def add_(self, other, alpha=1):
        write = _iadd if alpha == 1 else lambda a, v: _iadd(a, v * alpha)
        return self._inplace_op("add_", ops.add, other, write=write, alpha=alpha)

    def sub_(self, other, alpha=1):
        write = _isub if alpha == 1 else lambda a, v: _isub(a, v * alpha)
        return self._inplace_op("sub_", ops.sub, other, write=write, alpha=alpha)

    def mul_(self, other):
        return self._inplace_op("mul_", ops.mul, other, write=_imul)

    def div_(self, other, *, rounding_mode=None):
        if rounding_mode is not None:
            return self._inplace_op("div_", ops.div, other, rounding_mode=rounding_mode)
        return self._inplace_op("div_", ops.div, other, write=_itruediv)

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
    def __and__(self, o): return ops.bitwise_and(self, o)
    def __or__(self, o): return ops.bitwise_or(self, o)
    def __invert__(self): return ops.bitwise_not(self)
    def __rand__(self, o): return ops.bitwise_and(o, self)
    def __ror__(self, o): return ops.bitwise_or(o, self)
    def __xor__(self, o): return ops.bitwise_xor(self, o)
    def __rxor__(self, o): return ops.bitwise_xor(o, self)
    def __lshift__(self, o): return ops.bitwise_left_shift(self, o)
    def __rlshift__(self, o): return ops.bitwise_left_shift(o, self)
    def __rshift__(self, o): return ops.bitwise_right_shift(self, o)
    def __rrshift__(self, o): return ops.bitwise_right_shift(o, self)
    def __mod__(self, o): return ops.remainder(self, o)
    def __rmod__(self, o): return ops.remainder(o, self)
    def __floordiv__(self, o): return ops.floor_divide(self, o)
    def __rfloordiv__(self, o): return ops.floor_divide(o, self)
    def __getitem__(self, index): return ops.getitem(self, index)

    # ---- methods (PyTorch names) ---------------------------------------------------------------
    def add(self, o, alpha=1): return ops.add(self, o, alpha=alpha)
    def sub(self, o, alpha=1): return ops.sub(self, o, alpha=alpha)
    def mul(self, o): return ops.mul(self, o)
    def div(self, o, rounding_mode=None): return ops.div(self, o, rounding_mode=rounding_mode)
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
    def absolute(self): return ops.abs(self)
    def negative(self): return ops.neg(self)
    def positive(self): return self
    def sign(self): return ops.sign(self)
    def sin(self): return ops.sin(self)
    def cos(self): return ops.cos(self)
    def tan(self): return ops.tan(self)
    def tanh(self): return ops.tanh(self)
    def sigmoid(self): return ops.sigmoid(self)
    def relu(self): return ops.relu(self)
    # ---- activations (PyTorch breadth) ----
    def softmax(self, dim, dtype=None): return ops.softmax(self, dim, dtype=dtype)
    def log_softmax(self, dim, dtype=None): return ops.log_softmax(self, dim, dtype=dtype)
    def erf(self): return ops.erf(self)
    # ---- pointwise, comparison and bitwise (PyTorch breadth) ----
    def _inplace_op(self, name, op, *args, write=None, **kwargs):
        """op(self, *args, **kwargs) written back into this tensor, as torch's in-place methods:
        refused where torch refuses the cast (float into an integer tensor), or, with `write`
        (numpy's in-place operator, which refuses the same), written by write(array, args[0]).
        Under autograd, recorded as op on this tensor's old value, whose node it takes (_update),
        as torch rebases a tensor modified in place."""
        if self._records((*args, *kwargs.values())):
            return self._update(name, op, *args, **kwargs)  # (a float tensor: no cast refused)
        if write is not None:
            return self._inplace(name, write, args[0])
        return self._inplace(name, _assign_result, op(self, *args, **kwargs))
    def acos(self): return ops.acos(self)
    def asin(self): return ops.asin(self)
    def atan(self): return ops.atan(self)
    def arccos(self): return ops.acos(self)
    def arcsin(self): return ops.asin(self)
    def arctan(self): return ops.atan(self)
    def atan2(self, o): return ops.atan2(self, o)
    def arctan2(self, o): return ops.atan2(self, o)
    def sinh(self): return ops.sinh(self)
    def cosh(self): return ops.cosh(self)
    def asinh(self): return ops.asinh(self)
    def acosh(self): return ops.acosh(self)
    def atanh(self): return ops.atanh(self)
    def arcsinh(self): return ops.asinh(self)
    def arccosh(self): return ops.acosh(self)
    def arctanh(self): return ops.atanh(self)
    def floor(self): return ops.floor(self)
    def ceil(self): return ops.ceil(self)
    def round(self, decimals=0): return ops.round(self, decimals=decimals)
    def trunc(self): return ops.trunc(self)
    def fix(self): return ops.trunc(self)
    def frac(self): return ops.frac(self)
    def sgn(self): return ops.sign(self)
    def log2(self): return ops.log2(self)
    def log10(self): return ops.log10(self)
    def exp2(self): return ops.exp2(self)
    def logaddexp(self, o): return ops.logaddexp(self, o)
    def logaddexp2(self, o): return ops.logaddexp2(self, o)
    def xlogy(self, o): return ops.xlogy(self, o)
    def hypot(self, o): return ops.hypot(self, o)
    def copysign(self, o): return ops.copysign(self, o)
    def fmod(self, o): return ops.fmod(self, o)
    def remainder(self, o): return ops.remainder(self, o)
    def floor_divide(self, o): return ops.floor_divide(self, o)
    def true_divide(self, o): return ops.div(self, o)
    def lerp(self, end, weight): return ops.lerp(self, end, weight)
    def addcmul(self, t1, t2, value=1): return ops.addcmul(self, t1, t2, value=value)
    def addcdiv(self, t1, t2, value=1): return ops.addcdiv(self, t1, t2, value=value)
    def clamp_min(self, min): return ops.clamp(self, min=min)
    def clamp_max(self, max): return ops.clamp(self, max=max)
    def heaviside(self, values): return ops.heaviside(self, values)
    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return ops.nan_to_num(self, nan=nan, posinf=posinf, neginf=neginf)
    def erfc(self): return ops.erfc(self)
    def erfinv(self): return ops.erfinv(self)
    def lgamma(self): return ops.lgamma(self)
    def digamma(self): return ops.digamma(self)
    def polygamma(self, n): return ops.polygamma(n, self)
    def sinc(self): return ops.sinc(self)
    def logit(self, eps=None): return ops.logit(self, eps=eps)
    def deg2rad(self): return ops.deg2rad(self)
    def rad2deg(self): return ops.rad2deg(self)
    def eq(self, o): return ops.eq(self, o)
    def ne(self, o): return ops.ne(self, o)
    def lt(self, o): return ops.lt(self, o)
    def le(self, o): return ops.le(self, o)
    def gt(self, o): return ops.gt(self, o)
    def ge(self, o): return ops.ge(self, o)
    def not_equal(self, o): return ops.ne(self, o)
    def less(self, o): return ops.lt(self, o)
    def less_equal(self, o): return ops.le(self, o)
    def greater(self, o): return ops.gt(self, o)
    def greater_equal(self, o): return ops.ge(self, o)
    def isclose(self, o, rtol=1e-05, atol=1e-08, equal_nan=False):
        return ops.isclose(self, o, rtol=rtol, atol=atol, equal_nan=equal_nan)
    def allclose(self, o, rtol=1e-05, atol=1e-08, equal_nan=False):
        return ops.allclose(self, o, rtol=rtol, atol=atol, equal_nan=equal_nan)
    def equal(self, o): return ops.equal(self, o)
    def fmax(self, o): return ops.fmax(self, o)
    def fmin(self, o): return ops.fmin(self, o)
    def logical_and(self, o): return ops.logical_and(self, o)
    def logical_or(self, o): return ops.logical_or(self, o)
    def logical_xor(self, o): return ops.logical_xor(self, o)
    def logical_not(self): return ops.logical_not(self)
    def bitwise_and(self, o): return ops.bitwise_and(self, o)
    def bitwise_or(self, o): return ops.bitwise_or(self, o)
    def bitwise_xor(self, o): return ops.bitwise_xor(self, o)
    def bitwise_not(self): return ops.bitwise_not(self)
    def bitwise_left_shift(self, o): return ops.bitwise_left_shift(self, o)
    def bitwise_right_shift(self, o): return ops.bitwise_right_shift(self, o)
    # in place (out of place, then written back: refused where the result would need a cast
    # torch refuses, such as float into an integer tensor)
    def abs_(self): return self._inplace_op("abs_", ops.abs)
    def absolute_(self): return self._inplace_op("absolute_", ops.abs)
    def neg_(self): return self._inplace_op("neg_", ops.neg)
    def negative_(self): return self._inplace_op("negative_", ops.neg)
    def exp_(self): return self._inplace_op("exp_", ops.exp)
    def log_(self): return self._inplace_op("log_", ops.log)
    def log1p_(self): return self._inplace_op("log1p_", ops.log1p)
    def expm1_(self): return self._inplace_op("expm1_", ops.expm1)
    def sqrt_(self): return self._inplace_op("sqrt_", ops.sqrt)
    def rsqrt_(self): return self._inplace_op("rsqrt_", ops.rsqrt)
    def square_(self): return self._inplace_op("square_", ops.square)
    def reciprocal_(self): return self._inplace_op("reciprocal_", ops.reciprocal)
    def sin_(self): return self._inplace_op("sin_", ops.sin)
    def cos_(self): return self._inplace_op("cos_", ops.cos)
    def tan_(self): return self._inplace_op("tan_", ops.tan)
    def tanh_(self): return self._inplace_op("tanh_", ops.tanh)
    def sigmoid_(self): return self._inplace_op("sigmoid_", ops.sigmoid)
    def relu_(self): return self._inplace_op("relu_", ops.relu)
    def pow_(self, o): return self._inplace_op("pow_", ops.pow, o)
    def clip_(self, min=None, max=None):
        return self._inplace_op("clip_", ops.clamp, min=min, max=max)
    def masked_fill_(self, mask, value):
        return self._inplace_op("masked_fill_", ops.masked_fill, mask, value)
    def acos_(self): return self._inplace_op("acos_", ops.acos)
    def asin_(self): return self._inplace_op("asin_", ops.asin)
    def atan_(self): return self._inplace_op("atan_", ops.atan)
    def atan2_(self, o): return self._inplace_op("atan2_", ops.atan2, o)
    def arctan2_(self, o): return self._inplace_op("arctan2_", ops.atan2, o)
    def sinh_(self): return self._inplace_op("sinh_", ops.sinh)
    def cosh_(self): return self._inplace_op("cosh_", ops.cosh)
    def asinh_(self): return self._inplace_op("asinh_", ops.asinh)
    def acosh_(self): return self._inplace_op("acosh_", ops.acosh)
    def atanh_(self): return self._inplace_op("atanh_", ops.atanh)
    def floor_(self): return self._inplace_op("floor_", ops.floor)
    def ceil_(self): return self._inplace_op("ceil_", ops.ceil)
    def round_(self, decimals=0):
        return self._inplace_op("round_", ops.round, decimals=decimals)
    def trunc_(self): return self._inplace_op("trunc_", ops.trunc)
    def frac_(self): return self._inplace_op("frac_", ops.frac)
    def sign_(self): return self._inplace_op("sign_", ops.sign)
    def sgn_(self): return self._inplace_op("sgn_", ops.sign)
    def log2_(self): return self._inplace_op("log2_", ops.log2)
    def log10_(self): return self._inplace_op("log10_", ops.log10)
    def exp2_(self): return self._inplace_op("exp2_", ops.exp2)
    def xlogy_(self, o): return self._inplace_op("xlogy_", ops.xlogy, o)
    def hypot_(self, o): return self._inplace_op("hypot_", ops.hypot, o)
    def copysign_(self, o): return self._inplace_op("copysign_", ops.copysign, o)
    def fmod_(self, o): return self._inplace_op("fmod_", ops.fmod, o)
    def remainder_(self, o): return self._inplace_op("remainder_", ops.remainder, o)
    def floor_divide_(self, o):
        return self._inplace_op("floor_divide_", ops.floor_divide, o)
    def true_divide_(self, o): return self._inplace_op("true_divide_", ops.div, o)
    def lerp_(self, end, weight): return self._inplace_op("lerp_", ops.lerp, end, weight)
    def addcmul_(self, t1, t2, value=1):
        return self._inplace_op("addcmul_", ops.addcmul, t1, t2, value=value)
    def addcdiv_(self, t1, t2, value=1):
        return self._inplace_op("addcdiv_", ops.addcdiv, t1, t2, value=value)
    def clamp_(self, min=None, max=None):
        return self._inplace_op("clamp_", ops.clamp, min=min, max=max)
    def clamp_min_(self, min): return self._inplace_op("clamp_min_", ops.clamp, min=min)
    def clamp_max_(self, max): return self._inplace_op("clamp_max_", ops.clamp, max=max)
    def heaviside_(self, values):
        return self._inplace_op("heaviside_", ops.heaviside, values)
    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None):
        return self._inplace_op("nan_to_num_", ops.nan_to_num, nan=nan, posinf=posinf,
                                neginf=neginf)
    def erfc_(self): return self._inplace_op("erfc_", ops.erfc)
    def erfinv_(self): return self._inplace_op("erfinv_", ops.erfinv)
    def lgamma_(self): return self._inplace_op("lgamma_", ops.lgamma)
    def digamma_(self): return self._inplace_op("digamma_", ops.digamma)
    def polygamma_(self, n):
        return self._inplace_op("polygamma_", lambda x: ops.polygamma(n, x))
    def sinc_(self): return self._inplace_op("sinc_", ops.sinc)
    def logit_(self, eps=None): return self._inplace_op("logit_", ops.logit, eps=eps)
    def deg2rad_(self): return self._inplace_op("deg2rad_", ops.deg2rad)
    def rad2deg_(self): return self._inplace_op("rad2deg_", ops.rad2deg)
    def eq_(self, o): return self._inplace_op("eq_", ops.eq, o)
    def ne_(self, o): return self._inplace_op("ne_", ops.ne, o)
    def lt_(self, o): return self._inplace_op("lt_", ops.lt, o)
    def le_(self, o): return self._inplace_op("le_", ops.le, o)
    def gt_(self, o): return self._inplace_op("gt_", ops.gt, o)
    def ge_(self, o): return self._inplace_op("ge_", ops.ge, o)
    def logical_and_(self, o): return self._inplace_op("logical_and_", ops.logical_and, o)
    def logical_or_(self, o): return self._inplace_op("logical_or_", ops.logical_or, o)
    def logical_xor_(self, o): return self._inplace_op("logical_xor_", ops.logical_xor, o)
    def logical_not_(self): return self._inplace_op("logical_not_", ops.logical_not)
    def bitwise_and_(self, o): return self._inplace_op("bitwise_and_", ops.bitwise_and, o)
    def bitwise_or_(self, o): return self._inplace_op("bitwise_or_", ops.bitwise_or, o)
    def bitwise_xor_(self, o): return self._inplace_op("bitwise_xor_", ops.bitwise_xor, o)
    def bitwise_not_(self): return self._inplace_op("bitwise_not_", ops.bitwise_not)
    def bitwise_left_shift_(self, o):
        return self._inplace_op("bitwise_left_shift_", ops.bitwise_left_shift, o)
    def bitwise_right_shift_(self, o):
        return self._inplace_op("bitwise_right_shift_", ops.bitwise_right_shift, o)
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
    # ---- reductions, scans and sorting (PyTorch breadth) ----
    def nansum(self, *a, **k): return ops.nansum(self, *a, **k)
    def nanmean(self, *a, **k): return ops.nanmean(self, *a, **k)
    def count_nonzero(self, dim=None): return ops.count_nonzero(self, dim=dim)
    def aminmax(self, *, dim=None, keepdim=False):
        return ops.aminmax(self, dim=dim, keepdim=keepdim)
    def cumprod(self, dim, dtype=None): return ops.cumprod(self, dim, dtype=dtype)
    def cummax(self, dim): return ops.cummax(self, dim)
    def cummin(self, dim): return ops.cummin(self, dim)
    def logcumsumexp(self, dim): return ops.logcumsumexp(self, dim)
    def sort(self, dim=-1, descending=False, *, stable=False):
        return ops.sort(self, dim, descending, stable=stable)
    def argsort(self, dim=-1, descending=False, *, stable=False):
        return ops.argsort(self, dim=dim, descending=descending, stable=stable)
    def topk(self, k, dim=None, largest=True, sorted=True):
        return ops.topk(self, k, dim, largest, sorted)
    def kthvalue(self, k, dim=None, keepdim=False): return ops.kthvalue(self, k, dim, keepdim)
    def median(self, dim=None, keepdim=False): return ops.median(self, dim, keepdim)
    def nanmedian(self, dim=None, keepdim=False): return ops.nanmedian(self, dim, keepdim)
    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        return ops.quantile(self, q, dim, keepdim, interpolation=interpolation)
    def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        return ops.nanquantile(self, q, dim, keepdim, interpolation=interpolation)
    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        return ops.unique(self, sorted, return_inverse, return_counts, dim)
    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        return ops.unique_consecutive(self, return_inverse, return_counts, dim)
    def bincount(self, weights=None, minlength=0):
        return ops.bincount(self, weights, minlength=minlength)
    def histc(self, bins=100, min=0, max=0): return ops.histc(self, bins=bins, min=min, max=max)
    def reshape(self, *shape): return ops.reshape(self, _shape_arg(shape))
    def view(self, *shape): return ops.reshape(self, _shape_arg(shape))
    def flatten(self, start_dim=0, end_dim=-1): return ops.flatten(self, start_dim, end_dim)
    def permute(self, *dims): return ops.permute(self, _shape_arg(dims))
    def transpose(self, dim0, dim1): return ops.swapaxes(self, dim0, dim1)
    def swapaxes(self, dim0, dim1): return ops.swapaxes(self, dim0, dim1)
    def swapdims(self, dim0, dim1): return ops.swapaxes(self, dim0, dim1)
    def ravel(self): return ops.reshape(self, (-1,))
    def select(self, dim, index):
        """x.select(dim, i): index `i` of dim `dim`, the dim removed (x[:, i] for dim=1)."""
        d = ops.shape.wrap_dim("select", dim, self.shape)
        return ops.getitem(self, (slice(None),) * d + (index,))
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
    # ---- shape and indexing (PyTorch breadth) ----
    def diag(self, diagonal=0): return ops.diag(self, diagonal)
    def diagonal(self, offset=0, dim1=0, dim2=1): return ops.diagonal(self, offset, dim1, dim2)
    def diagonal_scatter(self, src, offset=0, dim1=0, dim2=1):
        return ops.diagonal_scatter(self, src, offset, dim1, dim2)
    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        return ops.diag_embed(self, offset, dim1, dim2)
    def trace(self): return ops.trace(self)
    def roll(self, shifts, dims=None): return ops.roll(self, shifts, dims)
    def rot90(self, k=1, dims=(0, 1)): return ops.rot90(self, k, dims)
    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        return ops.repeat_interleave(self, repeats, dim, output_size=output_size)
    def unflatten(self, dim, sizes): return ops.unflatten(self, dim, sizes)
    def movedim(self, source, destination): return ops.movedim(self, source, destination)
    def moveaxis(self, source, destination): return ops.movedim(self, source, destination)
    def narrow(self, dim, start, length): return ops.narrow(self, dim, start, length)

    def unfold(self, dimension, size, step):
        """Every window of `size` entries along `dimension`, `step` apart, as a new last dim: the
        dim becomes the number of windows, like torch.Tensor.unfold (a copy here, not a view;
        overlapping windows add up in the gradient)."""
        d = ops.shape.wrap_dim("unfold", dimension, self.shape)
        length = self.shape[d] if self.ndim else 1
        if step <= 0:
            raise RuntimeError(f"unfold: step is {step} but must be > 0")
        if size > length:
            raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {length} "
                               f"but size is {size}")
        count = (length - size) // step + 1
        starts = numpy.arange(count)[:, None] * step + numpy.arange(size)
        index = creation.tensor(starts.reshape(-1), device=self.device)
        windows = ops.index_select(self, d, index)
        shape = self.shape[:d] + (count, size) + self.shape[d + 1:]
        return ops.movedim(ops.reshape(windows, shape), d + 1, -1)
    def tensor_split(self, indices_or_sections, dim=0):
        return ops.tensor_split(self, indices_or_sections, dim)
    def unbind(self, dim=0): return ops.unbind(self, dim)
    def view_as(self, other): return ops.reshape(self, tuple(other.shape))
    def reshape_as(self, other): return ops.reshape(self, tuple(other.shape))
    def take_along_dim(self, indices, dim=None): return ops.take_along_dim(self, indices, dim)
    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        return ops.scatter(self, dim, index, src, value=value, reduce=reduce)
    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        return self._update("scatter_", ops.scatter, dim, index, src, value=value, reduce=reduce)
    def scatter_add(self, dim, index, src): return ops.scatter_add(self, dim, index, src)
    def scatter_add_(self, dim, index, src):
        return self._update("scatter_add_", ops.scatter_add, dim, index, src)
    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        return ops.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)
    def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
        return self._update("scatter_reduce_", ops.scatter_reduce, dim, index, src, reduce,
                            include_self=include_self)
    def index_add(self, dim, index, source, *, alpha=1):
        return ops.index_add(self, dim, index, source, alpha=alpha)
    def index_add_(self, dim, index, source, *, alpha=1):
        return self._update("index_add_", ops.index_add, dim, index, source, alpha=alpha)
    def index_copy(self, dim, index, source): return ops.index_copy(self, dim, index, source)
    def index_copy_(self, dim, index, source):
        return self._update("index_copy_", ops.index_copy, dim, index, source)
    def index_fill(self, dim, index, value): return ops.index_fill(self, dim, index, value)
    def index_fill_(self, dim, index, value):
        return self._update("index_fill_", ops.index_fill, dim, index, value)
    def index_put(self, indices, values, accumulate=False):
        return ops.index_put(self, indices, values, accumulate)
    def index_put_(self, indices, values, accumulate=False):
        return self._update("index_put_", ops.index_put, indices, values, accumulate)
    def masked_select(self, mask): return ops.masked_select(self, mask)
    def masked_scatter(self, mask, source): return ops.masked_scatter(self, mask, source)
    def masked_scatter_(self, mask, source):
        return self._update("masked_scatter_", ops.masked_scatter, mask, source)
    def nonzero(self, *, as_tuple=False): return ops.nonzero(self, as_tuple=as_tuple)
    def argwhere(self): return ops.argwhere(self)
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        return creation.tensor(data, **_new_like(self, dtype, device), requires_grad=requires_grad)
    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return creation.zeros(*size, **_new_like(self, dtype, device), requires_grad=requires_grad)
    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return creation.ones(*size, **_new_like(self, dtype, device), requires_grad=requires_grad)
    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return creation.empty(*size, **_new_like(self, dtype, device), requires_grad=requires_grad)
    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return creation.full(size, fill_value, **_new_like(self, dtype, device),
                             requires_grad=requires_grad)
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


def _no_gradient(g, y, old):
    return (creation.zeros_like(old),)


def _assign_result(a, v):
    """Write an op's result back into a, as torch's in-place ops do: refused (TypeError) where
    torch refuses the cast, from floating to integer or from non-bool to bool."""
    if (v.dtype.kind in "fc" and a.dtype.kind in "iub") or (a.dtype.kind == "b" != v.dtype.kind):
        raise TypeError(f"result type {v.dtype} can't be cast to the desired output type "
                        f"{a.dtype}")
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


def _new_like(tensor, dtype, device):
    """Tensor.new_*'s defaults: the dtype and device of the tensor they are called on."""
    return {"dtype": tensor.dtype if dtype is None else dtype,
            "device": tensor.device if device is None else device}


def _shape_arg(args):
    """x.reshape(2, 3) and x.reshape((2, 3)) both mean the shape (2, 3), as in PyTorch."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


from . import creation, ops  # noqa: E402  (they import Tensor; methods look them up at call time)
