"""The strict test backend: numpy arrays that behave like CuPy's where CuPy is stricter.

CI has no GPU, so this device keeps the CuPy code path honest. Its arrays refuse what a CuPy array
refuses: implicit conversion to numpy (`np.asarray`, `np.exp(x)`), arithmetic with a plain
`numpy.ndarray`, and host arrays as indices; reductions give 0-d arrays, not numpy scalars. Every
module function and array method the ops reach is recorded in USED, so a test can check that CuPy
has each one.
"""
import contextlib
import numbers
import operator
import types

import numpy

from .. import backend

USED = set()


class StrictTypeError(backend.RefusedByBackend, TypeError):
    """What CuPy refuses with a TypeError, refused here too."""


class StrictSyncError(backend.RefusedByBackend, RuntimeError):
    """A host synchronisation inside forbid_host_sync()."""
  # "exp", "add.at", "ndarray.reshape", ...

# Reading a device value on the host (bool(), float(), .item(), asnumpy) or an op whose result size
# depends on the data (boolean-mask indexing, nonzero, unique) makes the host wait for the GPU.
# Inside forbid_host_sync() the strict backend raises on each, so a CPU test can prove that a
# training step never synchronises.
_HOST_SYNC_FORBIDDEN = [False]
_SYNCING = {"nonzero", "flatnonzero", "argwhere", "unique", "item", "tolist", "get", "extract",
            "compress", "bincount"}


def missing_from(module, names):
    """The names recorded in USED ("exp", "add.at", "ndarray.reshape") that `module` (CuPy)
    lacks, in sorted order: what the ops call that CuPy could not run."""
    missing = []
    for name in sorted(names):
        target = module.ndarray if name.startswith("ndarray.") else module
        for part in name.removeprefix("ndarray.").split("."):
            target = getattr(target, part, None)
        if target is None:
            missing.append(name)
    return missing


@contextlib.contextmanager
def forbid_host_sync():
    """Raise on anything that would make a CuPy program wait for the device."""
    previous, _HOST_SYNC_FORBIDDEN[0] = _HOST_SYNC_FORBIDDEN[0], True
    try:
        yield
    finally:
        _HOST_SYNC_FORBIDDEN[0] = previous


def _check_sync(what):
    if _HOST_SYNC_FORBIDDEN[0]:
        raise StrictSyncError(f"strict backend: {what} would synchronise the GPU with the host "
                              f"inside forbid_host_sync()")


def _refuse(what, value):
    raise StrictTypeError(f"strict backend: {what} got a host numpy.ndarray {value.shape}; CuPy "
                          "refuses this too. Move it to the tensor's device first "
                          "(gpuad.backend.to_device)")


def unwrap(value, what="operation"):
    """Raw numpy data of a strict array (recursing into tuples, lists and dicts)."""
    kind = type(value)
    if kind is StrictArray:
        return value._a
    if kind is numpy.ndarray:
        _refuse(what, value)
    if kind is tuple or kind is list:
        return kind(unwrap(v, what) for v in value)
    if kind is dict:
        return {k: unwrap(v, what) for k, v in value.items()}
    return value


def wrap(value):
    kind = type(value)
    if kind is numpy.ndarray:
        return StrictArray(value)
    if isinstance(value, numpy.generic):  # CuPy reductions return 0-d arrays, never scalars
        return StrictArray(numpy.asarray(value))
    if kind is tuple or kind is list:
        return kind(wrap(v) for v in value)
    if isinstance(value, tuple):  # numpy.linalg's named results; CuPy returns plain tuples
        return tuple(wrap(v) for v in value)
    return value


def _operand(other, op):
    if type(other) is StrictArray:
        return other._a
    if isinstance(other, (numbers.Number, numpy.generic)):
        return other
    if type(other) is numpy.ndarray:
        _refuse(f"operator {op}", other)
    raise StrictTypeError(f"strict backend: unsupported operand type for {op}: "
                          f"{type(other).__name__}")


class StrictArray:
    """A numpy array in disguise that refuses implicit host conversion, like cupy.ndarray."""
    __slots__ = ("_a",)
    __array_ufunc__ = None  # numpy ufuncs on a StrictArray raise TypeError
    __hash__ = None

    def __init__(self, array):
        self._a = array

    def __array__(self, dtype=None, copy=None):
        raise StrictTypeError("strict backend: implicit conversion to a numpy array is not allowed "
                              "(CuPy forbids it too); use gpuad.backend.asnumpy() or Tensor.cpu()")

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented  # numpy functions on a StrictArray raise TypeError

    def unwrap(self):
        _check_sync("copying to the host")
        return self._a

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ & co: numpy must not see through us
            raise AttributeError(name)
        if name in _SYNCING:
            _check_sync(f"ndarray.{name}()")
        USED.add("ndarray." + name)
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: wrap(attr(*unwrap(args, name), **unwrap(kwargs, name)))
        return wrap(attr)

    def __getitem__(self, index):
        index = unwrap(index, "indexing")
        if _HOST_SYNC_FORBIDDEN[0] and any(getattr(i, "dtype", None) == bool for i in
                                           (index if type(index) is tuple else (index,))):
            _check_sync("indexing with a boolean mask")
        return wrap(self._a[index])

    def __setitem__(self, index, value):
        self._a[unwrap(index, "indexing")] = _operand(value, "[]=")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (wrap(v) for v in self._a)

    def __bool__(self):
        _check_sync("bool() of an array")
        return bool(self._a)

    def __float__(self):
        _check_sync("float() of an array")
        return float(self._a)

    def __int__(self):
        _check_sync("int() of an array")
        return int(self._a)

    def __index__(self):
        _check_sync("using an array as a Python int")
        return self._a.__index__()

    def __repr__(self):
        return "strict_" + repr(self._a)

    def __neg__(self):
        return wrap(-self._a)

    def __pos__(self):
        return wrap(+self._a)

    def __abs__(self):
        return wrap(abs(self._a))

    def __invert__(self):
        return wrap(~self._a)


def _binary(name, reflected=False, inplace=False):
    fn = getattr(operator, ("i" + name.rstrip("_")) if inplace else name)
    dunder = f"__{'r' if reflected else 'i' if inplace else ''}{name}__"

    def op(self, other):
        other = _operand(other, dunder)
        if inplace:
            fn(self._a, other)
            return self
        return wrap(fn(other, self._a) if reflected else fn(self._a, other))
    op.__name__ = dunder
    return op


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift"):
    _op = _name + "_" if _name in ("and", "or") else _name
    setattr(StrictArray, f"__{_name}__", _binary(_op))
    setattr(StrictArray, f"__r{_name}__", _binary(_op, reflected=True))
    setattr(StrictArray, f"__i{_name}__", _binary(_op, inplace=True))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(StrictArray, f"__{_name}__", _binary(_name))


class _StrictCallable:
    """A numpy function or ufunc seen through the strict backend."""
    __slots__ = ("_fn", "_name")

    def __init__(self, fn, name):
        self._fn, self._name = fn, name

    def __call__(self, *args, **kwargs):
        if self._name in _SYNCING:
            _check_sync(f"{self._name}()")
        if self._name in ("asarray", "array", "ascontiguousarray") and args:
            args = (args[0] if type(args[0]) is numpy.ndarray else unwrap(args[0]),) + args[1:]
            return wrap(self._fn(*args, **unwrap(kwargs, self._name)))
        return wrap(self._fn(*unwrap(args, self._name), **unwrap(kwargs, self._name)))

    def __getattr__(self, name):  # ufunc methods: add.at, maximum.reduce, ...
        USED.add(f"{self._name}.{name}")
        return _StrictCallable(getattr(self._fn, name), f"{self._name}.{name}")


class _StrictModule:
    """numpy, except that arrays going in and out are StrictArrays."""

    def __init__(self, module, prefix=""):
        self._module, self._prefix = module, prefix

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        USED.add(self._prefix + name)
        if isinstance(attr, types.ModuleType):
            return _StrictModule(attr, f"{self._prefix}{name}.")
        if callable(attr) and not isinstance(attr, type):
            return _StrictCallable(attr, self._prefix + name)
        return attr

    def __repr__(self):
        return "<gpuad strict array module over numpy>"


xp = _StrictModule(numpy)
DEVICE = backend.register_device("strict", StrictArray, xp, wrap, StrictArray.unwrap)
