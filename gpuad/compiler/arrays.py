"""The arrays that stand in for real ones while gpuad.compile works, with their array modules.

TraceArray wraps a real numpy/CuPy/strict array while a step is traced: every operator, method,
xp function and fused call on it runs on the real array and is reported to its Recorder
(tracing.py), which writes the program down. NullArray stands for an array that is not there: a
replay re-runs each optimizer update on NullArrays, which only note each operation's structure and
host numbers (op_key), so the program gets this step's learning rate and bias corrections.
Both types register with the backend (xp_of gives their modules), so gpuad's own code runs on them
unchanged.
"""
import operator
import threading
import types

import numpy

from .. import backend
from ..backend import kernels

_SCALARS = (bool, int, float)
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%",
            "pow": "**", "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<",
            "rshift": ">>"}
_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
UNFUNCS = {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}
# binops whose result numpy computes with the ufunc of this name (so out= can take a dead input)
UFUNC_OF = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}

BINARY = {sym: getattr(operator, name + ("_" if name in ("and", "or") else ""))
          for name, sym in {**_SYMBOLS, **_COMPARISONS}.items()}
INPLACE = {sym: getattr(operator, "i" + name) for name, sym in _SYMBOLS.items()}
UNARY = {"-": operator.neg, "+": operator.pos, "abs": abs, "~": operator.invert}
_UNARY_OF = {"neg": "-", "pos": "+", "abs": "abs", "invert": "~"}


def op_key(kind, name, args, kwargs, scalars):
    """The structure of one operation (its kind, name and argument layout) and, appended to
    `scalars`, its host numbers in order: how a replay checks that an optimizer update took the
    path it recorded. (Every replay runs this per optimizer operation: the common cases are
    inlined.)"""
    parts = [kind, name]
    append, arrays = parts.append, backend.ARRAY_TYPES
    for a in args:
        t = type(a)
        if t is float or t is int or t is bool:
            scalars.append(a)
            append("S")
        elif t in arrays:
            append("A")
        else:
            append(_layout(a, scalars))
    for k, v in kwargs.items():
        append(k)
        t = type(v)
        if t is float or t is int or t is bool:
            scalars.append(v)
            append("S")
        elif t in arrays:
            append("A")
        else:
            append(_layout(v, scalars))
    return parts


def fused_key(name, args, kwargs, scalars):
    """op_key of a fused function's call (an optimizer's whole update): its keyword arguments are
    usually all host numbers, taken in one go."""
    values = kwargs.values()
    for v in values:
        t = type(v)
        if t is not float and t is not int and t is not bool:
            return op_key("call", name, args, kwargs, scalars)
    for a in args:
        if type(a) in _SCALARS:  # numbers among the arrays: the general layout keeps their order
            return op_key("call", name, args, kwargs, scalars)
    scalars.extend(values)
    return ["fused", name, tuple(a is None for a in args), tuple(kwargs)]


def _layout(a, scalars):
    t = type(a)
    if t in _SCALARS:
        scalars.append(a)
        return "S"
    if t is tuple or t is list:
        return (t.__name__,) + tuple(_layout(v, scalars) for v in a)
    if t is dict:
        return ("dict",) + tuple((k, _layout(v, scalars)) for k, v in a.items())
    if a is None or t is str:
        return a
    if t in backend.ARRAY_TYPES or isinstance(a, numpy.generic):
        return "A"
    try:
        hash(a)
    except TypeError:
        return t.__name__
    return a


def flat(x):
    t = type(x)
    if t is tuple or t is list:
        return [y for v in x for y in flat(v)]
    if t is dict:
        return [y for v in x.values() for y in flat(v)]
    return [x]



def unwrap(x):
    """Real arrays in place of TraceArrays, through tuples, lists and dicts."""
    t = type(x)
    if t in TRACE_TYPES:
        return x._real
    if t is tuple or t is list:
        return t(unwrap(v) for v in x)
    if t is dict:
        return {k: unwrap(v) for k, v in x.items()}
    return x


def current():
    """The recorder tracing in this thread, or None."""
    tracer = backend.TRACER[0]
    return tracer if tracer is not None and tracer.mine() else None


# ---- TraceArray: a real array whose operations are recorded -------------------------------------
class TraceArray:
    """A stand-in for a real array while a step is traced (one subclass per real array type)."""
    __slots__ = ("_real", "_vid", "_rec", "__weakref__")  # weak: Recorder.by_real
    __array_priority__ = 1000  # CuPy and numpy defer mixed operators to us
    __hash__ = None

    def __init__(self, real, vid, rec):
        self._real, self._vid, self._rec = real, vid, rec

    shape = property(lambda self: self._real.shape)
    dtype = property(lambda self: self._real.dtype)
    ndim = property(lambda self: self._real.ndim)
    size = property(lambda self: self._real.size)
    itemsize = property(lambda self: self._real.itemsize)
    nbytes = property(lambda self: self._real.nbytes)
    strides = property(lambda self: self._real.strides)
    flags = property(lambda self: self._real.flags)
    base = property(lambda self: self._real.base)  # only ever compared with None (autograd)

    def _op(self, kind, target, args, kwargs=None, name=None):
        return self._rec.record(kind, target, name or target, args, kwargs or {})

    def __getattr__(self, name):
        if name.startswith("__"):  # no array protocols: consumers must come through __array__
            raise AttributeError(name)
        attr = getattr(self._real, name)
        if callable(attr):
            return _Method(self, name)
        if backend.is_array(attr):  # .T, .mT, .real, .imag: views, recorded
            return self._op("getattr", name, (self,))
        return attr

    def fused_call(self, name, args, kwargs):
        """A fused function's call (backend.kernels), recorded whole. Numpy's is bound to the
        reference now; elsewhere the dispatcher chooses per call (CUDA graph capture changes
        what matmul runs)."""
        real = unwrap(args)
        target = (kernels.implementation(name, real) if type(real[0]) is numpy.ndarray else
                  kernels.DISPATCHERS[name])
        return self._rec.record("call", target, name, args, kwargs, fused=True)

    def __getitem__(self, index):
        for i in index if type(index) is tuple else (index,):
            if type(i) in TRACE_TYPES and i.dtype == numpy.bool_:
                self._rec.poison("indexes with a boolean mask (the result's shape depends on "
                                 "the data)")
        return self._op("getitem", "getitem", (self, index))

    def __setitem__(self, index, value):
        self._op("setitem", "setitem", (self, index, value))

    def __len__(self):
        return len(self._real)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _host(self, what, convert):
        self._rec.poison(f"reads an array's value on the host ({what})")
        return convert(self._real)

    def __bool__(self):
        return self._host("bool()", bool)

    def __float__(self):
        return self._host("float()", float)

    def __int__(self):
        return self._host("int()", int)

    def __complex__(self):
        return self._host("complex()", complex)

    def __index__(self):
        return self._host("an array used as a Python int", lambda a: a.__index__())

    def __array__(self, dtype=None, copy=None):
        self._rec.poison("converts an array to numpy (a host read)")
        return self._real.__array__() if dtype is None else self._real.__array__(dtype)

    def __repr__(self):
        return self._host("printing an array", repr)

    def __str__(self):
        return self._host("printing an array", str)

    def __format__(self, spec):
        return self._host("formatting an array", lambda a: format(a, spec))

    def __contains__(self, item):
        return self._host("`in`", lambda a: item in a)

    def __copy__(self):
        return self._op("method", "copy", (self,))

    def __deepcopy__(self, memo):
        return self._op("method", "copy", (self,))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = ufunc if method == "__call__" else getattr(ufunc, method)
        name = ufunc.__name__ + ("" if method == "__call__" else "." + method)
        if "out" in kwargs and type(kwargs["out"]) is tuple and len(kwargs["out"]) == 1:
            kwargs["out"] = kwargs["out"][0]
        return self._rec.record("call", fn, name, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return self._rec.record("call", func, func.__name__, args, kwargs)


class _Method:
    __slots__ = ("array", "name")

    def __init__(self, array, name):
        self.array, self.name = array, name

    def __call__(self, *args, **kwargs):
        return self.array._rec.record("method", self.name, self.name, (self.array,) + args,
                                      kwargs)


def _binary(name, symbol, reflected=False, inplace=False):
    if inplace:
        def op(self, other):
            return self._rec.record("ibinop", symbol, symbol + "=", (self, other), {})
    elif reflected:
        def op(self, other):
            return self._rec.record("binop", symbol, symbol, (other, self), {})
    else:
        def op(self, other):
            return self._rec.record("binop", symbol, symbol, (self, other), {})
    return op


for _name, _sym in _SYMBOLS.items():
    setattr(TraceArray, f"__{_name}__", _binary(_name, _sym))
    setattr(TraceArray, f"__r{_name}__", _binary(_name, _sym, reflected=True))
    setattr(TraceArray, f"__i{_name}__", _binary(_name, _sym, inplace=True))
for _name, _sym in _COMPARISONS.items():
    setattr(TraceArray, f"__{_name}__", _binary(_name, _sym))
for _name, _sym in _UNARY_OF.items():
    setattr(TraceArray, f"__{_name}__",
            (lambda s: lambda self: self._rec.record("unop", s, s, (self,), {}))(_sym))


class _RefusingTraceArray(TraceArray):
    """For real arrays that refuse numpy's functions (the strict backend), the stand-in does too."""
    __slots__ = ()
    __array_ufunc__ = None

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented


class TraceModule:
    """xp for TraceArrays: each function of the real module, recorded."""

    def __init__(self, real, prefix=""):
        self._real, self._prefix = real, prefix

    def __getattr__(self, name):
        attr = getattr(self._real, name)
        if isinstance(attr, types.ModuleType) or type(attr) is type(self._real):
            wrapped = TraceModule(attr, f"{self._prefix}{name}.")
        elif callable(attr) and not isinstance(attr, type):
            wrapped = _Function(attr, self._prefix + name)
        else:
            return attr
        self.__dict__[name] = wrapped  # looked up once per name
        return wrapped


class _Function:
    """One function of an array module, recorded when a trace runs in this thread."""
    __slots__ = ("fn", "name")

    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def __call__(self, *args, **kwargs):
        rec = current()
        if rec is None:
            return self.fn(*unwrap(args), **unwrap(kwargs))
        return rec.record("call", self.fn, self.name, args, kwargs)

    def __getattr__(self, name):  # ufunc methods: add.at, maximum.reduce
        attr = getattr(self.fn, name)
        return _Function(attr, f"{self.name}.{name}") if callable(attr) else attr


TRACE_TYPES = set()
_TRACE_TYPE_OF = {}


def traced_type(real):
    """The TraceArray subclass standing in for arrays of real's type, registered with the backend
    on first use (xp_of gives it a TraceModule over the real type's module)."""
    real_type = type(real)
    cls = _TRACE_TYPE_OF.get(real_type)
    if cls is None:
        real_xp = backend.xp_of(real)
        refuses = real_xp is not numpy and not real_type.__module__.startswith("cupy")
        cls = type(f"Trace_{real_type.__name__}",
                   (_RefusingTraceArray if refuses else TraceArray,), {"__slots__": ()})
        backend.register_array_type(cls, TraceModule(real_xp),
                                    lambda a: backend.device_of(a._real), _host_read)
        _TRACE_TYPE_OF[real_type] = cls
        TRACE_TYPES.add(cls)
    return cls


def _host_read(traced):
    traced._rec.poison("copies an array to the host")
    return backend.asnumpy(traced._real)


# ---- NullArray: absorbs an optimizer update's array work, keeps its host numbers ----------------
class Collector:
    """What a NullArray pass saw: each operation's structure (op_key) and host numbers, in order."""
    __slots__ = ("keys", "scalars", "meta")
    active = threading.local()  # the collector of this thread's NullArray pass

    def __init__(self, meta):
        self.keys, self.scalars, self.meta = [], [], meta

    def note(self, kind, name, args, kwargs, meta):
        self.keys.append(op_key(kind, name, args, kwargs, self.scalars))
        return NullArray(self, meta)


class NullArray:
    """An array that is not there: operations on it are noted by its Collector and give another
    NullArray. Shape and dtype are those of the value it stands for."""
    __slots__ = ("_col", "_meta")
    __array_priority__ = 1000
    __hash__ = None

    def __init__(self, col, meta):
        self._col, self._meta = col, meta

    shape = property(lambda self: self._meta[1])
    dtype = property(lambda self: self._meta[2])
    ndim = property(lambda self: len(self._meta[1]))
    size = property(lambda self: int(numpy.prod(self._meta[1])))
    base = None

    def _note(self, kind, name, args, kwargs=None):
        return self._col.note(kind, name, args, kwargs or {}, self._meta)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in ("T", "mT", "real", "imag"):
            return self._note("getattr", name, (self,))
        return lambda *args, **kwargs: self._note("method", name, (self,) + args, kwargs)

    def fused_call(self, name, args, kwargs):
        col = self._col
        col.keys.append(fused_key(name, args, kwargs, col.scalars))

    def __getitem__(self, index):
        return self._note("getitem", "getitem", (self, index))

    def __setitem__(self, index, value):
        self._note("setitem", "setitem", (self, index, value))

    def __len__(self):
        return self._meta[1][0]

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__ + ("" if method == "__call__" else "." + method)
        if "out" in kwargs and type(kwargs["out"]) is tuple and len(kwargs["out"]) == 1:
            kwargs["out"] = kwargs["out"][0]
        return self._col.note("call", name, inputs, kwargs, self._meta)

    def __array_function__(self, func, types, args, kwargs):
        return self._col.note("call", func.__name__, args, kwargs, self._meta)

    def _refuse(self, *args):
        raise RuntimeError("gpuad.compile: an optimizer update read an array's value on the host")

    __bool__ = __float__ = __int__ = __index__ = __array__ = _refuse


def _null_binary(symbol, kind, reflected):
    if reflected:
        return lambda self, other: self._note(kind, symbol, (other, self))
    return lambda self, other: self._note(kind, symbol + ("=" if kind == "ibinop" else ""),
                                          (self, other))


for _name, _sym in _SYMBOLS.items():
    setattr(NullArray, f"__{_name}__", _null_binary(_sym, "binop", False))
    setattr(NullArray, f"__r{_name}__", _null_binary(_sym, "binop", True))
    setattr(NullArray, f"__i{_name}__", _null_binary(_sym, "ibinop", False))
for _name, _sym in _COMPARISONS.items():
    setattr(NullArray, f"__{_name}__", _null_binary(_sym, "binop", False))
for _name, _sym in _UNARY_OF.items():
    setattr(NullArray, f"__{_name}__",
            (lambda s: lambda self: self._note("unop", s, (self,)))(_sym))


class NullModule:
    """xp for NullArrays: every function notes its call and returns a NullArray."""

    def __init__(self, prefix=""):
        self._prefix = prefix

    def __getattr__(self, name):
        attr = getattr(numpy, name, None)
        if attr is not None and not callable(attr) and not isinstance(attr, types.ModuleType):
            return attr  # constants and dtypes: numpy's
        if isinstance(attr, type):
            return attr
        if isinstance(attr, types.ModuleType):
            return NullModule(f"{self._prefix}{name}.")
        return _NullFunction(self._prefix + name)


class _NullFunction:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwargs):
        for a in flat(args) + flat(kwargs):
            if type(a) is NullArray:
                return a._col.note("call", self.name, args, kwargs, a._meta)
        col = Collector.active.col  # a creation function: no array among its arguments
        return col.note("call", self.name, args, kwargs, col.meta)

    def __getattr__(self, name):
        return _NullFunction(f"{self.name}.{name}")


backend.register_array_type(NullArray, NullModule(), lambda a: backend.CPU, NullArray._refuse)
