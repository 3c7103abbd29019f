"""Flat optimizer updates: a run of one elementwise optimizer kernel over several parameters (SGD's
or Adam's; the recording has one call per parameter) replayed as one call over flat buffers.

The hand-written floor keeps parameters, gradients and optimizer state in one contiguous buffer
each, so its update is a handful of whole-buffer operations, where one call per parameter costs
the kernel's Python and four or more small ufunc calls each. So a replay moves the run's
parameters and state into flat buffers once (the tensors' and state dicts' arrays become views of
them, with the same values), computes the gradients into a flat gradient buffer (with out=, or a
copy), and calls the kernel once whenever the run's host numbers agree (one parameter group).
The kernels are elementwise: every element is computed as before, and the replay stays bit for
bit the eager step.

It never moves an array that anything else holds (a user's reference or a view of it: refcounts
say), nor one that is a view of other memory (a user's own flat layout): then the run replays
parameter by parameter, as it would without this. Views of a flat buffer that an earlier run made
(another compiled step over the same parameters, say with a new optimizer) move again when only
gpuad.compile holds them and their buffer; that run then moves them back before its next update,
once: after that it updates them where they are. A gradient buffer that someone still holds a
gradient of is left to them and a new one made. Only numpy arrays (CuPy replays as CUDA graphs).
"""
import math
import sys
import weakref

import numpy

from ..backend import kernels
from .tracing import Const, Ref, Scalar


def _counts(arrays):
    return [sys.getrefcount(a) for a in arrays]


def _baseline():
    holder = [numpy.empty(1)]  # the owner: a tensor or a state dict
    local = holder[0]  # noqa: F841  (the replay's variable)
    arrays = [holder[0]]  # as FlatRun.move counts them
    return _counts(arrays)[0]


PROGRAMS = weakref.WeakSet()  # every live program, of every compiled function
# how often a run takes its arrays back from a run that moved them away: beyond, it leaves them
# there, so two steps alternating over the same parameters stop copying them at every switch (and
# handing freed memory back after each copy)
_TAKEN_BACK = 1
_FLATS = weakref.WeakValueDictionary()  # id -> every live flat buffer that move() made
_FLATS_VIEWS = {}  # id of such a buffer -> weak references to the views move() made of it

# references to a movable array when move() counts them: its owner's, the replay's variable,
# move's list and what counting adds; any more and someone else holds it (or a view of it)
_SOLE = _baseline()


def _flat_baseline():
    flat = numpy.empty(1)  # as _own_memory holds a buffer: a local, and what counting adds
    return sys.getrefcount(flat)


_FLAT_SOLE = _flat_baseline()


def find_runs(program):
    """The runs of the program's instructions to replay flat: [(lo, hi, roles)], roles giving per
    positional argument ("external", vids) for parameters and state, ("gradient", vids) for
    gradients the step computes, or ("none", None)."""
    runs, instrs, i = [], program.instrs, 0
    while i < len(instrs):
        j = i + 1
        if _update(instrs[i]):
            while j < len(instrs) and _same_update(instrs[i], instrs[j]):
                j += 1
            roles = _roles(program, instrs[i:j]) if j - i > 1 else None
            if roles is not None:
                runs.append((i, j, roles))
        i = j
    return runs


def _update(instr):
    """A call of an elementwise optimizer kernel, with host numbers as its keywords."""
    return (instr.segment is not None and instr.kind == "call" and instr.outs is None
            and instr.name in kernels.ELEMENTWISE
            and all(type(a) is Ref or (type(a) is Const and a.obj is None) for a in instr.args)
            and all(type(v) is Scalar for v in instr.kwargs.values()))


def _same_update(a, b):
    return (_update(b) and b.target is a.target and list(b.kwargs) == list(a.kwargs)
            and len(b.args) == len(a.args)
            and all((type(x) is Ref) == (type(y) is Ref) for x, y in zip(a.args, b.args)))


def _roles(program, run):
    values, roles = program.values, []
    shapes = [values[next(a for a in instr.args if type(a) is Ref).vid].meta[1] for instr in run]
    for position in range(len(run[0].args)):
        if type(run[0].args[position]) is not Ref:
            roles.append(("none", None))
            continue
        vids = [instr.args[position].vid for instr in run]
        metas = [values[vid].meta for vid in vids]
        if (any(meta[0] is not numpy.ndarray or meta[2] != metas[0][2] for meta in metas)
                or [meta[1] for meta in metas] != shapes):
            return None
        kinds = {_kind(program, vid) for vid in vids}
        if len(kinds) != 1 or None in kinds:
            return None
        roles.append((kinds.pop(), vids))
    every = [vid for _, vids in roles if vids is not None for vid in vids]
    if len(set(every)) != len(every) or not any(role == "external" for role, _ in roles):
        return None  # one array in two places, or nothing to move
    return roles


def _kind(program, vid):
    """"external" for a parameter's or state's array (moved into a flat buffer once), "gradient"
    for a gradient the step computes: into its view of a flat buffer with out= where the
    operation takes that, else copied there (a pass over a small array, such as a bias's)."""
    value = program.values[vid]
    if value.kind == "external":
        owner = value.owner
        if owner[0] == "state" or (owner[0] == "array" and owner[1][0] == "obj"):
            return "external"
        return None
    if (value.kind == "produced" and vid in program.gradient_writebacks and not value.view
            and not value.aliases and value.meta[1]):
        return "gradient"
    return None


class FlatRun:
    """A run's flat buffers at replay time: `move` puts the parameters and state into them (once),
    `gradients` makes the gradients' buffer ready, `ok` says the flat call may run (None: the
    arrays cannot move, the run replays per parameter)."""

    def __init__(self, program, index, lo, hi, roles):
        self.program, self.index, self.lo, self.hi, self.roles = program, index, lo, hi, roles
        self.ok = False
        self.taken = 0  # how often another run moved this one's arrays into its own buffers
        self.prefix = f"F{index}"
        first = next(vids for _, vids in roles if vids is not None)
        self.shapes = [program.values[vid].meta[1] for vid in first]
        self.externals = [(p, vids) for p, (role, vids) in enumerate(roles) if role == "external"]
        self.gradient = next(((p, vids) for p, (role, vids) in enumerate(roles)
                              if role == "gradient"), None)
        self.gradient_views, self.gradient_flat, self.gradient_counts = None, None, None
        self.scalar_rows, self._asked, self._same = [], None, False  # see same_numbers
        for p, (role, _) in enumerate(roles):
            program.namespace[self.flat_name(p)] = None

    def same_numbers(self, numbers):
        """Whether every update of the run got the same host numbers from HOST()'s list (their
        slots: scalar_rows). Remembered for the list last asked about: a replay that reuses the
        last host pass passes that same list again."""
        if numbers is not self._asked:
            rows = [[numbers[i] for i in row] for row in self.scalar_rows]
            self._same = all(row == rows[0] for row in rows[1:])
            self._asked = numbers
        return self._same

    def flat_name(self, position):
        return f"{self.prefix}a{position}"

    def view_name(self, k):
        return f"{self.prefix}g{k}"

    def external_vids(self):
        return [vid for _, vids in self.externals for vid in vids]

    def move(self):
        """Move the run's parameter and state arrays into flat buffers: views of them now stand
        in their tensors and state dicts (the replay reads them again). When one cannot move,
        nothing changes and ok is None."""
        if self.taken > _TAKEN_BACK:  # two steps taking turns: this one updates per parameter
            self.ok = None
            return
        program, namespace, k = self.program, self.program.namespace, self.hi - self.lo
        arrays = [_owned_array(program.values[vid].owner) for vid in self.external_vids()]
        counts = _counts(arrays)
        pool = program._pool
        plans, earlier = [], {}  # earlier: the flat buffers of other runs that arrays leave
        for n, (position, vids) in enumerate(self.externals):
            group = arrays[n * k:(n + 1) * k]
            key = ("flat",) + tuple(_owner_key(program.values[vid].owner) for vid in vids)
            shared = pool.get(key)  # moved by another program of this function (another batch)
            if shared is not None and all(a is v for a, v in zip(group, shared[1])):
                plans.append((position, vids, shared, None))
                continue
            own = [_own_references(a) for a in group]
            if not all(_movable(a, group[0].dtype, c - extra)
                       for a, c, extra in zip(group, counts[n * k:(n + 1) * k], own)):
                self.ok = None
                return
            plans.append((position, vids, _flat_copy(group), key))
            earlier.update((id(a.base), a.base) for a in group if a.base is not None)
        for other in list(PROGRAMS):  # runs that moved these arrays before move them back
            for run in other.flat_runs:
                if run is not self and any(other.namespace.get(run.flat_name(position)) is flat
                                           for position, _ in run.externals
                                           for flat in earlier.values()):
                    run.ok = False
                    run.taken += 1
        for n, (position, vids, (flat, views), key) in enumerate(plans):
            if key is not None:
                pool[key] = (flat, views)
                for vid, old, view in zip(vids, arrays[n * k:(n + 1) * k], views):
                    _rebind(program.values[vid].owner, view)
                    _retarget(old, view)
            namespace[self.flat_name(position)] = flat
            for vid, view in zip(vids, views):
                program.values[vid].real = view  # the identity fast path of binding
                namespace[program.identity_names[vid]] = view
        self.ok = True

    def gradients(self):
        """Make the gradient buffer ready for this replay: the last one's unless someone still
        holds one of its gradients (or a view of it), which keeps its values."""
        if self.gradient is None:
            return
        if self.gradient_views is not None and self._gradient_counts() == self.gradient_counts:
            return
        position, vids = self.gradient
        flat, views = _flat_views(self.shapes, self.program.values[vids[0]].meta[2])
        namespace = self.program.namespace
        namespace[self.flat_name(position)] = flat
        for k, view in enumerate(views):
            namespace[self.view_name(k)] = view
        self.gradient_flat, self.gradient_views = flat, views
        del flat, views, view  # counted as at the next replay: held by this and the namespace
        self.gradient_counts = self._gradient_counts()

    def _gradient_counts(self):
        return _counts([self.gradient_flat] + self.gradient_views)


def _owner_key(owner):
    if owner[0] == "state":
        return id(owner[1]), id(owner[2]), owner[3]
    return id(owner[1][1])


def _own_references(array):
    """References that programs hold to an array they traced (an external's Value, and the name
    that binding compares it with), those of every compiled function (an evaluation step compiled
    before the training step reads the same parameters), and the views lists of the flat buffers
    they made: gpuad.compile's, not someone else's."""
    count = 0
    for other in list(PROGRAMS):
        for value in other.values:
            if value.real is array:
                name = other.identity_names.get(value.vid)
                count += 1 + (name is not None and other.namespace.get(name) is array)
    return count + sum(view is array for _, views in _flat_entries() for view in views)


def _buffer_references(flat):
    """References that programs hold to a flat buffer they made: their namespaces' names for it
    and their pools' entries."""
    count = sum(value is flat for other in list(PROGRAMS) for value in other.namespace.values())
    return count + sum(buffer is flat for buffer, _ in _flat_entries())


def _flat_entries():
    """(flat buffer, its views) of every live program's pool, each pool once (the programs of one
    compiled function share theirs)."""
    pools = {id(other._pool): other._pool for other in list(PROGRAMS)}
    return [entry for pool in pools.values() for key, entry in pool.items() if key[0] == "flat"]


def _retarget(array, view):
    """Every program binds `view` where it traced `array` (which goes free)."""
    for other in list(PROGRAMS):
        for value in other.values:
            if value.real is array:
                value.real = view
                name = other.identity_names.get(value.vid)
                if name is not None and other.namespace.get(name) is array:
                    other.namespace[name] = view


def _movable(array, dtype, references):
    return (type(array) is numpy.ndarray and array.dtype == dtype and _own_memory(array)
            and array.flags.c_contiguous and array.flags.writeable and references <= _SOLE)


def _own_memory(array):
    """Whether array owns its memory, or is a view of a flat buffer that move() made and that
    nothing but its views and gpuad.compile holds (a user's view of a parameter that is such a
    view holds the buffer, not the parameter's array, so the buffer's count says)."""
    flat = array.base
    if flat is None:
        return True
    if _FLATS.get(id(flat)) is not flat:
        return False
    views = sum(1 for value in _FLATS_VIEWS.get(id(flat), ()) if value() is not None)
    return sys.getrefcount(flat) - _FLAT_SOLE == views + _buffer_references(flat)


def _flat_views(shapes, dtype):
    """One new buffer and a C-contiguous view of it per shape, in order."""
    sizes = [math.prod(shape) for shape in shapes]
    flat = numpy.empty(sum(sizes), dtype)
    starts = numpy.cumsum([0] + sizes[:-1]).tolist()
    return flat, [flat[start:start + size].reshape(shape)
                  for start, size, shape in zip(starts, sizes, shapes)]


def _flat_copy(arrays):
    flat, views = _flat_views([a.shape for a in arrays], arrays[0].dtype)
    for view, a in zip(views, arrays):
        numpy.copyto(view, a)
    _FLATS[id(flat)] = flat
    _FLATS_VIEWS[id(flat)] = [weakref.ref(view) for view in views]
    weakref.finalize(flat, _FLATS_VIEWS.pop, id(flat), None)
    return flat, views


def _owned_array(owner):
    if owner[0] == "state":
        _, optimizer, param, key = owner
        return optimizer.state[param][key]
    return owner[1][1].array


def _rebind(owner, view):
    if owner[0] == "state":
        _, optimizer, param, key = owner
        optimizer.state[param][key] = view
    else:
        owner[1][1].array = view
