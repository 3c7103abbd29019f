"""Rewrites of a recorded step that a replay runs in place of what was recorded, with the same
results.

Max pooling after a ReLU pools first: max_pool(relu(z)) is relu(max_pool(z)), since ReLU is
monotone, and so the ReLU and its backward run on the pooled array, a quarter of the size for
2x2 windows, as the hand-written floor does (LeNet's step: about 0.6 ms of 8). The gradients
keep their bits. A window whose maximum is positive picks the same first maximum in z as in
relu(z), and ReLU passes its gradient there; any other window's gradient stops at the ReLU either
way (+0.0 everywhere); a NaN window picks its last NaN in both, which ReLU passes. Overlapping
windows add the same terms in the same order. The pooled values are the same bits on numpy too:
its ReLU makes every zero +0.0 (maximum(x, 0) returns its second operand on a tie), whichever
order. The rewrite is made only where nothing else reads relu(z) or its gradient: no other layer,
no hook, no result of the step.
"""
from .tracing import Const, Instr, Ref, Value, memory_group


def pool_before_relu(instrs, values, escaping, split_at=None, available=None):
    """instrs with every max_pool(relu(z)) whose ReLU output and its gradient only the pooling
    and the ReLU's backward read rewritten to pool first (values gets the new value numbers).
    For a recording whose backward is its own program from instruction `split_at` on (a compiled
    model's), the forward's pair and the backward's pair must each lie on one side, which keeps
    split_at where it is, and z must be `available` (alive), since the backward reads it and the
    first call's outputs carry its array (remade() computes the new maxima from it)."""
    producer, readers = {}, {}
    for i, instr in enumerate(instrs):
        for vid in instr.made():
            producer[vid] = i
        for vid in instr.reads:
            readers.setdefault(vid, []).append(i)
    instrs = list(instrs)
    for i, pool in enumerate(instrs):
        if pool is None or not _call(pool, "max_pool", 1):
            continue
        found = _pattern(instrs, i, producer, readers, values, escaping)
        if found is None:
            continue
        relu_at, scatter_at, backward_at = found
        if split_at is not None and not (
                (relu_at < split_at) == (i < split_at)
                and (scatter_at < split_at) == (backward_at < split_at)
                and available(instrs[relu_at].args[0].vid)):
            continue
        relu, scatter, backward = instrs[relu_at], instrs[scatter_at], instrs[backward_at]
        z, pooled, grad = relu.args[0].vid, pool.outs, scatter.args[0]
        maxima, passed = _new_value(values, pooled), _new_value(values, pooled)
        instrs[i] = [_like(pool, (Ref(z),), maxima),
                     _like(relu, (Ref(maxima),), pooled)]
        instrs[scatter_at] = [_like(backward, (grad, Ref(pooled)), passed),
                              _like(scatter, (Ref(passed), Ref(z), Ref(maxima)), backward.outs)]
        instrs[relu_at] = instrs[backward_at] = None
    out = []
    for instr in instrs:
        if type(instr) is list:
            out.extend(instr)
        elif instr is not None:
            out.append(instr)
    return out


def _pattern(instrs, i, producer, readers, values, escaping):
    """(where the ReLU, the pooling's scatter and the ReLU's backward are) for the pooling at i,
    or None when its input is not a ReLU's output that only they read."""
    pool = instrs[i]
    h = pool.args[0].vid
    relu_at = producer.get(h)
    if relu_at is None or instrs[relu_at] is None or not _call(instrs[relu_at], "relu", 1):
        return None
    z = instrs[relu_at].args[0].vid
    users = [j for j in readers.get(h, ()) if j != i]
    if len(users) != 2 or h in escaping or values[h].aliases:
        return None
    scatter_at, backward_at = sorted(users)
    scatter, backward = instrs[scatter_at], instrs[backward_at]
    if (scatter is None or backward is None or not _call(scatter, "max_pool_scatter", 3)
            or _plain(scatter.kwargs) != _plain(pool.kwargs)
            or not _refs(scatter.args[1:], (h, pool.outs))
            or not _call(backward, "relu_backward", 2)
            or not _refs(backward.args, (scatter.outs, h))):
        return None
    g = scatter.outs
    if readers.get(g) != [backward_at] or g in escaping or values[g].aliases:
        return None
    # z is read again by the backward, later than before: nothing may write it in between
    shared = memory_group(values, z)
    if shared is None:
        return None
    for between in instrs[relu_at + 1:backward_at]:
        for instr in between if type(between) is list else (between,):
            if instr is not None and shared.intersection(instr.writes):
                return None
    return relu_at, scatter_at, backward_at


def _plain(template):
    """An argument template with its constants unwrapped, to compare two calls' settings."""
    if type(template) is Const:
        return ("const", template.obj)
    if type(template) in (tuple, list):
        return tuple(map(_plain, template))
    if type(template) is dict:
        return {k: _plain(v) for k, v in template.items()}
    return ("other", id(template))


def _call(instr, name, n_args):
    """Whether instr is a call of fused function `name` on n_args arrays, outside any optimizer
    update, with one result."""
    return (type(instr) is Instr and instr.kind == "call" and instr.name == name
            and len(instr.args) == n_args and type(instr.args[0]) is Ref
            and type(instr.outs) is int and not instr.writes and instr.segment is None
            and not instr.asarray and (name != "relu" and name != "relu_backward"
                                       or not instr.kwargs))


def _refs(args, vids):
    return all(type(a) is Ref and a.vid == vid for a, vid in zip(args, vids))


def _like(instr, args, out):
    """A call of instr's function on args, making value `out`."""
    new = Instr(instr.kind, instr.target, instr.name, args, instr.kwargs,
                tuple(a.vid for a in args if type(a) is Ref), None)
    new.outs, new.xp = out, instr.xp
    return new


def _new_value(values, like):
    """A fresh array's value number, shaped and typed as value `like`."""
    template = values[like]
    value = Value.__new__(Value)
    value.vid, value.kind, value.owner = len(values), "produced", None
    value.meta, value.nbytes, value.writeable = template.meta, template.nbytes, True
    value.aliases, value.view, value.real = [], False, None
    values.append(value)
    return value.vid


def remade(instrs, vids, real):
    """Compute the arrays of values a rewrite made that the traced run never did (the maxima
    before the ReLU) from `real` (value number -> the call's array), into `real`: the first
    call's outputs carry them for their backward. False when a value is another kind (a freed
    array of the call, which only running the call again could give: a random draw would differ)
    or an input is not there."""
    producers = {vid: instr for instr in instrs for vid in instr.made()}
    for vid in vids:
        instr = producers.get(vid)
        if (instr is None or not _call(instr, "max_pool", 1)
                or not all(r in real for r in instr.reads)):
            return False
        real[vid] = instr.target(*_real(instr.args, real), **_real(instr.kwargs, real))
    return True


def _real(template, real):
    if type(template) is Ref:
        return real[template.vid]
    if type(template) is Const:
        return template.obj
    if type(template) in (tuple, list):
        return type(template)(_real(t, real) for t in template)
    if type(template) is dict:
        return {k: _real(v, real) for k, v in template.items()}
    raise TypeError(f"remade: an argument of kind {type(template).__name__}")
