"""PyTorch as the oracle for the shape and indexing ops: values, result dtypes, gradients, empty
inputs and errors of every op added for issue 15, indices that mix ints with index arrays (torch
selects with the ints first), and assignments `x[index] = v` that autograd records. Skipped when
torch is not importable; torch is never a dependency."""
import re

import numpy as np
import pytest

import gpuad

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _values(shape):
    return RNG.uniform(-2, 2, shape)


def _gp(value, device, requires_grad=False):
    if isinstance(value, np.ndarray):
        return gpuad.tensor(value, device=device, requires_grad=requires_grad)
    if isinstance(value, tuple):
        return tuple(_gp(v, device) for v in value)
    return value


def _th(value, requires_grad=False):
    if isinstance(value, np.ndarray):
        return torch.tensor(value, requires_grad=requires_grad)
    if isinstance(value, tuple):
        return tuple(_th(v) for v in value)
    return value


def _listed(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def compare(ours, theirs, *inputs, grad=(0,), device="cpu"):
    """ours(*gpuad inputs) against theirs(*torch inputs): shapes, dtypes and values of every
    output, then the gradients of sum(out * v) for a random v, for the inputs listed in grad.
    numpy arrays among the inputs become tensors (requiring grad when listed); other values
    (ints, slices, tuples of arrays as indices) pass through."""
    g_in = [_gp(a, device, i in grad) for i, a in enumerate(inputs)]
    t_in = [_th(a, i in grad) for i, a in enumerate(inputs)]
    g_out, t_out = _listed(ours(*g_in)), _listed(theirs(*t_in))
    assert len(g_out) == len(t_out)
    for g, t in zip(g_out, t_out):
        assert tuple(g.shape) == tuple(t.shape), (g.shape, t.shape)
        assert str(t.dtype) == f"torch.{g.dtype}", (g.dtype, t.dtype)
        assert g.device == gpuad.device(device)
        np.testing.assert_allclose(g.numpy(force=True), t.detach().numpy(), rtol=1e-12, atol=1e-12)
    for g, t in zip(g_out, t_out):
        assert g.requires_grad == t.requires_grad, (g.requires_grad, t.requires_grad)
    wanted = [i for i in grad if isinstance(inputs[i], np.ndarray)]
    weights = [_values(g.shape) for g in g_out]
    pairs = [(g, t, w) for g, t, w in zip(g_out, t_out, weights) if t.requires_grad]
    if not wanted or not pairs:
        return g_out
    g_loss = sum((g * gpuad.tensor(w, device=device)).sum() for g, _, w in pairs)
    t_loss = sum((t * torch.tensor(w)).sum() for _, t, w in pairs)
    g_grads = gpuad.grad(g_loss, [g_in[i] for i in wanted], allow_unused=True)
    t_grads = torch.autograd.grad(t_loss, [t_in[i] for i in wanted], allow_unused=True)
    for i, g, t in zip(wanted, g_grads, t_grads):
        g = np.zeros(inputs[i].shape) if g is None else g.numpy(force=True)
        t = np.zeros(inputs[i].shape) if t is None else t.numpy()
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-12, err_msg=f"gradient of input {i}")
    return g_out


def raises_like(ours, theirs, *fragments):
    """Both raise; ours is torch's kind of error and its message holds the fragments (the op's
    name, the shapes)."""
    with pytest.raises(Exception) as their_error:
        theirs()
    with pytest.raises(type(their_error.value)) as our_error:
        ours()
    for fragment in fragments:
        assert fragment in str(our_error.value), (fragment, str(our_error.value))


# ---- indices mixing ints, slices, None, Ellipsis, index arrays and masks -------------------------
I3 = np.array([0, 2, 1])
J21 = np.array([[1], [0]])
M4 = np.array([True, False, True, True])
INDEX_PATTERNS = [
    (1, slice(None), I3), (slice(None), 1, I3), (I3, 1), (1, I3), (I3, slice(None), 1),
    (1, slice(None), 2, I3), (I3, slice(None), 1, I3), (Ellipsis, 1, I3), (1, Ellipsis, I3),
    (None, 1, slice(None), I3), (1, None, I3), (1, slice(1, 3), I3, slice(None, None, 2)),
    (J21, 1, slice(None), I3), (-1, slice(None), I3, -2), (1, M4), (slice(None), M4, 2),
    (True, 1, slice(None), I3), (np.int64(2), slice(None), I3), (np.array(1), slice(None), I3),
    (I3, Ellipsis, 0), ([0, 2], 1, slice(None), [1, 3]), (I3, None, J21), (0, 1, 2, I3),
    (slice(None, None, 2), 1, I3), (I3,), (1, slice(None), np.array([], dtype=np.int64)),
]


def _pattern_id(index):
    return "".join("s" if isinstance(i, slice) else "e" if i is Ellipsis else "n" if i is None
                   else "a" if isinstance(i, (np.ndarray, list)) and np.ndim(i) else "i"
                   for i in index)


@pytest.mark.parametrize("index", INDEX_PATTERNS, ids=map(_pattern_id, INDEX_PATTERNS))
def test_getitem_orders_indices_like_torch(index, device):
    x = _values((3, 4, 5, 6))
    compare(lambda x, i: x[i], lambda x, i: x[i], x, index, device=device)


def test_the_reported_pattern():
    x = _values((3, 4, 12, 5, 6))
    idx = np.array([0, 2, 1])
    out = compare(lambda x, i: x[1, :, 3:11:2, i, 0:2], lambda x, i: x[1, :, 3:11:2, i, 0:2],
                  x, idx)[0]
    assert out.shape == (4, 4, 3, 2)  # numpy's rules would give (3, 4, 4, 2)


@pytest.mark.parametrize("index", INDEX_PATTERNS, ids=map(_pattern_id, INDEX_PATTERNS))
def test_setitem_records_like_torch(index, device):
    """y[index] = v on a non-leaf y: v gets the gradient of what it wrote, y's old value that of
    the rest, with torch's placement of the indexed dims."""
    shape = tuple(torch.zeros(3, 4, 5, 6)[_th(index)].shape)

    def assign(make):
        def run(x, v, i):
            y = x * 1
            y[i] = v
            return y
        return run
    compare(assign(gpuad), assign(torch), _values((3, 4, 5, 6)), _values(shape), index,
            grad=(0, 1), device=device)


# ---- x[index] = v: the regression for the dropped gradient --------------------------------------
def test_assigning_a_value_that_requires_grad_records_it(device):
    out = gpuad.zeros(3, 4, dtype=gpuad.float64, device=device)
    v = gpuad.tensor(np.arange(4.0), device=device, requires_grad=True)
    out[1] = v * 2
    assert out.requires_grad and not out.is_leaf
    (out * gpuad.tensor(np.arange(12.0).reshape(3, 4), device=device)).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(force=True), 2 * np.arange(4.0, 8.0))


def test_a_loop_of_assignments_matches_torch():
    def run(make, x, w):
        out = make.zeros(4, 3, dtype=make.float64)
        h = make.zeros(3, dtype=make.float64)
        for t in range(4):
            h = (x[t] * w + h).tanh()
            out[t] = h
        out[:, 1:] = x[:, 1:] * 2
        out[[0, 3], [2, 2]] = w[:2]
        return out
    compare(lambda x, w: run(gpuad, x, w), lambda x, w: run(torch, x, w),
            _values((4, 3)), _values((3,)), grad=(0, 1))


def test_assignments_into_computed_tensors_match_torch():
    def run(make, a, b, v):
        h = a @ b
        h[:, 0] = v
        h[[0, 2], [1, 1]] = 1.0
        h[1] = h[1] * 0 + 3.0 if make is None else v[1] * 2
        return h.relu()
    compare(lambda a, b, v: run(gpuad, a, b, v), lambda a, b, v: run(torch, a, b, v),
            _values((3, 2)), _values((2, 4)), _values((3,)), grad=(0, 1, 2))


def test_masking_a_layer_output_matches_torch():
    """nn.Linear's output views a temporary of its own (not another tensor): writable."""
    def run(make, x, w, b):
        y = make.nn.functional.linear(x, w, b)
        y[:, 0] = -1e4
        y[x[:, 0] > 0, 1] = 0.0
        return make.nn.functional.softmax(y, dim=-1)
    compare(lambda x, w, b: run(gpuad, x, w, b), lambda x, w, b: run(torch, x, w, b),
            _values((4, 3)), _values((3, 3)), _values((3,)), grad=(0, 1, 2))


def test_reading_then_writing_a_recorded_tensor_is_refused_at_backward():
    """torch's graph points at versions; gpuad's points at tensors, so a read of y recorded before
    a write into y (y[i] += v, out[t] = f(out[t - 1])) would lead to y's new node: both walks
    refuse it instead of losing the gradient."""
    x = gpuad.tensor(_values((3, 4)), requires_grad=True)
    for step in [lambda y: y.__setitem__((slice(None), slice(1, None)), y[:, 1:] * 2),
                 lambda y: y.__setitem__(([0, 2], [1, 1]), y[[0, 2], [1, 1]] + 1.0)]:
        for walk in [lambda loss: gpuad.grad(loss, x), lambda loss: loss.backward()]:
            y = x * 1
            step(y)
            with pytest.raises(RuntimeError, match="modified in place"):
                walk(y.sum())


def test_overwriting_an_output_its_rule_reads_still_gives_the_right_gradient():
    """torch refuses here (exp saved its output); gpuad keeps a copy of the old value instead,
    so the gradient is the one of the same program with an explicit clone."""
    x, v = _values((3,)), _values(())
    compare(lambda x, v: _write(x.exp(), 0, v), lambda x, v: _write(x.exp().clone(), 0, v),
            x, v, grad=(0, 1))


def _write(y, index, value):
    y[index] = value
    return y


def test_a_saved_tensor_modified_by_setitem_is_detected():
    x = gpuad.tensor(_values((3,)), requires_grad=True)
    y = x * 1
    z = y * y  # saves y
    y[0] = 5.0
    with pytest.raises(RuntimeError, match="modified in place"):
        z.sum().backward()


def test_setitem_refusals():
    leaf = gpuad.tensor(_values((3, 4)), requires_grad=True)
    raises_like(lambda: _write(leaf, 0, 1.0),
                lambda: _write(torch.tensor(_values((3, 4)), requires_grad=True), 0, 1.0),
                "__setitem__: a leaf tensor that requires grad")
    with gpuad.no_grad():
        leaf[0] = 1.0  # parameter updates
    assert leaf.is_leaf and float(leaf[0, 0]) == 1.0
    for view in [lambda h: h[0], lambda h: h.T, lambda h: h.reshape(12), lambda h: h.diagonal(),
                 lambda h: h.narrow(1, 0, 2), lambda h: h.unbind()[1]]:
        h = leaf * 1  # torch rebases h when its view is written; gpuad cannot, so it refuses
        with pytest.raises(RuntimeError, match=r"__setitem__: this tensor is a view .*x\[i, j\]"):
            view(h)[1] = gpuad.tensor(2.0, requires_grad=True)
        with pytest.raises(RuntimeError, match=r"index_fill_: this tensor is a view"):
            view(h).index_fill_(0, gpuad.tensor([0]), 1.0)
    target = gpuad.zeros(3, dtype=gpuad.float32)
    raises_like(lambda: _write(target, gpuad.tensor([0]), gpuad.tensor([1.0], dtype=gpuad.float64)),
                lambda: _write(torch.zeros(3), torch.tensor([0]), torch.tensor([1.0]).double()),
                "__setitem__", "float32", "float64")
    _write(target, 0, gpuad.tensor(2.0, dtype=gpuad.float64))  # a basic index casts, like torch
    assert float(target[0]) == 2.0 and target.dtype == gpuad.float32
    value = gpuad.ones(2, requires_grad=True)
    total = gpuad.zeros(2).add_(value, alpha=3)  # recorded: the accumulator joins the graph,
    total.sum().backward()  # as in torch, never a silently lost gradient
    assert total.requires_grad and value.grad.tolist() == [3.0, 3.0]


def test_value_with_extra_leading_ones_and_broadcast_values():
    compare(lambda x, v: _write(x * 1, 0, v), lambda x, v: _write(x * 1, 0, v),
            _values((3, 4)), _values((1, 4)), grad=(0, 1))
    compare(lambda x, v: _write(x * 1, (slice(None), [0, 2]), v),
            lambda x, v: _write(x * 1, (slice(None), [0, 2]), v),
            _values((3, 4)), _values((1,)), grad=(0, 1))


# ---- diagonals -----------------------------------------------------------------------------------
def test_diagonal_family(device):
    x = _values((3, 4, 5))
    for kwargs in [{}, {"offset": 2}, {"offset": -1, "dim1": 2, "dim2": 0}, {"offset": 9}]:
        compare(lambda x: x.diagonal(**kwargs), lambda x: x.diagonal(**kwargs), x, device=device)
    compare(lambda x, s: gpuad.diagonal_scatter(x, s, 1, 0, 2),
            lambda x, s: torch.diagonal_scatter(x, s, 1, 0, 2), x, _values((4, 3)), grad=(0, 1),
            device=device)
    for n, kwargs in [((2, 3), {}), ((3,), {"offset": -1}), ((2, 3), {"offset": 1, "dim1": 0,
                                                                       "dim2": 2}), ((0,), {})]:
        compare(lambda v: v.diag_embed(**kwargs), lambda v: v.diag_embed(**kwargs), _values(n),
                device=device)
    for n, k in [((3,), 0), ((3,), -2), ((3, 4), 1), ((3, 4), -3), ((0,), 1), ((2, 0), 0)]:
        compare(lambda v: gpuad.diag(v, k), lambda v: torch.diag(v, k), _values(n), device=device)
    for n in [(3, 3), (2, 4), (0, 3)]:
        compare(gpuad.trace, torch.trace, _values(n), device=device)
    compare(gpuad.trace, torch.trace, np.arange(6).reshape(2, 3), grad=())  # int64 stays int64


def test_diagonal_is_a_writable_view_and_diag_a_copy():
    x = gpuad.zeros(3, 3)
    x.diagonal().fill_(1.0)
    x.diagonal(1)[...] = 2.0
    np.testing.assert_array_equal(x.numpy(), np.eye(3) + 2 * np.eye(3, k=1))
    d = x.diag()
    d.fill_(7.0)
    assert float(x.sum()) == 7.0


def test_diagonal_errors():
    x, tx = gpuad.zeros(2, 3), torch.zeros(2, 3)
    raises_like(lambda: x.diagonal(0, 1, 1), lambda: tx.diagonal(0, 1, 1), "diagonal", "(2, 3)")
    raises_like(lambda: x.diagonal(0, 0, 2), lambda: tx.diagonal(0, 0, 2), "diagonal", "(2, 3)")
    raises_like(lambda: gpuad.diag(gpuad.zeros(2, 2, 2)), lambda: torch.diag(torch.zeros(2, 2, 2)),
                "diag", "(2, 2, 2)")
    raises_like(lambda: gpuad.trace(gpuad.zeros(3)), lambda: torch.trace(torch.zeros(3)),
                "trace", "(3,)")
    raises_like(lambda: gpuad.diagonal_scatter(x, gpuad.zeros(3)),
                lambda: torch.diagonal_scatter(tx, torch.zeros(3)), "diagonal_scatter", "(2,)")


# ---- rearranging and splitting -------------------------------------------------------------------
def test_roll_rot90_repeat_interleave(device):
    x = _values((3, 4))
    for args in [(1,), (-6, 1), ((1, -2), (0, 1)), ((1, 1), (1, 1)), (5, 0)]:
        compare(lambda x: x.roll(*args), lambda x: x.roll(*args), x, device=device)
    for args in [(), (2,), (-1,), (3, (1, 0)), (5, (0, -1))]:
        compare(lambda x: x.rot90(*args), lambda x: x.rot90(*args), x, device=device)
    for repeats, dim in [(2, None), (3, 1), (0, 0), (1, 0)]:
        compare(lambda x: x.repeat_interleave(repeats, dim),
                lambda x: x.repeat_interleave(repeats, dim), x, device=device)
    counts = np.array([2, 0, 1])
    compare(lambda x, r: x.repeat_interleave(r, dim=0), lambda x, r: x.repeat_interleave(r, dim=0),
            x, counts, device=device)
    compare(lambda x, r: x.repeat_interleave(r), lambda x, r: x.repeat_interleave(r), x,
            np.array([2]), device=device)
    compare(lambda r: gpuad.repeat_interleave(r), lambda r: torch.repeat_interleave(r), counts,
            grad=(), device=device)
    compare(lambda x: x.roll(2), lambda x: x.roll(2), _values((0, 3)), device=device)
    compare(lambda x: x.rot90(), lambda x: x.rot90(), _values((0, 3)), device=device)


def test_copies_are_copies():
    x = gpuad.zeros(2, 2)
    for y in [x.roll(0, 0), x.rot90(4), x.repeat_interleave(1, 0), gpuad.diag(x)]:
        assert not np.shares_memory(y.numpy(), x.numpy())


def test_views_and_splits(device):
    x = _values((4, 6))
    for args in [(0, 1, 2), (1, -4, 3), (-1, 6, 0), (0, np.int64(0), 4)]:
        compare(lambda x: x.narrow(*args), lambda x: x.narrow(*args), x, device=device)
    compare(lambda x: x.narrow(0, gpuad.tensor(1), 2), lambda x: x.narrow(0, torch.tensor(1), 2),
            x, device=device)
    for args in [(1, (2, 3)), (-1, (-1, 2)), (0, (2, 1, 2))]:
        compare(lambda x: x.unflatten(*args), lambda x: x.unflatten(*args), x, device=device)
    y = _values((2, 3, 4))
    for args in [(0, -1), ((0, 1), (1, 2)), (-1, 0), ((), ())]:
        compare(lambda y: y.movedim(*args), lambda y: y.movedim(*args), y, device=device)
        compare(lambda y: gpuad.moveaxis(y, *args), lambda y: torch.moveaxis(y, *args), y,
                device=device)
    for args in [(3,), ([1, 4],), ([-1, 1, 9],), (4, 1), (np.array(2),), (np.array([1, 3]), 1),
                 (7,)]:
        compare(lambda x, *a: x.tensor_split(*a), lambda x, *a: x.tensor_split(*a), x, *args,
                device=device)
    for dim in [0, 1, -1]:
        compare(lambda x: x.unbind(dim), lambda x: x.unbind(dim), x, device=device)
    assert gpuad.unbind(gpuad.zeros(0, 2)) == ()


def test_views_share_memory():
    x = gpuad.zeros(4, 6)
    for y in [x.narrow(1, 2, 2), x.unflatten(1, (2, 3)), x.movedim(0, 1), *x.tensor_split(2),
              *x.unbind(1), x.view_as(gpuad.zeros(24)), *gpuad.meshgrid(x[0], x[:, 0])]:
        assert np.shares_memory(y.numpy(), x.numpy())


def test_stacks_and_atleast(device):
    shapes = [[(3,), (2,)], [(2, 1), (2, 3)], [(), ()], [(2, 3), (2, 3, 1)]]
    for name in ["hstack", "vstack", "dstack", "column_stack"]:
        for group in shapes:
            arrays = [_values(s) for s in group]
            try:
                getattr(torch, name)([torch.tensor(a) for a in arrays])
            except RuntimeError:
                continue  # shapes this join refuses
            compare(lambda *xs: getattr(gpuad, name)(xs), lambda *xs: getattr(torch, name)(xs),
                    *arrays, grad=(0, 1), device=device)
    for name in ["atleast_1d", "atleast_2d", "atleast_3d"]:
        for shape in [(), (3,), (2, 3), (1, 2, 3)]:
            compare(getattr(gpuad, name), getattr(torch, name), _values(shape), device=device)
        compare(lambda a, b: getattr(gpuad, name)(a, b), lambda a, b: getattr(torch, name)(a, b),
                _values(()), _values((2,)), grad=(0, 1), device=device)
        compare(lambda a, b: getattr(gpuad, name)([a, b]),
                lambda a, b: getattr(torch, name)([a, b]),
                _values(()), _values((2,)), grad=(0, 1), device=device)
    x = gpuad.zeros(3)
    assert gpuad.atleast_1d(x) is x  # as torch returns its input


def test_meshgrid(device):
    for indexing in ["ij", "xy"]:
        compare(lambda a, b, c: gpuad.meshgrid(a, b, c, indexing=indexing),
                lambda a, b, c: torch.meshgrid(a, b, c, indexing=indexing),
                _values((2,)), _values(()), _values((3,)), grad=(0, 1, 2), device=device)
        compare(lambda a, b: gpuad.meshgrid([a, b], indexing=indexing),
                lambda a, b: torch.meshgrid([a, b], indexing=indexing),
                _values((2,)), _values((0,)), grad=(0, 1), device=device)
    compare(lambda a: gpuad.meshgrid(a, indexing="xy"), lambda a: torch.meshgrid(a, indexing="xy"),
            _values((3,)), device=device)


def test_shape_errors():
    x, tx = gpuad.zeros(3, 4), torch.zeros(3, 4)
    cases = [
        (lambda t: t.narrow(0, 4, 1), ["narrow", "start 4", "size 3"]),
        (lambda t: t.narrow(1, 2, 3), ["narrow", "(3, 4)"]),
        (lambda t: t.narrow(2, 0, 1), ["narrow", "dim 2"]),
        (lambda t: t.unflatten(1, (3, 2)), ["unflatten", "(3, 2)", "(3, 4)"]),
        (lambda t: t.movedim((0, 1), (0,)), ["movedim", "(0, 1)", "(0,)"]),
        (lambda t: t.movedim((0, 0), (0, 1)), ["movedim", "(0, 0)"]),
        (lambda t: t.roll((1, 2), 0), ["roll", "(1, 2)"]),
        (lambda t: t.roll((1, 2)), ["roll", "(1, 2)"]),
        (lambda t: t.rot90(1, (0, 0)), ["rot90", "(0, 0)"]),
        (lambda t: t.rot90(1, (0, 1, 1)), ["rot90", "(0, 1, 1)"]),
        (lambda t: t[0].rot90(), ["rot90", "(4,)"]),
        (lambda t: t.repeat_interleave(-1), ["repeat_interleave", "-1"]),
        (lambda t: t.tensor_split(0), ["tensor_split", "0"]),
        (lambda t: t.unbind(2), ["unbind", "dim 2"]),
    ]
    for call, fragments in cases:
        raises_like(lambda: call(x), lambda: call(tx), *fragments)
    raises_like(lambda: x.repeat_interleave(gpuad.tensor([1, 2]), 0),
                lambda: tx.repeat_interleave(torch.tensor([1, 2]), 0),
                "repeat_interleave", "size 3 of dim 0")
    raises_like(lambda: gpuad.meshgrid(x), lambda: torch.meshgrid(tx, indexing="ij"),
                "meshgrid", "(3, 4)")
    raises_like(lambda: gpuad.meshgrid(x[0], x[0], indexing="yx"),
                lambda: torch.meshgrid(tx[0], tx[0], indexing="yx"), "meshgrid", "'yx'")
    raises_like(lambda: gpuad.vstack([]), lambda: torch.vstack([]), "vstack", "non-empty")
    raises_like(lambda: gpuad.unbind(gpuad.tensor(1.0)), lambda: torch.unbind(torch.tensor(1.0)),
                "unbind", "0-d")


# ---- gather-like and scatter-like ops ------------------------------------------------------------
def _index(high, shape, low=0):
    return RNG.integers(low, high, shape)


def test_take_along_dim(device):
    x = _values((3, 4))
    for index, dim in [(_index(4, (3, 2)), 1), (_index(3, (2, 4)), 0), (_index(4, (1, 5)), -1),
                       (_index(12, (5,)), None), (_index(12, (2, 2)), None),
                       (_index(3, (0, 4)), 0)]:
        compare(lambda x, i: gpuad.take_along_dim(x, i, dim),
                lambda x, i: torch.take_along_dim(x, i, dim), x, index, device=device)
    compare(lambda x, i: x.take_along_dim(i, 1), lambda x, i: x.take_along_dim(i, 1),
            _values((2, 1, 3)), _index(1, (1, 4, 3)), device=device)
    raises_like(lambda: gpuad.take_along_dim(gpuad.zeros(3, 4), gpuad.tensor([0]), 1),
                lambda: torch.take_along_dim(torch.zeros(3, 4), torch.tensor([0]), 1),
                "take_along_dim", "(3, 4)", "(1,)")
    int32_index = gpuad.tensor([0], dtype=gpuad.int32)
    raises_like(lambda: gpuad.take_along_dim(gpuad.zeros(3), int32_index, 0),
                lambda: torch.take_along_dim(torch.zeros(3), torch.tensor([0]).int(), 0),
                "take_along_dim", "int32")
    raises_like(lambda: gpuad.take_along_dim(gpuad.zeros(3), gpuad.tensor([3])),
                lambda: torch.take_along_dim(torch.zeros(3), torch.tensor([3])),
                "take_along_dim", "index 3")


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_and_scatter_add(dim, device):
    x, src = _values((3, 4)), _values((3, 4))
    distinct = np.argsort(RNG.random((3, 4)), axis=dim)[:2] if dim == 0 else np.argsort(
        RNG.random((3, 4)), axis=dim)[:, :3]
    compare(lambda x, i, s: x.scatter(dim, i, s), lambda x, i, s: x.scatter(dim, i, s),
            x, distinct, src, grad=(0,), device=device)  # torch has no gradient for a larger src
    compare(lambda x, i, s: x.scatter(dim, i, s), lambda x, i, s: x.scatter(dim, i, s),
            x, distinct, _values(distinct.shape), grad=(0, 2), device=device)
    compare(lambda x, i: x.scatter(dim, i, -1.5), lambda x, i: x.scatter(dim, i, -1.5),
            x, distinct, device=device)
    compare(lambda x, i: gpuad.scatter(x, dim, i, value=2.0),
            lambda x, i: torch.scatter(x, dim, i, value=2.0), x, distinct, device=device)
    repeats = _index(x.shape[dim], (5, 2) if dim == 0 else (2, 5))
    compare(lambda x, i, s: x.scatter_add(dim, i, s), lambda x, i, s: x.scatter_add(dim, i, s),
            x, repeats, _values(repeats.shape), grad=(0, 2), device=device)
    compare(lambda x, i, s: x.scatter_add(dim, i, s), lambda x, i, s: x.scatter_add(dim, i, s),
            x, repeats, _values((5, 4) if dim == 0 else (3, 5)), device=device)
    empty = np.zeros((0, 4), dtype=np.int64)
    compare(lambda x, i, s: x.scatter_add(0, i, s), lambda x, i, s: x.scatter_add(0, i, s),
            x, empty, src, device=device)
    compare(lambda x, i, s: x.scatter(dim, i, s), lambda x, i, s: x.scatter(dim, i, s),
            x, distinct.astype(np.int32), _values(distinct.shape), grad=(0, 2), device=device)


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")
def test_scatter_with_reduce_has_no_gradient_as_in_torch():
    x, i, s = _values((3, 4)), _index(3, (2, 4)), _values((2, 4))
    for reduce in ["add", "multiply"]:
        compare(lambda x, i, s: x.scatter(0, i, s, reduce=reduce),
                lambda x, i, s: x.scatter(0, i, s, reduce=reduce), x, i, s, grad=())
    raises_like(lambda: gpuad.tensor(x, requires_grad=True).scatter(
        0, gpuad.tensor(i), gpuad.tensor(s), reduce="add").sum().backward(),
        lambda: torch.tensor(x, requires_grad=True).scatter(
            0, torch.tensor(i), torch.tensor(s), reduce="add").sum().backward(), "scatter")


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce(reduce, include_self, device):
    x, src = _values((3, 4)), _values((5, 4))
    index = _index(3, (5, 4))
    index[:, 3] = 1  # one column with untouched rows
    compare(lambda x, i, s: x.scatter_reduce(0, i, s, reduce, include_self=include_self),
            lambda x, i, s: x.scatter_reduce(0, i, s, reduce, include_self=include_self),
            x, index, src, grad=(0, 2), device=device)


def test_scatter_reduce_ties_zeros_and_integers():
    """amax/amin share the gradient among ties (self's entry too, as in torch, even when
    include_self=False); prod's gradient is exact with one zero, and zero with two."""
    x = np.array([[1.0, 2.0, 0.0, 3.0]])
    src = np.array([[1.0, 5.0, 0.0, 0.0], [1.0, 5.0, 2.0, 0.0], [0.5, 1.0, 4.0, 3.0]])
    index = np.zeros((3, 4), dtype=np.int64)
    for reduce in ["amax", "amin", "prod", "sum", "mean"]:
        for include_self in [True, False]:
            compare(lambda x, i, s: x.scatter_reduce(0, i, s, reduce, include_self=include_self),
                    lambda x, i, s: x.scatter_reduce(0, i, s, reduce, include_self=include_self),
                    x, index, src, grad=(0, 2))
    ints, int_src = np.array([[0, 1, 2]]), np.array([[1, 2, 4], [-3, 0, 5]])
    for reduce in ["sum", "prod", "mean", "amax", "amin"]:
        for include_self in [True, False]:
            compare(lambda x, i, s: x.scatter_reduce(0, i, s, reduce, include_self=include_self),
                    lambda x, i, s: x.scatter_reduce(0, i, s, reduce, include_self=include_self),
                    ints, np.zeros((2, 3), dtype=np.int64), int_src, grad=())


def test_scatter_errors():
    x, tx = gpuad.zeros(3, 4), torch.zeros(3, 4)
    i, ti = gpuad.tensor([[0, 1]]), torch.tensor([[0, 1]])
    s, ts = gpuad.ones(3, 4), torch.ones(3, 4)
    cases = [
        (lambda m, x, i, s: x.scatter(0, m.tensor([[3]]), s), ["scatter", "index 3", "size 3"]),
        (lambda m, x, i, s: x.scatter(0, m.tensor([0]), s), ["scatter", "(1,)", "(3, 4)"]),
        (lambda m, x, i, s: x.scatter(1, m.tensor([[0]] * 4), s), ["scatter", "(4, 1)"]),
        (lambda m, x, i, s: x.scatter(0, i.float(), s), ["scatter", "float32"]),
        (lambda m, x, i, s: x.scatter(0, i, s.double()), ["scatter", "float64"]),
        (lambda m, x, i, s: x.scatter_add(0, i, s[:, :1]), ["scatter_add", "(3, 1)"]),
        (lambda m, x, i, s: x.scatter_reduce(0, i, s, "foo"), ["scatter_reduce", "'foo'"]),
        (lambda m, x, i, s: x.scatter_reduce(0, m.tensor([[-1]]), s, "sum"),
         ["scatter_reduce", "index -1"]),
        (lambda m, x, i, s: x.scatter(2, i, s), ["scatter", "dim 2"]),
    ]
    for call, fragments in cases:
        raises_like(lambda: call(gpuad, x, i, s), lambda: call(torch, tx, ti, ts), *fragments)


# ---- index_* ops ---------------------------------------------------------------------------------
def test_index_add_copy_fill_put(device):
    x = _values((4, 3))
    for dim, index, alpha in [(0, np.array([0, 2, 0, 3]), 1), (1, np.array([2, 2]), -0.5),
                              (-1, np.array([], dtype=np.int64), 2.0), (0, np.array(3), 1)]:
        source_shape = list(x.shape)
        source_shape[dim] = index.size
        source = _values(tuple(source_shape))
        compare(lambda x, i, s: x.index_add(dim, i, s, alpha=alpha),
                lambda x, i, s: x.index_add(dim, i, s, alpha=alpha), x, index, source,
                grad=(0, 2), device=device)
    compare(lambda x, i, s: x.index_copy(1, i, s), lambda x, i, s: x.index_copy(1, i, s),
            x, np.array([2, 0]), _values((4, 2)), grad=(0, 2), device=device)
    for value in [1.5, -2]:  # torch's gradient of a negative index_fill index fails: no grad
        compare(lambda x, i: x.index_fill(1, i, value), lambda x, i: x.index_fill(1, i, value),
                x, np.array([0, 0, -1]), grad=(), device=device)
    compare(lambda x, i, v: x.index_fill(1, i, v), lambda x, i, v: x.index_fill(1, i, v),
            x, np.array([0, 2]), np.array(0.25), grad=(0, 2), device=device)
    compare(lambda x, i: x.index_fill(0, i, 7), lambda x, i: x.index_fill(0, i, 7),
            np.arange(12).reshape(4, 3), np.array([1]), grad=(), device=device)
    for accumulate in [False, True]:
        index = (np.array([0, 3, 3]), np.array([1, 2, 2])) if accumulate else (
            np.array([0, 3]), np.array([1, 2]))
        compare(lambda x, v, i: x.index_put(i, v, accumulate),
                lambda x, v, i: x.index_put(i, v, accumulate), x,
                _values(len(index[0])), index, grad=(0, 1), device=device)
        compare(lambda x, v, i: gpuad.index_put(x, i, v, accumulate=accumulate),
                lambda x, v, i: torch.index_put(x, i, v, accumulate=accumulate), x,
                _values((1, 3)), (np.array([1, 1, 0]),), grad=(0, 1), device=device)
    mask = np.array([True, False, True, True])
    compare(lambda x, v, m: x.index_put(m, v), lambda x, v, m: x.index_put(m, v), x,
            _values((3,)), (mask,), grad=(0, 1), device=device)


def test_index_fill_value_gradient_counts_each_entry_once():
    compare(lambda x, v: x.index_fill(1, gpuad.tensor([1, 1, 2]), v),
            lambda x, v: x.index_fill(1, torch.tensor([1, 1, 2]), v),
            _values((3, 4)), _values(()), grad=(0, 1))


def test_index_errors():
    x, tx = gpuad.zeros(3, 4), torch.zeros(3, 4)
    cases = [
        (lambda m, x: x.index_add(0, m.tensor([3]), m.ones(1, 4)), ["index_add", "index 3"]),
        (lambda m, x: x.index_add(0, m.tensor([0]), m.ones(2, 4)), ["index_add", "(2, 4)"]),
        (lambda m, x: x.index_add(0, m.tensor([0]), m.ones(1, 4).double()),
         ["index_add", "float64"]),
        (lambda m, x: x.index_copy(1, m.tensor([[0]]), m.ones(3, 1)), ["index_copy", "(1, 1)"]),
        (lambda m, x: x.index_copy(2, m.tensor([0]), m.ones(3, 1)), ["index_copy", "dim 2"]),
        (lambda m, x: x.index_fill(1, m.tensor([4]), 0.0), ["index_fill", "index 4"]),
        (lambda m, x: x.index_fill(1, m.tensor([0.0]), 0.0), ["index_fill", "float"]),
        (lambda m, x: x.index_fill(1, m.tensor([0]), m.ones(2)), ["index_fill", "(2,)"]),
        (lambda m, x: x.index_put((m.tensor([5]),), m.tensor(1.0)), ["index_put", "index 5"]),
        (lambda m, x: x.index_put((m.tensor([0]),), m.tensor(1.0).double()),
         ["index_put", "float64"]),
        (lambda m, x: x.index_put((m.tensor([True]),), m.tensor(1.0)), ["index_put", "(1,)"]),
    ]
    for call, fragments in cases:
        raises_like(lambda: call(gpuad, x), lambda: call(torch, tx), *fragments)


def test_in_place_forms_record_like_torch():
    def run(make, x, v, s):
        y = x * 1
        y.index_add_(0, make.tensor([0, 2, 0]), s)
        y.scatter_(1, make.tensor([[1], [0], [2]]), s[:, :1])
        y.scatter_add_(0, make.tensor([[1, 1, 0]]), s[:1])
        y.index_copy_(1, make.tensor([2]), s[:, :1])
        y.index_fill_(0, make.tensor([1]), v)
        y.index_put_((make.tensor([0]), make.tensor([0])), v * 2, accumulate=True)
        y.masked_scatter_(y > 0.5, s)
        y.index_add_(1, make.tensor([0]), s[:, 1:2], alpha=2)
        return y.scatter_reduce_(0, make.tensor([[2, 0, 2]]), s[1:2], "amax")  # torch: saves y
    compare(lambda x, v, s: run(gpuad, x, v, s), lambda x, v, s: run(torch, x, v, s),
            _values((3, 3)), _values(()), _values((3, 3)), grad=(0, 1, 2))
    leaf = gpuad.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="index_add_: a leaf tensor that requires grad"):
        leaf.index_add_(0, gpuad.tensor([0]), gpuad.ones(1))
    buffer = gpuad.zeros(3)
    buffer.index_fill_(0, gpuad.tensor([1]), 2.0)  # no grad anywhere: a plain in-place write
    assert buffer.is_leaf and buffer.tolist() == [0.0, 2.0, 0.0]


# ---- masks and nonzero ---------------------------------------------------------------------------
def test_masked_select_and_scatter(device):
    x = _values((3, 4))
    for mask in [RNG.random((3, 4)) > 0.5, np.array([True, False, False, True]),
                 np.zeros((3, 4), dtype=bool), RNG.random((2, 3, 4)) > 0.5]:
        compare(lambda x, m: x.masked_select(m), lambda x, m: x.masked_select(m), x, mask,
                device=device)
        compare(lambda x, m, s: x.masked_scatter(m, s), lambda x, m, s: x.masked_scatter(m, s),
                x, mask, _values((5, 6)), grad=(0, 2), device=device)
    compare(lambda x, m: gpuad.masked_select(x, m), lambda x, m: torch.masked_select(x, m),
            _values((0, 4)), np.ones(4, dtype=bool), device=device)
    raises_like(lambda: gpuad.zeros(3).masked_select(gpuad.tensor([1, 0, 1])),
                lambda: torch.zeros(3).masked_select(torch.tensor([1, 0, 1])),
                "masked_select", "int64")
    raises_like(lambda: gpuad.zeros(3).masked_scatter(gpuad.ones(3) > 0, gpuad.ones(2)),
                lambda: torch.zeros(3).masked_scatter(torch.ones(3) > 0, torch.ones(2)),
                "masked_scatter", "(2,)")
    raises_like(lambda: gpuad.zeros(3).masked_select(gpuad.ones(2) > 0),
                lambda: torch.zeros(3).masked_select(torch.ones(2) > 0),
                "masked_select", "(2,)", "(3,)")


def test_nonzero_argwhere_where(device):
    for array in [np.array([[0, 1.5, 0], [2, 0, -1]]), np.array([0.0, 0.0]), np.zeros((0, 3)),
                  np.array(3.0), np.array(0.0), np.array([[True, False]])]:
        compare(gpuad.nonzero, torch.nonzero, array, grad=(), device=device)
        compare(gpuad.argwhere, torch.argwhere, array, grad=(), device=device)
        compare(lambda a: a.nonzero(as_tuple=True), lambda a: a.nonzero(as_tuple=True), array,
                grad=(), device=device)
        compare(lambda a: gpuad.where(a), lambda a: torch.where(a), array, grad=(), device=device)
    with pytest.raises(TypeError, match="where: give both input and other"):
        gpuad.where(gpuad.ones(2) > 0, gpuad.ones(2))


def test_tril_triu_indices():
    for args in [(3, 3), (3, 4, 1), (4, 3, -1), (0, 3), (2, 5, -4), (3, 3, 9)]:
        for name in ["tril_indices", "triu_indices"]:
            ours, theirs = getattr(gpuad, name)(*args), getattr(torch, name)(*args)
            assert ours.dtype == gpuad.int64 and ours.tolist() == theirs.tolist(), (name, args)
    assert gpuad.tril_indices(2, 2, device="strict").device == gpuad.device("strict")
    assert gpuad.triu_indices(2, 2, dtype=gpuad.int32).dtype == gpuad.int32


# ---- creation helpers, Tensor.new_*, constants ---------------------------------------------------
def test_new_tensors_take_the_dtype_and_device_of_their_tensor(device):
    x = gpuad.ones(2, dtype=gpuad.float64, device=device)
    tx = torch.ones(2, dtype=torch.float64)
    for name, args in [("new_zeros", (2, 3)), ("new_ones", ((3,),)), ("new_full", ((2,), 1.5)),
                       ("new_tensor", ([1, 2],)), ("new_empty", (0, 2))]:
        ours, theirs = getattr(x, name)(*args), getattr(tx, name)(*args)
        assert ours.shape == tuple(theirs.shape) and str(theirs.dtype) == f"torch.{ours.dtype}"
        assert ours.device == gpuad.device(device) and not ours.requires_grad
        if name != "new_empty":
            np.testing.assert_array_equal(ours.numpy(force=True), theirs.numpy())
    y = x.new_zeros(3, dtype=gpuad.int32, requires_grad=False)
    assert y.dtype == gpuad.int32
    assert x.new_ones(2, requires_grad=True).requires_grad
    z = _values((2, 3))
    compare(lambda z: z.view_as(gpuad.zeros(3, 2)), lambda z: z.view_as(torch.zeros(3, 2)), z,
            device=device)
    compare(lambda z: z.reshape_as(gpuad.zeros(6)), lambda z: z.reshape_as(torch.zeros(6)), z,
            device=device)


def test_as_tensor_and_is_tensor():
    array = np.arange(3.0)
    shared = gpuad.as_tensor(array)
    array[0] = 7.0  # shares memory with a numpy array of its dtype, like torch.as_tensor
    assert shared.dtype == gpuad.float64 and shared.tolist() == [7.0, 1.0, 2.0]
    assert gpuad.as_tensor(shared) is shared
    assert gpuad.as_tensor(array, dtype=gpuad.float32).dtype == gpuad.float32
    for data in [[1, 2], [1.0, 2.0], 3, [True]]:
        assert str(torch.as_tensor(data).dtype) == f"torch.{gpuad.as_tensor(data).dtype}"
    assert gpuad.as_tensor([1, 2], device="strict").device == gpuad.device("strict")
    assert gpuad.is_tensor(shared) and not gpuad.is_tensor(array) and not gpuad.is_tensor(1.0)


def test_constants():
    for name in ["pi", "e", "inf", "nan"]:
        ours, theirs = getattr(gpuad, name), getattr(torch, name)
        assert ours == theirs or (np.isnan(ours) and np.isnan(theirs))


# ---- the names exist where torch has them --------------------------------------------------------
NAMES = ("diag diagonal diagonal_scatter diag_embed trace roll rot90 repeat_interleave unflatten "
         "movedim moveaxis narrow meshgrid take_along_dim scatter scatter_add scatter_reduce "
         "index_add index_copy index_fill index_put masked_select masked_scatter nonzero argwhere "
         "where tril_indices triu_indices tensor_split unbind hstack vstack dstack column_stack "
         "atleast_1d atleast_2d atleast_3d view_as reshape_as new_zeros new_ones new_full "
         "new_tensor new_empty is_tensor as_tensor").split()


@pytest.mark.parametrize("name", NAMES)
def test_torch_names_exist(name):
    if hasattr(torch, name):
        assert callable(getattr(gpuad, name)), name
    for suffix in ["", "_"]:
        if hasattr(torch.Tensor, name + suffix):
            assert hasattr(gpuad.Tensor, name + suffix), name + suffix


def test_error_messages_name_the_op_and_shapes():
    with pytest.raises(IndexError, match=re.escape("__setitem__: index 3 is out of range for dim 0 "
                                                   "with size 3 (tensor shape (3,))")):
        gpuad.zeros(3)[3] = 1.0
