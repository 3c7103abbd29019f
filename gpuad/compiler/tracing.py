"""Recording a step: the Recorder, which writes down every operation on the tracing arrays.

While gpuad.compile traces a call, the arrays of its inputs and of the parameters, gradients and
optimizer state it touches are swapped for TraceArrays (arrays.py). Everything the step does to
them (operators, methods, xp functions, fused references, in-place writes) runs on the real arrays
and is appended here as an Instr over value numbers, so a replay can run the same numpy or CuPy
calls in the same order without Tensors or Nodes. Arrays made from host data (creation, random
draws) are reported by the backend through `backend.TRACER`, in-place tensor writes by
Tensor._inplace, optimizer updates by Optimizer.step (each a Segment, whose host numbers a replay
refreshes). Reading a value on the host, or an op whose result shape depends on the data, marks
the trace as not replayable (`poisoned`); the call still completes eagerly.
"""
import inspect
import numbers
import os
import sys
import threading
import types
import weakref

import numpy

from .. import backend
from ..autograd import grad_mode
from ..tensor import Tensor
from .arrays import (
    BINARY,
    INPLACE,
    TRACE_TYPES,
    UNARY,
    flat,
    fused_key,
    op_key,
    traced_type,
    unwrap,
)

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
        # the identity fast path of binding; not a gradient's, which zero_grad may drop mid-step
        self.real = real if kind == "external" and owner[0] != "grad" else None


def memory_group(values, vid):
    """The values that may share value vid's memory (views of views too), or None when it is a
    constant's memory (which the program does not own)."""
    group, stack = {vid}, [vid]
    while stack:
        for other in values[stack.pop()].aliases:
            if other is None:
                return None
            if other not in group:
                group.add(other)
                stack.append(other)
    return group


class Instr:
    """One recorded operation. kind: call (target a function), method (target a name, args[0] the
    array), binop / ibinop / unop (target an operator symbol), getitem, setitem, getattr."""
    __slots__ = ("kind", "target", "name", "args", "kwargs", "outs", "reads", "writes", "pure",
                 "asarray", "xp", "segment")

    def __init__(self, kind, target, name, args, kwargs, reads, segment):
        self.kind, self.target, self.name = kind, target, name
        self.args, self.kwargs, self.reads, self.segment = args, kwargs, reads, segment
        self.outs = None  # None, a vid, or a tuple of vids (a call returning several arrays)
        self.writes = ()  # the vids it writes into (in place, out=): set by Recorder.record
        self.pure = False  # no effect but its result: removable when nobody reads it
        self.asarray = False  # numpy returned a scalar: the replay makes it a 0-d array, as apply
        self.xp = None  # the real array module, for writing a result into a dead input (out=)

    def made(self):
        """The value numbers of its results (none, one, or several)."""
        outs = self.outs
        return () if outs is None else (outs,) if type(outs) is int else outs


class Segment:
    """One optimizer update of the step: whose it was, and the structure and host scalars of the
    operations it recorded (a replay re-runs the update on NullArrays to refresh the scalars)."""
    __slots__ = ("optimizer", "update", "param", "group", "group_index", "keys", "first_sid",
                 "scalars", "metas")

    def __init__(self, optimizer, update, param, group, group_index, first_sid, metas):
        self.optimizer, self.update, self.param = optimizer, update, param
        self.group, self.group_index = group, group_index  # a replay finds that dict there
        self.first_sid, self.metas = first_sid, metas
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
# numpy/CuPy functions and methods that write into their first argument (returning None)
WRITE_FIRST_FUNCTIONS = {"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis",
                         "scatter_add"}
WRITE_FIRST_METHODS = {"fill", "sort", "partition", "put", "itemset", "setfield", "resize"}
HOST_READS = {"item", "tolist", "tobytes", "get", "tofile", "dump", "dumps", "__array__"}
DATA_DEPENDENT = {"nonzero", "flatnonzero", "argwhere", "unique", "extract", "compress", "bincount",
                  "unique_values", "unique_counts", "unique_inverse", "unique_all", "trim_zeros",
                  "setdiff1d", "intersect1d", "union1d", "setxor1d"}
METADATA = {"shape", "ndim", "size", "result_type", "can_cast", "iscomplexobj", "isrealobj",
            "isscalar", "min_scalar_type", "may_share_memory", "shares_memory", "promote_types",
            "issubdtype", "dtype", "finfo", "iinfo"}
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # gpuad's own code
_SCALARS = (bool, int, float)


def _in_gpuad(frame):
    return os.path.abspath(frame.f_code.co_filename).startswith(PACKAGE_DIR)


def user_frame():
    """(file, line) of the innermost frame outside gpuad: the user's line behind an operation."""
    frame = sys._getframe(1)
    while frame is not None and _in_gpuad(frame):
        frame = frame.f_back
    if frame is None:
        return "<unknown>", 0
    return frame.f_code.co_filename, frame.f_lineno


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
        # id(real array) -> its TraceArray, for inputs and externals. Weak, so that a gradient
        # the step drops (zero_grad) is freed then, as in eager; the TraceArray holds the real
        # array, so an id leaves the map before it can be reused.
        self.by_real = weakref.WeakValueDictionary()
        self.keep = []  # the TraceArrays of the others, whose arrays live through the trace
        self.swapped = []  # weak references to the tensors whose .array _restore puts back
        self.arrays = []  # weak references to every TraceArray (trace.py: what is left over)
        self.state_swaps = []  # (state dict, key)
        self.wrapped_tensors = {}  # id(tensor) -> tensor whose .array is traced
        self.refs = {}  # id(tensor) -> ("arg", path) for inputs, ("obj", tensor) otherwise
        self.start_vids = {}  # id(tensor) -> value number of its array at wrap time
        self.versions = {}  # id(tensor) -> (tensor, _version, requires_grad) at wrap time
        # id(tensor) -> (tensor, weak reference to .grad at wrap time or None, its value number)
        self.grads_at_start = {}
        self.hyper = {}  # id(optimizer) -> (optimizer, its hyper-parameters at first sight)
        self.scheduler_steps = []  # the schedulers stepped, in order (a replay steps them again)
        self.stepping = False  # inside a scheduler's step (one it calls is part of it)
        self.states_seen = {}  # (id(opt), id(param)) -> (opt, param, state dict, keys at start)
        # id(array) -> [array, its constants in the program, the user's line]: host data that
        # gpuad.tensor and the like made tensors of (see made_inside)
        self.host_data = {}
        self.known_values = set()  # ids of Python values a result may hold (trace.py)
        # backward.py: the recorded walk of a result the caller differentiates, and (only while
        # tracing: the first call's Node) its output tensors and the tensors it reaches
        self.split, self.live = None, None
        self.freed = {}  # id -> error: outputs whose graph a backward in the call freed
        self.made_leaves = set()  # ids of the leaves made inside that the walk reached
        self.hooked = []  # (tensor with hooks, the user's line that reached it)
        self.walked = False  # whether the call ran a backward walk (not backward.py's)
        self.walk_made = None  # while backward.py records its walk: the values the walk made

    def mine(self):
        return not self.closed and not self.busy and threading.get_ident() == self.thread

    fullgraph = False  # raise at the first thing that cannot be replayed, like torch's

    def poison(self, reason):
        if self.poisoned is None:
            self.poisoned = Poison(reason, user_frame())
            if self.fullgraph and not self.closed:
                raise Unsupported(self.poisoned)

    def note_host_data(self, data, caller):
        """backend.TRACER's entry: `data`, an array, is about to become a tensor's (gpuad.tensor,
        as_tensor, from_numpy called in frame `caller`). The program will hold it as a constant:
        right when it is the same array every call (a buffer refilled in place), frozen when the
        step makes it anew (see made_inside). Only the user's own calls count: gpuad's layers
        make constants of their shapes this way (interpolation weights, index tables)."""
        if (self.mine() and type(data) not in TRACE_TYPES and id(data) not in self.host_data
                and not _in_gpuad(caller)):
            self.host_data[id(data)] = [data, 0, (caller.f_code.co_filename, caller.f_lineno)]

    def made_inside(self):
        """The user's line of host data that the call made and let go of (numpy's random
        numbers, a batch put together in Python), or None. Only the program's constants still
        hold it, so a replay would use these numbers again instead of the step's new ones."""
        for entry in self.host_data.values():
            # the references: this entry, getrefcount's argument, the program's constants
            if sys.getrefcount(entry[0]) - 2 <= entry[1]:
                return entry[2]
        return None

    def snapshot(self, optimizer):
        """Remember the optimizer's hyper-parameters: changing them inside the step (a scheduler
        step) is a Python side effect a replay would not repeat."""
        if id(optimizer) not in self.hyper:
            self.hyper[id(optimizer)] = (optimizer, _hyper(optimizer))

    def scheduler_step(self, scheduler, step, args, kwargs):
        """lr_scheduler's hook: run a learning-rate scheduler's step and note it, so that every
        replay steps the scheduler again, after the updates. It sets numbers in the optimizer's
        param groups only, which a replay reads before its updates, as the updates of this call
        read them: so the updates of its optimizer must come before it."""
        if (not self.mine() or self.stepping or getattr(scheduler, "_is_initial", False)
                or self.poisoned is not None):
            return step(scheduler, *args, **kwargs)
        name = type(scheduler).__name__
        if args or any(value is not None for value in kwargs.values()):
            self.poison(f"steps a learning-rate scheduler with an argument ({name}.step(...), "
                        f"a metric or an epoch), which a replay would pass again unchanged: step "
                        f"it outside the compiled function")
            return step(scheduler, *args, **kwargs)
        optimizer = scheduler.optimizer
        seen = self.hyper.get(id(optimizer))
        unchanged = seen is None or _hyper(optimizer) == seen[1]
        count = len(self.instrs)
        self.stepping = True
        try:
            result = step(scheduler)
        finally:
            self.stepping = False
        if len(self.instrs) != count:
            self.poison(f"runs array operations in {name}.step()")
        if unchanged:  # else the change made before it is found at the end, as any by hand
            self.hyper[id(optimizer)] = (optimizer, _hyper(optimizer))
        self.scheduler_steps.append(scheduler)
        return result

    # -- values
    def _new(self, real, kind, owner):
        value = Value(len(self.values), kind, owner, real)
        self.values.append(value)
        traced = traced_type(real)(real, value.vid, self)
        self.arrays.append(weakref.ref(traced))
        if kind != "produced":
            self.by_real[id(real)] = traced
            if owner[0] != "grad":
                self.keep.append(traced)
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
        self.versions[id(t)] = (t, t._version, t._requires_grad)
        if t._has_hooks():  # fine where autograd runs them, after a replayed backward (trace.py)
            self.hooked.append((t, user_frame()))
        real = t.array
        if type(real) not in TRACE_TYPES:
            self.swapped.append(weakref.ref(t))
            t.array = self.external(real, ("array", ref), kind)
        elif real._rec is not self:
            return
        self.start_vids[id(t)] = t.array._vid
        if t._requires_grad and t._node is None:  # a leaf: backward may read or write its .grad
            grad, vid = t.grad, None
            if grad is not None:
                if type(grad.array) not in TRACE_TYPES:
                    self.swapped.append(weakref.ref(grad))
                    grad.array = self.external(grad.array, ("grad", ref))
                vid = grad.array._vid
            self.grads_at_start[id(t)] = (t, None if grad is None else weakref.ref(grad), vid)

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
        if grad_mode.in_backward:
            self.walked = True
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
        instr.writes = _writes(instr)
        if self.walk_made is not None and not self.walk_made.issuperset(instr.writes):
            self._writes_forward(instr)  # before it runs: the call's own walk reads it after
        self.busy += 1
        try:
            result = execute(kind, target, real_args, real_kwargs)
        finally:
            self.busy -= 1
        out = self._result(instr, result, args, kwargs, reads)
        if self.walk_made is not None:
            self.walk_made.update(instr.made())
            if not self.walk_made.issuperset(instr.writes):  # it returned an input it wrote
                self._writes_forward(instr)
        return out

    def _writes_forward(self, instr):
        """backward.py's walk is about to write into a value of the forward (or just did): a
        replay's backward would find that value already written by an earlier one, and the
        caller's own walk after this recording would write it a second time. Stop the walk."""
        self.poison(f"returns a tensor whose backward writes into a value of the forward "
                    f"({instr.name})")
        raise WalkStopped

    def record_call(self, fn, name, args, kwargs):
        """backend.TRACER's entry: a backend function that makes arrays from host data (or
        checks indices: backend.check_indices)."""
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
            entry = self.host_data.get(id(x))
            if entry is not None:
                entry[1] += 1
        return x, Const(x)

    def _result(self, instr, result, args, kwargs, reads):
        arrays = [real for _, real in reads]
        if isinstance(result, numpy.generic) and result.dtype.kind in "biufc":
            result = numpy.asarray(result)  # as apply does; the replay does it too
            instr.asarray = True
        if backend.is_array(result):
            for traced in flat(args) + flat(kwargs):
                if type(traced) in TRACE_TYPES and traced._real is result and traced._rec is self:
                    if traced._vid not in instr.writes:  # (a function's own out parameter)
                        instr.writes += (traced._vid,)
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
        stepped = next((s for s in self.scheduler_steps if s.optimizer is optimizer), None)
        if stepped is not None:
            self.poison(f"updates a parameter after stepping its optimizer's learning-rate "
                        f"scheduler ({type(stepped).__name__}), which a replay could not repeat "
                        f"(it reads the learning rate before its updates): step the scheduler "
                        f"after the optimizer")
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
            self.swapped.append(weakref.ref(p.grad))
            p.grad.array = self.external(p.grad.array, ("grad", self.refs[id(p)]))
        metas = (self.values[p.array._vid].meta, self.values[p.grad.array._vid].meta)
        group_index = next(i for i, g in enumerate(optimizer.param_groups) if g is group)
        segment = Segment(optimizer, update, p, group, group_index, self.n_scalars, metas)
        self.segments.append(segment)
        self.segment = segment
        try:
            with backend.device_scope(p.array._real):
                update(p.array, p.grad.array, state, group)
        finally:
            self.segment = None
        if self.n_scalars - segment.first_sid != len(segment.scalars):  # a guard on our own work
            self.poison("runs an optimizer update whose host numbers could not be followed")


class WalkStopped(Exception):  # noqa: N818  (a signal to backward.py, not an error)
    """Raised into backward.py's recorded walk to stop it (the recording is poisoned)."""


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


def _writes(instr):
    """The values an instruction writes into: an in-place operator's or item assignment's target,
    out= arrays, a ufunc's outputs passed positionally (numpy's own dispatch hands them over as
    out=, a call through xp_of's module as they are), a function's out passed positionally
    (np.clip(a, lo, hi, a)), the first argument of copyto, a ufunc's .at and the like.
    (Recorder.record also catches a call that returns an input, should a writer be missing
    here.)"""
    kind, name, args = instr.kind, instr.name, instr.args
    writes_first = (kind in ("ibinop", "setitem")
                    or (kind == "call" and (name in WRITE_FIRST_FUNCTIONS or name.endswith(".at")))
                    or (kind == "method" and name in WRITE_FIRST_METHODS))
    refs = [args[0]] if writes_first and args else []
    out = instr.kwargs.get("out")
    refs += list(out) if type(out) is tuple else [out]
    if kind == "call":
        ufunc = getattr(numpy, name, None)  # (by name, as _is_pure: CuPy's ufuncs too)
        if isinstance(ufunc, numpy.ufunc):
            refs += args[ufunc.nin:]
        else:
            at = _positional_out(instr.target)
            if at is not None and len(args) > at:
                refs.append(args[at])
    return tuple(ref.vid for ref in refs if type(ref) is Ref)


_OUT_POSITIONS = {}


def _positional_out(fn):
    """Where a function (not a ufunc: _writes knows those) takes `out` positionally, from its
    signature; None when it does not or cannot tell."""
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        return None  # a bound method (a ufunc's .at, made anew each time): not worth a cache entry
    try:
        return _OUT_POSITIONS[fn]
    except KeyError:
        pass
    except TypeError:  # unhashable
        return None
    at = None
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    for i, param in enumerate(params):
        if param.kind is param.VAR_POSITIONAL:
            break
        if param.name == "out":
            at = i if param.kind is not param.KEYWORD_ONLY else None
            break
    _OUT_POSITIONS[fn] = at
    return at


def _is_pure(instr):
    """Whether the instruction has no effect but its result (so dead-code removal may drop it)."""
    kind = instr.kind
    if kind in ("binop", "unop", "getitem", "getattr"):
        return True
    if "out" in instr.kwargs:
        return False
    if kind == "method":
        return instr.name in PURE_METHODS
    if kind == "call":
        ufunc = getattr(numpy, instr.name, None)
        if isinstance(ufunc, numpy.ufunc):
            return len(instr.args) <= ufunc.nin  # more: an output array passed positionally
        return instr.name in PURE_FUNCTIONS
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


