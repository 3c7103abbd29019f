"""What a compiled function reaches and reads, found around its traced call (trace.py).

Before the call: the modules, optimizers, schedulers and tensors it can reach, with the identity
guards a replay checks (discover), the user's own code it runs (code_units: the function, the
helpers and methods it calls, the forwards of the user's layer classes), and the plain Python
values that code reads (python_reads), all by reading the code's bytecode (_reads); a snapshot of
the Python state a replay would not change (_python_values: plain values, container lengths,
random generators, iterators). After it: what the call changed of that state (changed_python_value,
changed_read), and what helpers read through the objects their parameters held (watch_helpers,
noted_reads).
"""
import dis
import functools
import keyword
import os
import random
import sys
import sysconfig
import threading
import types
import warnings

import numpy

from .. import backend
from ..nn.module import Module
from ..optim.lr_scheduler import LRScheduler
from ..optim.optimizer import Optimizer
from ..tensor import Tensor
from .program import same_value, source_literal
from .records import PYTHON_VALUES, record_fields
from .tracing import PACKAGE_DIR

_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
         str, bytes, int, float, bool, type(None))


class Argument(str):
    """A guard root that is an argument of the call (its expression), not an object."""


def discover(fn, args, kwargs, units):
    """The modules, optimizers and tensors the function can reach: through its arguments, the
    objects bound to it (a method's self, a callable object, a partial's arguments), and, for its
    code and that of the user's functions it calls (code_units), their closures, the globals they
    name, the attribute chains they read, and two attribute levels of plain objects among those
    (a trainer's .model and .optimizer). Their arrays are traced from the start, so even raw
    in-place writes into them are recorded. Also returns identity guards, (root, attribute path,
    object): a replay checks that `self.opt`, a closure cell, a global or a helper function still
    holds what the trace found there; and the Python values found (_python_values)."""
    roots = [(a, (Argument(f"A[{i}]"), ())) for i, a in enumerate(args)]
    roots += [(v, (Argument(f"K[{k!r}]"), ())) for k, v in kwargs.items()]
    if isinstance(fn, Module):
        roots.append((fn, None))
    else:  # a method's self, a callable object, a partial's arguments, defaults
        roots += [(obj, (root, ())) for root, obj in units[0][1].values()]
    guards, cells, named = [], [], []
    for func, bound, where, reads, _ in units:
        if where is not None:  # a helper: redefined, it is another program
            guards.append((where[0], where[1], func))
        for cell in getattr(func, "__closure__", None) or ():
            cells.append(cell)
            try:
                roots.append((cell.cell_contents, (cell, (".cell_contents",))))
            except ValueError:  # an empty cell
                pass
        code = getattr(func, "__code__", None)
        names = set() if code is None else {n for c in _codes(code) for n in c.co_names}
        module_globals = getattr(func, "__globals__", {})
        named.append((module_globals, sorted(names)))
        roots += [(module_globals[n], (module_globals, (".get(" + repr(n) + ")",)))
                  for n in sorted(names) if n in module_globals]
        # and what the code reads down attribute chains from those (config.model, self.a.b.opt);
        # a model's own layers and parameters are checked by its structure (Program.unchanged)
        roots += [(value, (root, path)) for root, path, value in reads
                  if isinstance(value, GUARDED) and not _batch_read(root, value)
                  and not (isinstance(root, Module) and isinstance(value, (Module, Tensor)))]
        # an array read there becomes a constant of the program: a new one is another program
        guards += [(root, path, value) for root, path, value in reads
                   if path and backend.is_array(value) and not _batch_read(root, value)]
    modules, optimizers, tensors, holders, generators = {}, {}, {}, [], []
    seen, stack = set(), [(r, 0, path) for r, path in roots]
    while stack:
        obj, depth, path = stack.pop()
        if isinstance(obj, _SKIP) or (path is not None and isinstance(path[0], Argument)
                                      and record_fields(obj) is not None):
            continue  # (a batch passed in: its tensors are the call's inputs)
        if isinstance(obj, _NUMPY_RANDOM) or _is_iterator(obj):
            generators.append(obj)  # (their state is compared around the call)
            continue
        found = isinstance(obj, GUARDED)
        if found and path is not None and path[1]:
            guards.append((path[0], path[1], obj))
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Tensor):
            tensors[id(obj)] = obj
        elif isinstance(obj, Module):
            for m in obj.modules():
                modules[id(m)] = m
            for t in list(obj.parameters()) + [b for _, b in obj.named_buffers()]:
                if t is not None:
                    tensors[id(t)] = t
        elif isinstance(obj, Optimizer):
            optimizers[id(obj)] = obj
            holders.append(obj)
            for group in obj.param_groups:
                for p in group["params"]:
                    tensors[id(p)] = p
        elif type(obj) in (list, tuple) and depth < 3 and len(obj) < 10000:
            stack += [(v, depth + 1, _entry(path, i)) for i, v in enumerate(obj)]
        elif type(obj) is set and depth < 3 and len(obj) < 10000:
            stack += [(v, depth + 1, None) for v in obj]
        elif type(obj) is dict and depth < 3 and len(obj) < 10000:
            stack += [(v, depth + 1, _entry(path, k)) for k, v in obj.items()]
        elif depth < 2 and hasattr(obj, "__dict__") and not backend.is_array(obj):
            holders.append(obj)
            ours = type(obj).__module__.startswith("gpuad.")  # (a gpuad.Generator's draws replay)
            stack += [(v, depth + 1, None if path is None else
                       (path[0], path[1] + (_attribute(k),)))
                      for k, v in vars(obj).items()
                      if type(k) is str and not (ours and isinstance(v, _NUMPY_RANDOM))]
    holders += modules.values()
    guards = list({(id(root), path): (root, path, obj) for root, path, obj in guards}.values())
    return (list(modules.values()), list(optimizers.values()), list(tensors.values()),
            guards, _python_values(holders, named, cells, generators))


GUARDED = (Tensor, Module, Optimizer, LRScheduler)  # a replay checks it is still the one found


def _batch_read(root, value):
    """A tensor or array read out of an argument (batch["x"], batch.x): the batch, new on every
    call, which the arguments' binding follows, not an identity guard."""
    return isinstance(root, Argument) and (isinstance(value, Tensor) or backend.is_array(value))


def _entry(path, key):
    """The path of a list's or dict's entry, for its identity guard: none in an argument's
    container (a batch of new tensors each call), nor under a key with no source form."""
    if path is None or isinstance(path[0], Argument):
        return None
    literal = source_literal(key)
    return None if literal is None else (path[0], path[1] + (f"[{literal}]",))


_NUMPY_RANDOM = (numpy.random.Generator, numpy.random.RandomState)


def _python_values(holders, named, cells, generators):
    """What a call may change that a replay would not: the plain Python values (int, float,
    bool, str, None) in the holders' attributes, the globals named ((module globals, names)
    pairs) and the closure cells, and the state of Python's and numpy's random numbers. As
    (kind, holder, name, value), for changed_python_value."""
    # (an optimizer's state and groups are followed as such, and private tables are gpuad's)
    values = [("attr", h, k, kept) for h in holders for k, v in vars(h).items()
              if (kept := _watched(v, sizes=not k.startswith("_")
                                   and not isinstance(h, Optimizer))) is not _SKIP]
    values += [("global", module_globals, n, kept) for module_globals, names in named
               for n in names if (kept := _watched(module_globals.get(n, _SKIP))) is not _SKIP]
    for cell in cells:
        try:
            kept = _watched(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
        if kept is not _SKIP:
            values.append(("cell", cell, None, kept))
    # the global ones only while no other thread works (a loader's worker may draw from them;
    # a daemon such as tqdm's monitor does not count)
    alone = all(t.daemon or t is threading.current_thread() for t in threading.enumerate())
    shared = [random, numpy.random.mtrand._rand] if alone else []
    return values + [("iterator", g, None, _iterator_state(g)) if _is_iterator(g) else
                     ("random", g, None, _random_state(g)) for g in shared + generators]


class _Entries(int):
    """How many entries a list, dict or set holds, as a snapshot of it."""

    def __repr__(self):
        return f"{int(self)} entr{'y' if self == 1 else 'ies'}"


def _watched(value, sizes=True):
    """What the snapshot keeps of a value: a plain one itself, with `sizes` a list's, dict's or
    set's number of entries (a step appending to a history every call), else _SKIP."""
    t = type(value)
    if t in PYTHON_VALUES:
        return value
    return _Entries(len(value)) if sizes and t in (list, dict, set) else _SKIP


def _is_iterator(obj):
    """A generator, or one of Python's own iterators (over a list, a zip, itertools.cycle)."""
    return isinstance(obj, types.GeneratorType) or (
        type(obj).__module__ in ("builtins", "itertools") and hasattr(type(obj), "__next__"))


def _iterator_state(it, depth=0):
    """Where an iterator stands, to tell whether a call advanced it: a generator's instruction
    and locals, a builtin iterator's pickling arguments (its position, the iterators it reads),
    nested iterators by their own state; None where it cannot tell."""
    if depth > 3:
        return None
    if isinstance(it, types.GeneratorType):
        frame = it.gi_frame
        return "done" if frame is None else (frame.f_lasti, tuple(
            (k, _state_part(v, depth)) for k, v in frame.f_locals.items()))
    try:
        with warnings.catch_warnings():  # (itertools' __reduce__ is deprecated from 3.12)
            warnings.simplefilter("ignore", DeprecationWarning)
            reduced = it.__reduce__()
    except Exception:  # noqa: BLE001  (an iterator that cannot say: taken as unchanged)
        return None
    return tuple(_state_part(v, depth) for v in reduced[1:])


def _state_part(value, depth):
    if _is_iterator(value):
        return _iterator_state(value, depth + 1)
    if type(value) in PYTHON_VALUES:
        return value
    if type(value) is tuple and depth < 3:
        return tuple(_state_part(v, depth + 1) for v in value)
    return id(value)


def python_reads(units):
    """The plain Python values (int, float, bool, str, None) that the code of the units (a
    function and the user's functions it calls: code_units) reads from the globals it names, its
    closure variables, and attributes of those or of `self` (a method's; chains such as
    self.cfg.beta too): as (root, attribute path, value), as identity guards are. A replay
    checks they still hold those values (a KL weight annealed in self.beta, a global warm-up
    flag, a config object's field): one that changed re-traces, as a new signature does. What
    gpuad's code reads (a layer's forward) is not found here and stays as traced."""
    found = {}
    for _, _, _, reads, _ in units:
        for root, path, value in reads:
            if type(value) in PYTHON_VALUES:
                found.setdefault((id(root), path), (root, path, value))
    return list(found.values())


_MAX_UNITS = 64  # the user's functions and forwards followed from a compiled one


def code_units(fn, args=(), kwargs=None):
    """The code a call runs that is the user's own, as (function, {parameter name: (its guard
    root, the object)}, where a replay finds the function or None, what its code reads
    (_reads), whether watch_helpers notes its parameters): fn's first, through _function_of
    and this call's arguments (_call_binding), then the user's functions and methods its code
    reaches by name, closure or attribute chain (a helper that computes the loss,
    self.compute_loss), the forwards of the models it reaches that are of the user's classes
    (one per instance: a block's self.scale), and theirs, up to _MAX_UNITS. gpuad's own code,
    the standard library's and installed packages' are not followed."""
    func, bound = _function_of(fn)
    bound = {**{name: (obj, obj) for name, obj in bound.items()},
             **_call_binding(func, bound, args, kwargs or {})}
    units = [(func, bound, None, _reads(func, bound), False)]
    seen = {(id(func), id(fn) if isinstance(fn, Module) else None)}

    def add(helper, owner, where, watched):
        key = (id(helper), None if owner is None else id(owner))
        if key in seen or len(units) >= _MAX_UNITS:
            return
        seen.add(key)
        code = helper.__code__
        bound = {code.co_varnames[0]: (owner, owner)} if owner is not None and code.co_argcount \
            else {}
        units.append((helper, bound, where, _reads(helper, bound), watched))
    for _, _, _, reads, _ in units:  # (grows while it is walked)
        for root, path, value in reads:
            if isinstance(value, Module):
                for module in value.modules():
                    if _user_function(type(module).forward):  # called with tensors: not watched
                        add(type(module).forward, module, None, False)
            elif type(value) is types.MethodType:  # found through its object, guarded already
                if _user_function(value.__func__):
                    add(value.__func__, value.__self__, None, True)
            elif _user_function(value):  # a function: where it is found is guarded
                add(value, None, (root, path), True)
    return units


def watch_helpers(units):
    """(a profile function, what it notes): while the call is traced, it notes the objects that
    the parameters of the helper units (not fn's own, whose are known) are bound to at their
    calls, as {unit index: [{parameter name: object}]}, for noted_reads: which cfg a
    vae_loss(model, x, cfg) reads cfg.kl_weight from is only known then. (None, {}) when no
    helper has parameters of its own, or another profiler is on (its reads stay frozen)."""
    codes = {}
    for i, (func, bound, _, _, watched) in enumerate(units):
        if not watched:
            continue
        code = func.__code__
        params = [p for p in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
                  if p not in bound]
        if params:
            codes[code] = (i, params)
    noted, seen = {}, set()
    if not codes or sys.getprofile() is not None:
        return None, noted

    def watch(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            i, params = codes[frame.f_code]
            found, bindings = frame.f_locals, noted.setdefault(i, [])
            binding = {p: found[p] for p in params if p in found and not _plain(found[p])}
            key = (i,) + tuple((p, id(obj)) for p, obj in binding.items())  # (never ==: tensors)
            if len(bindings) < 8 and key not in seen:
                seen.add(key)
                bindings.append(binding)
    return watch, noted


def noted_reads(units, noted):
    """What the helpers' code reads through their parameters, for the objects watch_helpers
    noted: (root, path, value) rooted where the calling code finds the object (a global, an
    attribute of self, an argument), so that a new object there is checked too. An object it
    does not find there (made in the call, or looked up in a container) is left out: what is
    read through it stays as traced."""
    where = {}
    for _, bound, _, reads, _ in units:
        for root, obj in bound.values():
            where.setdefault(id(obj), (root, ()))
        for root, path, value in reads:
            where.setdefault(id(value), (root, path))
    found = {}
    for i, bindings in noted.items():
        for binding in bindings:
            objects = {id(obj) for obj in binding.values()}
            bound = {name: (obj, obj) for name, obj in binding.items()}
            for root, path, value in _reads(units[i][0], bound):
                if path and id(root) in objects and id(root) in where:
                    base, start = where[id(root)]
                    found.setdefault((id(base), start + path), (base, start + path, value))
    return list(found.values())


def _plain(value):
    """A tensor, an array or a plain Python value: what the signature holds, or nothing to read
    attributes of."""
    return isinstance(value, (Tensor, *PYTHON_VALUES)) or backend.is_array(value)


def _call_binding(func, bound, args, kwargs):
    """{parameter name: (its guard root, the object)} for the parameters of func that this call
    binds to objects: an argument's (its root the argument's path, A[i] or K['name']), or a
    default's. Not tensors, arrays and plain values, which the signature holds."""
    code = getattr(func, "__code__", None)
    if code is None:
        return {}
    positional = code.co_varnames[:code.co_argcount]
    skip = 0  # the parameters bound before the call's (a method's self, a partial's arguments)
    while skip < len(positional) and positional[skip] in bound:
        skip += 1
    found = {name: (Argument(f"A[{i}]"), value)
             for i, (name, value) in enumerate(zip(positional[skip:], args))}
    named = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    found.update((k, (Argument(f"K[{k!r}]"), v)) for k, v in kwargs.items() if k in named)
    defaults = func.__defaults__ or ()
    given = {**dict(zip(positional[len(positional) - len(defaults):], defaults)),
             **(func.__kwdefaults__ or {})}
    found.update((k, (v, v)) for k, v in given.items() if k not in found and k not in bound)
    return {k: (root, v) for k, (root, v) in found.items() if not _plain(v)}


_LIBRARIES = tuple(sorted({os.path.join(os.path.abspath(p), "") for p in (
    *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")),
    PACKAGE_DIR)}))


def _user_function(obj):
    """Whether obj is a Python function of the user's own code: not gpuad's, the standard
    library's or an installed package's (their globals are not the user's to change)."""
    return (type(obj) is types.FunctionType
            and not os.path.abspath(obj.__code__.co_filename).startswith(_LIBRARIES))


def _reads(func, bound):
    """Every (root, attribute path, value) that func's own code reads, as python_reads finds
    them, whatever the value (discover follows the modules and optimizers among them, code_units
    the functions and methods)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return []
    cells = dict(zip(code.co_freevars, getattr(func, "__closure__", None) or ()))
    module_globals = getattr(func, "__globals__", {})
    reads = {}
    for current in _codes(code):
        root = keyed = None
        for instr in _instructions(current):
            name, op, found = instr.argval, instr.opname, None
            step = None  # (path element, value) one step down the chain from root
            if op in ("LOAD_ATTR", "LOAD_METHOD") and root is not None:
                try:
                    step = (_attribute(name), getattr(root[2], name))
                except Exception:  # noqa: BLE001  (a property that raises: the call will say)
                    step = (_attribute(name), _SKIP)
            elif _is_subscript(instr) and keyed is not None:  # cfg["beta"], self.hp["lr"]
                (root, key), literal = keyed, source_literal(keyed[1])
                container = root[2]
                if literal is not None and type(container) in (dict, list, tuple):
                    try:
                        step = (f"[{literal}]", container[key])
                    except (LookupError, TypeError):
                        pass
            if step is not None:
                path, value = root[1] + (step[0],), step[1]
                reads.setdefault((id(root[0]),) + path, (root[0], path, value))
                if value is not _SKIP and not isinstance(value, Tensor) and not (
                        backend.is_array(value)):  # on along self.cfg.beta, not into arrays
                    found = (root[0], path, value)
            elif op in ("LOAD_FAST", "LOAD_DEREF") and name in bound:
                found = (bound[name][0], (), bound[name][1])
            elif op == "LOAD_DEREF" and name in cells:
                try:
                    found = (cells[name], (".cell_contents",), cells[name].cell_contents)
                except ValueError:  # an empty cell
                    pass
            elif op == "LOAD_GLOBAL" and name in module_globals:
                found = (module_globals, (".get(" + repr(name) + ")",), module_globals[name])
            if found is not None:
                reads.setdefault((id(found[0]),) + found[1], found)
            keyed = ((root, name) if op == "LOAD_CONST" and root is not None
                     else keyed if op == "COPY" else None)  # (COPY: cfg["n"] += 1)
            root = found
    return list(reads.values())


@functools.lru_cache(maxsize=1024)
def _instructions(code):
    """The code's instructions, read once (a model's blocks share their forward's code)."""
    return tuple(dis.get_instructions(code))


def _is_subscript(instr):
    """container[key] (BINARY_SUBSCR; a BINARY_OP from Python 3.14)."""
    return instr.opname == "BINARY_SUBSCR" or (instr.opname == "BINARY_OP"
                                               and instr.argrepr == "[]")


def _function_of(fn):
    """(the Python function whose code runs when fn is called, {parameter name: the object bound
    to it}): a method's self, a Module's forward and an object's __call__ (self the model or the
    object), a functools.partial's arguments."""
    if isinstance(fn, functools.partial):
        func, bound = _function_of(fn.func)
        code = getattr(func, "__code__", None)
        if code is not None:
            names = code.co_varnames[len(bound):code.co_argcount]
            bound = {**bound, **dict(zip(names, fn.args)), **fn.keywords}
        return func, bound
    if isinstance(fn, Module):
        func, owner = type(fn).forward, fn
    elif getattr(fn, "__self__", None) is not None and hasattr(fn, "__func__"):
        func, owner = fn.__func__, fn.__self__
    elif not hasattr(fn, "__code__") and hasattr(getattr(type(fn), "__call__", None), "__code__"):
        func, owner = type(fn).__call__, fn
    else:
        return fn, {}
    code = func.__code__
    return func, {code.co_varnames[0]: owner} if code.co_argcount else {}


def _codes(code):
    """A code object and the code nested in it (comprehensions, lambdas, inner functions)."""
    stack = [code]
    while stack:
        code = stack.pop()
        yield code
        stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]


def code_constants(units):
    """The constants written in the code of the units (code_units) and the code nested in it."""
    codes = [getattr(func, "__code__", None) for func, _, _, _, _ in units]
    return [k for code in codes if code is not None for c in _codes(code) for k in c.co_consts]


def _random_state(source):
    """A comparable snapshot of the state of Python's random module, a numpy RandomState (the
    global one behind numpy.random.rand and the like) or a numpy Generator."""
    if source is random:
        return random.getstate()
    if isinstance(source, numpy.random.RandomState):
        _, key, position, has_gauss, gauss = source.get_state()
        return key.tobytes(), position, has_gauss, gauss
    return repr(source.bit_generator.state)


DREW_RANDOM = ("draws numbers from Python's random module or numpy's on every call (a replay "
               "would use the recorded ones: draw with gpuad's random functions, or outside and "
               "pass them in)", "drew Python's or numpy's random numbers")
ADVANCED_ITERATOR = ("draws from an iterator on every call (next(batches): a replay would use "
                     "the recorded batch again: draw outside and pass it in)",
                     "advanced an iterator")


def changed_value(description):
    """(why a call that did it every time falls back, the debug log's short form) for a Python
    value the call changed ("Trainer.step: 3 -> 4")."""
    return (f"changes a Python value on every call ({description}: keep it outside, or in a "
            f"tensor)", f"changed {description}")


def changed_python_value(values):
    """What the call changed of the snapshot (discover's): the first Python value (changed_value),
    DREW_RANDOM when it drew from Python's or numpy's random numbers, ADVANCED_ITERATOR when it
    advanced an iterator; None when nothing."""
    for kind, holder, name, before in values:
        if kind == "random":
            if _random_state(holder) != before:
                return DREW_RANDOM
            continue
        if kind == "iterator":
            if _iterator_state(holder) != before:
                return ADVANCED_ITERATOR
            continue
        if kind == "attr":
            now = _watched(vars(holder).get(name, _SKIP))
            where = f"{type(holder).__name__}.{name}"
        elif kind == "global":
            now, where = _watched(holder.get(name, _SKIP)), f"the global {name}"
        else:
            try:
                now = _watched(holder.cell_contents)
            except ValueError:
                now = _SKIP
            where = "a closure variable"
        if not _unchanged(now, before):
            shown = ("deleted" if now is _SKIP else f"{now!r:.20}" if type(now) in PYTHON_VALUES
                     or type(now) is _Entries else f"a {type(now).__name__}")  # (a tracing
            # tensor's repr reads the host)
            return changed_value(f"{where}: {before!r:.20} -> {shown}")
    return None


def changed_read(reads):
    """The first Python value the code reads (python_reads) that the call itself changed (a
    counter in a dict, state["step"] += 1), as changed_value gives it, or None. A replay would
    read it as it was traced, but not change it."""
    for root, path, value in reads:
        if isinstance(root, Argument):  # (the call's argument is not kept)
            continue
        try:
            now = _read_again(root, path)
        except Exception:  # noqa: BLE001  (gone: the replay's guard misses on it)
            continue
        if not _unchanged(now, value):
            where = "".join(path)
            return changed_value(f"{where}: {value!r:.20} -> {now!r:.20}")
    return None


def _unchanged(now, before):
    """Whether a Python value is as the snapshot had it: program.same_value (what a replay's
    guard asks), or NaN both times (a NaN the call did not touch; the guard sees it as a
    change, and re-traces)."""
    return same_value(now, before) or (type(now) is type(before) and now != now
                                       and before != before)


def _read_again(root, path):
    """The value at a read's path from its root: the expression a replay's guard evaluates
    (the path is source of gpuad's own making: .name, .get('name'), [literal])."""
    return eval("root" + "".join(path), {"root": root})  # noqa: S307


def _attribute(name):
    """The source reading instance attribute `name` (an entry of the object's __dict__)."""
    if name.isidentifier() and not keyword.iskeyword(name):
        return "." + name
    return f".__dict__[{name!r}]"  # set by setattr under a name Python cannot write after a dot
