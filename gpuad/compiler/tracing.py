"""Recording a step: arrays that stand in for the real ones and write down every operation on them.

While gpuad.compile traces a call, the arrays of its inputs, of the parameters, gradients and
optimizer state it touches are swapped for TraceArrays wrapping them. Everything the step does to
them (operators, methods, xp functions, fused references, in-place writes) runs on the real arrays
and is appended to the Recorder as an Instr over value numbers, so a replay can run the same numpy
or CuPy calls in the same order without Tensors or Nodes. Arrays made from host data (creation,
random draws) are reported by the backend through `backend.TRACER`; reading a value on the host or
an op whose result shape depends on the data marks the trace as not replayable (`poisoned`).

NullArrays are the other stand-in: a replay re-runs each optimizer's Python update on them to get
this step's host scalars (learning rate, bias corrections) without touching any array.
"""
import numbers
import operator
import os
import sys
import threading
import types

import numpy

from .. import backend
from ..backend import kernels
from ..tensor import Tensor

# ---- what the templates of an instruction's arguments hold ------------------------------------


class Ref:
    """An argument that is value number `vid` of the program."""
    __slots__ = ("vid",)

    def __init__(self, vid):
        self.vid = vid


class Scalar:
    """A host number of an optimizer update, refreshed on every replay (slot `sid`)."""
    __slots__ = ("sid",)

    def __init__(self, sid):
        self.sid = sid


class Const:
    """An argument passed as it was at trace time (numbers, dtypes, shapes, arrays by reference)."""
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj


class Value:
    """One array of the program: an input, an external (owned by a tensor or optimizer state and
    bound through its owner on each replay) or produced by an instruction."""
    __slots__ = ("vid", "kind", "owner", "meta", "nbytes", "writeable", "aliases", "view",
                 "real")

    def __init__(self, vid, kind, owner, real):
        self.vid, self.kind, self.owner = vid, kind, owner
        self.meta = (type(real), tuple(real.shape), real.dtype)
        self.nbytes = real.nbytes
        self.writeable = getattr(getattr(real, "flags", None), "writeable", True)
        self.aliases = []  # values it may share memory with (views), None: a constant's memory
        self.view = False  # made sharing an input's memory (not a fresh array)
        self.real = real if kind == "external" else None  # the identity fast path of binding


class Instr:
    """One recorded operation. kind: call (target a function), method (target a name, args[0] the
    array), binop / ibinop / unop (target an operator symbol), getitem, setitem, getattr."""
    __slots__ = ("kind", "target", "name", "args", "kwargs", "outs", "reads", "pure", "asarray",
                 "xp", "segment")

    def __init__(self, kind, target, name, args, kwargs, reads, segment):
        self.kind, self.target, self.name = kind, target, name
        self.args, self.kwargs, self.reads, self.segment = args, kwargs, reads, segment
        self.outs = None  # None, a vid, or a tuple of vids (a call returning several arrays)
        self.pure = False  # no effect but its result: removable when nobody reads it
        self.asarray = False  # numpy returned a scalar: the replay makes it a 0-d array, as apply
        self.xp = None  # the real array module, for writing a result into a dead input (out=)


class Segment:
    """One optimizer update of the step: whose it was, and the structure and host scalars of the
    operations it recorded (a replay re-runs the update on NullArrays to refresh the scalars)."""
    __slots__ = ("optimizer", "update", "param", "group_index", "keys", "first_sid", "scalars",
                 "metas")

    def __init__(self, optimizer, update, param, group_index, first_sid, metas):
        self.optimizer, self.update, self.param = optimizer, update, param
        self.group_index, self.first_sid, self.metas = group_index, first_sid, metas
        self.keys, self.scalars = [], []


class Poison:
    """Why a trace cannot be replayed, and the user's line (file, lineno) that made it so."""
    __slots__ = ("reason", "site")

    def __init__(self, reason, site):
        self.reason, self.site = reason, site


# ---- what is pure, what reads the host, what has a data-dependent shape -------------------------
PURE_METHODS = {
    "reshape", "astype", "copy", "sum", "mean", "max", "min", "prod", "transpose", "ravel",
    "flatten", "squeeze", "swapaxes", "take", "argmax", "argmin", "any", "all", "std", "var",
    "cumsum", "cumprod", "round", "conj", "dot", "view", "repeat", "diagonal", "trace", "__copy__",
}
PURE_FUNCTIONS = {
    "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like",
    "arange", "linspace", "eye", "tri", "triu", "tril", "where", "concatenate", "stack", "matmul",
    "dot", "einsum", "tensordot", "broadcast_to", "expand_dims", "moveaxis", "transpose",
    "reshape", "asarray", "ascontiguousarray", "array", "sum", "mean", "amax", "amin", "max",
    "min", "prod", "take", "take_along_axis", "pad", "flip", "roll", "repeat", "tile", "split",
    "array_split", "swapaxes", "squeeze", "clip", "outer", "cumsum", "create", "to_device",
}  # (draw is not: it advances a generator)
HOST_READS = {"item", "tolist", "tobytes", "get", "tofile", "dump", "dumps", "__array__"}
DATA_DEPENDENT = {"nonzero", "flatnonzero", "argwhere", "unique", "extract", "compress",
                  "unique_values", "unique_counts", "unique_inverse", "unique_all", "trim_zeros",
                  "setdiff1d", "intersect1d", "union1d", "setxor1d"}
METADATA = {"shape", "ndim", "size", "result_type", "can_cast", "iscomplexobj", "isrealobj",
            "isscalar", "min_scalar_type", "may_share_memory", "shares_memory", "promote_types",
            "issubdtype", "dtype", "finfo", "iinfo"}
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%",
            "pow": "**", "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<",
            "rshift": ">>"}
_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
UNFUNCS = {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}
# binops whose result numpy computes with the ufunc of this name (so out= can take a dead input)
UFUNC_OF = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCALARS = (bool, int, float)


def user_frame():
    """(file, line) of the innermost frame outside gpuad: the user's line behind an operation."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "<unknown>", 0
    return frame.f_code.co_filename, frame.f_lineno


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


# ---- the recorder -------------------------------------------------------------------------------
class Recorder:
    """The program being recorded: values, instructions, optimizer segments and what to restore."""

    def __init__(self):
        self.thread = threading.get_ident()
        self.values, self.instrs, self.segments = [], [], []
        self.busy = 0  # > 0 while a recorded call runs: what it calls inside is not recorded
        self.closed = False
        self.poisoned = None
        self.segment = None  # the optimizer update being recorded, if any
        self.n_scalars = 0
        self.by_real = {}  # id(real array) -> its TraceArray, for inputs and externals
        self.keep = []  # those real arrays, so their ids stay theirs during the trace
        self.swapped = []  # (object holding .array, original array): restored by finish()
        self.state_swaps = []  # (state dict, key)
        self.wrapped_tensors = {}  # id(tensor) -> tensor whose .array is traced
        self.refs = {}  # id(tensor) -> ("arg", path) for inputs, ("obj", tensor) otherwise
        self.start_vids = {}  # id(tensor) -> value number of its array at wrap time
        self.versions = {}  # id(tensor) -> (tensor, _version at wrap time)
        self.grads_at_start = {}  # id(tensor) -> (tensor, .grad object at wrap time)
        self.optimizers = {}  # id(optimizer) -> optimizer
        self.hyper = {}  # id(optimizer) -> (optimizer, its hyper-parameters at first sight)
        self.states_seen = {}  # (id(opt), id(param)) -> (opt, param, state dict, keys at start)

    def mine(self):
        return not self.closed and not self.busy and threading.get_ident() == self.thread

    fullgraph = False  # raise at the first thing that cannot be replayed, like torch's

    def poison(self, reason):
        if self.poisoned is None:
            self.poisoned = Poison(reason, user_frame())
            if self.fullgraph and not self.closed:
                raise Unsupported(self.poisoned)

    def snapshot(self, optimizer):
        """Remember the optimizer's hyper-parameters: changing them inside the step (a scheduler
        step) is a Python side effect a replay would not repeat."""
        if id(optimizer) not in self.hyper:
            self.hyper[id(optimizer)] = (optimizer, _hyper(optimizer))

    # -- values
    def _new(self, real, kind, owner):
        value = Value(len(self.values), kind, owner, real)
        self.values.append(value)
        traced = traced_type(real)(real, value.vid, self)
        if kind != "produced":
            self.by_real[id(real)] = traced
            self.keep.append(real)
        return traced

    def external(self, real, owner, kind="external"):
        """The TraceArray of a real array that lives outside the step (bound via `owner`)."""
        traced = self.by_real.get(id(real))
        if traced is None:
            traced = self._new(real, kind, owner)
        return traced

    def wrap_tensor(self, t, ref=None, kind="external"):
        """Swap t.array (and, for a leaf, its .grad's array) for TraceArrays, once. `ref` says how
        a replay finds t: ("arg", path) for an argument, else ("obj", t) (t itself)."""
        if id(t) in self.wrapped_tensors:
            return
        ref = ref or ("obj", t)
        self.wrapped_tensors[id(t)] = t
        self.refs[id(t)] = ref
        self.versions[id(t)] = (t, t._version)
        if t._hooks or getattr(t, "_post_accumulate_hooks", None):
            self.poison("a tensor it uses has hooks (Python run during backward)")
        real = t.array
        if type(real) not in TRACE_TYPES:
            self.swapped.append((t, real))
            t.array = self.external(real, ("array", ref), kind)
        elif real._rec is not self:
            return
        self.start_vids[id(t)] = t.array._vid
        if t._requires_grad and t._node is None:  # a leaf: backward may read or write its .grad
            self.grads_at_start[id(t)] = (t, t.grad)
            if t.grad is not None and type(t.grad.array) not in TRACE_TYPES:
                self.swapped.append((t.grad, t.grad.array))
                t.grad.array = self.external(t.grad.array, ("grad", ref))
            if t.grad is not None:
                self.start_vids[id(t.grad)] = t.grad.array._vid

    def adopt(self, t):
        """Tensor._inplace's hook: an in-place write into t is recorded only if t is traced."""
        if self.mine() and type(t.array) not in TRACE_TYPES:
            self.wrap_tensor(t)

    def intercept(self, name, autocast, args):
        """gpuad.ops' interceptor: every op's tensor inputs become traced before it runs."""
        if self.mine():
            for a in args:
                if isinstance(a, Tensor) and type(a.array) not in TRACE_TYPES:
                    self.wrap_tensor(a)
        return args

    # -- recording one operation
    def record(self, kind, target, name, args, kwargs, fused=False):
        """Run one operation on the real arrays and append it to the program."""
        if not self.mine():
            return execute(kind, target, unwrap(args), unwrap(kwargs))
        if name in HOST_READS:
            self.poison(f"calls .{name}(), which reads an array's value on the host")
        elif name in DATA_DEPENDENT or (name == "where" and len(args) == 1 and not kwargs):
            self.poison(f"calls {name}, whose result's shape depends on the data")
        segment = self.segment
        if segment is not None:
            key = fused_key if fused else op_key
            segment.keys.append(key(name, args, kwargs, segment.scalars) if fused else
                                key(kind, name, args, kwargs, segment.scalars))
        reads = []
        real_args, t_args = self._convert(args, reads)
        real_kwargs, t_kwargs = self._convert(kwargs, reads)
        instr = Instr(kind, target, name, t_args, t_kwargs,
                      tuple(vid for vid, _ in reads if vid is not None), segment)
        self.busy += 1
        try:
            result = execute(kind, target, real_args, real_kwargs)
        finally:
            self.busy -= 1
        return self._result(instr, result, args, kwargs, reads)

    def record_call(self, fn, name, args, kwargs):
        """backend.TRACER's entry: a backend function that makes arrays from host data."""
        if not self.mine():
            return fn(*args, **kwargs)
        return self.record("call", fn, name, args, kwargs)

    def _convert(self, x, reads):
        """(real, template) of an argument: TraceArrays become their real arrays and Refs."""
        t = type(x)
        if t in TRACE_TYPES:
            if x._rec is not self:
                return x._real, Const(x._real)  # left over from an earlier trace: a constant
            reads.append((x._vid, x._real))
            return x._real, Ref(x._vid)
        if t is tuple or t is list:
            pairs = [self._convert(v, reads) for v in x]
            return t(p[0] for p in pairs), t(p[1] for p in pairs)
        if t is dict:
            pairs = {k: self._convert(v, reads) for k, v in x.items()}
            return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
        if t in _SCALARS and self.segment is not None:
            sid = self.n_scalars
            self.n_scalars += 1
            return x, Scalar(sid)
        if t in backend.ARRAY_TYPES:
            traced = self.by_real.get(id(x))
            if traced is not None:
                reads.append((traced._vid, x))
                return x, Ref(traced._vid)
            reads.append((None, x))  # a constant array: only its overlap with results matters
        return x, Const(x)

    def _result(self, instr, result, args, kwargs, reads):
        arrays = [real for _, real in reads]
        if isinstance(result, numpy.generic) and result.dtype.kind in "biufc":
            result = numpy.asarray(result)  # as apply does; the replay does it too
            instr.asarray = True
        if backend.is_array(result):
            for traced in _flat(args) + _flat(kwargs):
                if type(traced) in TRACE_TYPES and traced._real is result and traced._rec is self:
                    self.instrs.append(instr)  # the call wrote into an input and returned it
                    return traced
            out, vid = self._produced(result, reads)
            instr.outs = vid
        elif type(result) in (tuple, list) and result and all(map(backend.is_array, result)):
            outs = [self._produced(r, reads) for r in result]
            instr.outs = tuple(vid for _, vid in outs)
            out = type(result)(o for o, _ in outs)
        elif (isinstance(result, tuple) and hasattr(result, "_fields") and result
              and all(map(backend.is_array, result))):  # a named tuple of arrays (linalg)
            outs = [self._produced(r, reads) for r in result]
            instr.outs = tuple(vid for _, vid in outs)
            out = type(result)(*(o for o, _ in outs))
        else:
            if instr.reads and isinstance(result, numbers.Number) and instr.name not in METADATA:
                self.poison(f"reads an array's value on the host ({instr.name})")
            if result is not None and instr.kind not in ("setitem", "ibinop"):
                return result  # metadata (a dtype, a shape): nothing to replay
            out = result
        if instr.outs is not None:
            instr.pure = _is_pure(instr)
            instr.xp = backend.xp_of(arrays[0]) if arrays else None
        self.instrs.append(instr)
        return out

    def _produced(self, real, reads):
        """A new value for `real`, linked to the inputs whose memory it may share (a view): the
        memory plan writes over a buffer only when every value sharing it is dead."""
        traced = self._new(real, "produced", None)
        value = self.values[traced._vid]
        xp = backend.xp_of(real)
        for vid, a in reads:
            if type(a) is type(real) and xp.may_share_memory(real, a):
                value.aliases.append(vid)
                value.view = True
                if vid is not None:
                    self.values[vid].aliases.append(value.vid)
        return traced, value.vid

    # -- optimizer updates
    def optimizer_update(self, optimizer, update, p, group):
        """Optimizer.step's hook: record one parameter's update as a segment of the program."""
        if not self.mine():
            with backend.device_scope(p.array):
                update(p.array, p.grad.array, optimizer.state.setdefault(p, {}), group)
            return
        self.optimizers[id(optimizer)] = optimizer
        self.wrap_tensor(p)
        state = optimizer.state.setdefault(p, {})
        for k, v in list(state.items()):
            if backend.is_array(v) and type(v) not in TRACE_TYPES:
                self.state_swaps.append((state, k))
                state[k] = self.external(v, ("state", optimizer, p, k))
        key = (id(optimizer), id(p))
        if key not in self.states_seen:
            self.states_seen[key] = (optimizer, p, state, dict(state))
            self.snapshot(optimizer)
        if type(p.grad.array) not in TRACE_TYPES:  # a gradient set before the call, unseen
            self.swapped.append((p.grad, p.grad.array))
            p.grad.array = self.external(p.grad.array, ("grad", self.refs[id(p)]))
        metas = (self.values[p.array._vid].meta, self.values[p.grad.array._vid].meta)
        group_index = next(i for i, g in enumerate(optimizer.param_groups) if g is group)
        segment = Segment(optimizer, update, p, group_index, self.n_scalars, metas)
        self.segments.append(segment)
        self.segment = segment
        try:
            with backend.device_scope(p.array._real):
                update(p.array, p.grad.array, state, group)
        finally:
            self.segment = None


class Unsupported(Exception):
    """gpuad.compile(fullgraph=True) met something a replay cannot repeat (not a RuntimeError,
    so no op's error handling takes it for its own)."""

    def __init__(self, poison):
        file, line = poison.site
        super().__init__(f"gpuad.compile(fullgraph=True): the function {poison.reason} at "
                         f"{file}:{line}, which a compiled replay cannot repeat")
        self.poison = poison


def _hyper(optimizer):
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def _flat(x):
    t = type(x)
    if t is tuple or t is list:
        return [y for v in x for y in _flat(v)]
    if t is dict:
        return [y for v in x.values() for y in _flat(v)]
    return [x]


def _is_pure(instr):
    kind = instr.kind
    if kind in ("binop", "unop", "getitem", "getattr"):
        return True
    if kind == "method":
        return instr.name in PURE_METHODS
    if kind == "call":
        if "out" in instr.kwargs:
            return False
        return instr.pure or instr.name in PURE_FUNCTIONS or (
            isinstance(getattr(numpy, instr.name, None), numpy.ufunc))
    return False


def execute(kind, target, args, kwargs):
    """Perform one operation on real arrays (at trace time; the replay runs generated code)."""
    if kind == "call":
        return target(*args, **kwargs)
    if kind == "method":
        return getattr(args[0], target)(*args[1:], **kwargs)
    if kind == "binop":
        return BINARY[target](args[0], args[1])
    if kind == "ibinop":
        return INPLACE[target](args[0], args[1])
    if kind == "unop":
        return UNARY[target](args[0])
    if kind == "getitem":
        return args[0][args[1]]
    if kind == "setitem":
        args[0][args[1]] = args[2]
        return None
    if kind == "getattr":
        return getattr(args[0], target)
    raise AssertionError(kind)


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


BINARY = {sym: getattr(operator, name + ("_" if name in ("and", "or") else ""))
          for name, sym in {**_SYMBOLS, **_COMPARISONS}.items()}
INPLACE = {sym: getattr(operator, "i" + name) for name, sym in _SYMBOLS.items()}
UNARY = {"-": operator.neg, "+": operator.pos, "abs": abs, "~": operator.invert}
_UNARY_OF = {"neg": "-", "pos": "+", "abs": "abs", "invert": "~"}


# ---- TraceArray: a real array whose operations are recorded -------------------------------------
class TraceArray:
    """A stand-in for a real array while a step is traced (one subclass per real array type)."""
    __slots__ = ("_real", "_vid", "_rec")
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
        for a in _flat(args) + _flat(kwargs):
            if type(a) is NullArray:
                return a._col.note("call", self.name, args, kwargs, a._meta)
        col = Collector.active.col  # a creation function: no array among its arguments
        return col.note("call", self.name, args, kwargs, col.meta)

    def __getattr__(self, name):
        return _NullFunction(f"{self.name}.{name}")


backend.register_array_type(NullArray, NullModule(), lambda a: backend.CPU, NullArray._refuse)
