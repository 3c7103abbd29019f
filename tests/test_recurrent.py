"""gpuad.nn recurrent layers (RNN, LSTM, GRU) and cells: gate formulas against numpy references,
float64 gradchecks (first and second order), PyTorch twins with copied weights (skipped without
torch), parameter names and initialisation, long unrolls, shape errors and devices."""
import importlib
import warnings

import numpy as np
import pytest

import gpuad
from gpuad import backend, nn

LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
CELLS = {"RNNCell": nn.RNNCell, "LSTMCell": nn.LSTMCell, "GRUCell": nn.GRUCell}
F64 = {"dtype": gpuad.float64}


def _arr(t):
    return backend.asnumpy(t.detach().array)


def _randn(*shape, requires_grad=False, device="cpu", dtype=np.float64, seed=None):
    rng = np.random.default_rng(seed if seed is not None else sum(shape) + len(shape))
    return gpuad.tensor(rng.standard_normal(shape).astype(dtype), device=device,
                        requires_grad=requires_grad)


def _states(mode, shape, seed=1, requires_grad=True):
    """h0, or (h0, c0) for an LSTM, as gpuad tensors of `shape`."""
    h = _randn(*shape, requires_grad=requires_grad, seed=seed)
    if mode.startswith("LSTM"):
        return h, _randn(*shape, requires_grad=requires_grad, seed=seed + 1)
    return h


def _flat(out):
    """A forward's result as a flat list of tensors: (output, h_n) or (output, (h_n, c_n))."""
    flat = []
    for o in (out if isinstance(out, tuple) else (out,)):
        flat.extend(_flat(o) if isinstance(o, tuple) else [o])
    return flat


# ---- numpy references: one step of each cell, in torch's documented formulas ---------------
def _sig(v):
    return 1 / (1 + np.exp(-v))


def _numpy_step(mode, x, state, w_ih, w_hh, b_ih, b_hh):
    gi, gh = x @ w_ih.T + b_ih, state[0] @ w_hh.T + b_hh
    if mode in ("RNN", "RNN_relu"):
        pre = gi + gh
        return (np.tanh(pre) if mode == "RNN" else np.maximum(pre, 0),)
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sig(f) * state[1] + _sig(i) * np.tanh(g)
        return _sig(o) * np.tanh(c), c
    r_i, z_i, n_i = np.split(gi, 3, axis=-1)
    r_h, z_h, n_h = np.split(gh, 3, axis=-1)
    r, z = _sig(r_i + r_h), _sig(z_i + z_h)
    n = np.tanh(n_i + r * n_h)
    return ((1 - z) * n + z * state[0],)


def _cell_weights(cell):
    return [_arr(p) for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]


@pytest.mark.parametrize("mode", ["RNN", "RNN_relu", "LSTM", "GRU"])
def test_cells_follow_torchs_gate_formulas(mode):
    cell = (nn.RNNCell(3, 4, nonlinearity="relu", **F64) if mode == "RNN_relu" else
            CELLS[mode + "Cell"](3, 4, **F64))
    x, h, c = _randn(5, 3), _randn(5, 4, seed=2), _randn(5, 4, seed=3)
    state = (h, c) if mode == "LSTM" else (h,)
    out = cell(x, state if mode == "LSTM" else h)
    expected = _numpy_step(mode, _arr(x), [_arr(s) for s in state], *_cell_weights(cell))
    for got, want in zip(_flat(out), expected):
        np.testing.assert_allclose(_arr(got), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_layer_is_the_cell_step_stacked_over_time_and_layers(mode):
    """A 2-layer layer equals its numpy cell steps run by hand: the input projection over all
    steps, layer by layer, and final states stacked (num_layers, N, H)."""
    net = LAYERS[mode](3, 4, num_layers=2, **F64)
    x = _randn(6, 2, 3)
    h0 = _states(mode, (2, 2, 4), requires_grad=False)
    out = _flat(net(x, h0))
    h0 = [_arr(s) for s in (h0 if mode == "LSTM" else (h0,))]
    seq, finals = _arr(x), []
    for layer in range(2):
        weights = [_arr(getattr(net, f"{k}_l{layer}"))
                   for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        state, outputs = tuple(s[layer] for s in h0), []
        for t in range(seq.shape[0]):
            state = _numpy_step(mode, seq[t], state, *weights)
            outputs.append(state[0])
        seq = np.stack(outputs)
        finals.append(state)
    np.testing.assert_allclose(_arr(out[0]), seq, rtol=1e-12, atol=1e-12)
    for k, got in enumerate(out[1:]):
        np.testing.assert_allclose(_arr(got), np.stack([f[k] for f in finals]), rtol=1e-12,
                                   atol=1e-12)


# ---- gradcheck: every input, every initial state, every parameter, in float64 ---------------
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("mode", ["RNN", "RNN_relu", "LSTM", "GRU"])
def test_cells_gradcheck(mode, batched):
    cell = (nn.RNNCell(3, 2, nonlinearity="relu", **F64) if mode == "RNN_relu" else
            CELLS[mode + "Cell"](3, 2, **F64))
    shape = (4,) if batched else ()
    x = _randn(*shape, 3, requires_grad=True)
    hx = _states(mode, shape + (2,), seed=5)
    states = list(hx) if isinstance(hx, tuple) else [hx]

    def fn(x, *rest):
        states = rest[:len(rest) - 4]
        return _flat(cell(x, tuple(states) if mode == "LSTM" else states[0]))
    assert gpuad.gradcheck(fn, [x, *states, *cell.parameters()])


LAYER_CASES = [(mode, batch_first, False) for mode in LAYERS for batch_first in (False, True)] + [
    (mode, True, True) for mode in LAYERS]


@pytest.mark.parametrize("mode,batch_first,bidirectional", LAYER_CASES)
def test_layers_gradcheck_two_layers_with_initial_states(mode, batch_first, bidirectional):
    net = LAYERS[mode](3, 2, num_layers=2, batch_first=batch_first, bidirectional=bidirectional,
                       **F64)
    x = _randn(*((2, 3) if batch_first else (3, 2)), 3, requires_grad=True)
    hx = _states(mode, (4 if bidirectional else 2, 2, 2), seed=7)
    states = list(hx) if isinstance(hx, tuple) else [hx]
    n_states = len(states)

    def fn(x, *rest):
        states = rest[:n_states]
        return _flat(net(x, tuple(states) if mode == "LSTM" else states[0]))
    assert gpuad.gradcheck(fn, [x, *states, *net.parameters()])


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_layers_gradcheck_without_bias_and_unbatched(mode):
    net = LAYERS[mode](2, 3, bias=False, **F64)
    assert [name for name, _ in net.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    x = _randn(4, 2, requires_grad=True)
    assert gpuad.gradcheck(lambda x, *params: _flat(net(x)), [x, *net.parameters()])


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_second_order_gradients(mode):
    """The gradient w.r.t. the input, taken with create_graph, gradchecks again: every op in a
    step differentiates twice."""
    net = LAYERS[mode](2, 2, **F64)
    w_hh = net.weight_hh_l0

    def input_grad(x, w):
        out = _flat(net(x))
        loss = (out[0] ** 2).sum() + out[-1].sum()
        return gpuad.grad(loss, x, create_graph=True)[0]
    assert gpuad.gradcheck(input_grad, [_randn(3, 1, 2, requires_grad=True), w_hh])


# ---- PyTorch twins ------------------------------------------------------------------------------
def _torch_twin(torch, ours):
    """torch's module of the same kind and settings, carrying our weights."""
    kind = type(ours).__name__
    if kind.endswith("Cell"):
        args = {"bias": ours.bias}
        if kind == "RNNCell":
            args["nonlinearity"] = ours.nonlinearity
    else:
        args = {"num_layers": ours.num_layers, "bias": ours.bias, "batch_first": ours.batch_first,
                "dropout": ours.dropout, "bidirectional": ours.bidirectional}
        if kind == "RNN":
            args["nonlinearity"] = ours.nonlinearity
    theirs = getattr(torch.nn, kind)(ours.input_size, ours.hidden_size, **args)
    theirs = theirs.to(getattr(torch, str(next(ours.parameters()).dtype)))
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(_arr(getattr(ours, name)).copy()))
    return theirs


def _compare_twins(torch, ours, x_np, hx_np, dtype):
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    theirs = _torch_twin(torch, ours)
    lstm = type(ours).__name__.startswith("LSTM")
    x, tx = gpuad.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    hx = [gpuad.tensor(h, requires_grad=True) for h in hx_np]
    thx = [torch.tensor(h, requires_grad=True) for h in hx_np]
    pack = (lambda s: tuple(s) if lstm else s[0]) if hx_np else (lambda s: None)
    outs, touts = _flat(ours(x, pack(hx))), _flat(theirs(tx, pack(thx)))
    assert len(outs) == len(touts)
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal(o.shape).astype(dtype) for o in outs]
    for o, to in zip(outs, touts):
        assert tuple(o.shape) == tuple(to.shape) and str(o.dtype) == str(to.dtype)[6:]
        np.testing.assert_allclose(_arr(o), to.detach().numpy(), **tol)
    sum((o * gpuad.tensor(w)).sum() for o, w in zip(outs, weights)).backward()
    sum((to * torch.from_numpy(w)).sum() for to, w in zip(touts, weights)).backward()
    np.testing.assert_allclose(_arr(x.grad), tx.grad.numpy(), **tol)
    for h, th in zip(hx, thx):
        np.testing.assert_allclose(_arr(h.grad), th.grad.numpy(), **tol)
    for name, tp in theirs.named_parameters():
        np.testing.assert_allclose(_arr(getattr(ours, name).grad), tp.grad.numpy(), err_msg=name,
                                   **tol)


TWIN_CASES = [
    ("RNN", {}), ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
    ("RNN", {"num_layers": 2, "batch_first": True}), ("LSTM", {}), ("LSTM", {"num_layers": 2}),
    ("LSTM", {"num_layers": 2, "batch_first": True}), ("LSTM", {"bias": False}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("GRU", {}), ("GRU", {"num_layers": 2}), ("GRU", {"num_layers": 2, "batch_first": True}),
    ("GRU", {"bidirectional": True}), ("GRU", {"bias": False}),
    ("RNN", {"bidirectional": True, "num_layers": 2}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_states", [True, False])
@pytest.mark.parametrize("mode,kwargs", TWIN_CASES)
def test_layers_match_torch(mode, kwargs, with_states, dtype):
    torch = pytest.importorskip("torch")
    ours = LAYERS[mode](3, 4, **kwargs).to(dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3) if kwargs.get("batch_first") else (5, 2, 3)).astype(dtype)
    count = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    hx = [rng.standard_normal((count, 2, 4)).astype(dtype)
          for _ in range(2 if mode == "LSTM" else 1)] if with_states else []
    _compare_twins(torch, ours, x, hx, dtype)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_unbatched_layers_match_torch(mode):
    torch = pytest.importorskip("torch")
    ours = LAYERS[mode](3, 4, num_layers=2, batch_first=True, **F64)
    rng = np.random.default_rng(1)
    hx = [rng.standard_normal((2, 4)) for _ in range(2 if mode == "LSTM" else 1)]
    _compare_twins(torch, ours, rng.standard_normal((5, 3)), hx, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("name", ["RNNCell", "RNNCell_relu", "LSTMCell", "GRUCell"])
def test_cells_match_torch(name, batched, dtype):
    torch = pytest.importorskip("torch")
    ours = (nn.RNNCell(3, 4, nonlinearity="relu") if name == "RNNCell_relu" else
            CELLS[name](3, 4)).to(dtype)
    rng = np.random.default_rng(2)
    lead = (5,) if batched else ()
    hx = [rng.standard_normal(lead + (4,)).astype(dtype)
          for _ in range(2 if name == "LSTMCell" else 1)]
    _compare_twins(torch, ours, rng.standard_normal(lead + (3,)).astype(dtype), hx, dtype)


# ---- parameters: names, shapes, order, initialisation --------------------------------------
def test_parameter_names_and_shapes_are_torchs():
    net = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    expected = []
    for layer, width in ((0, 3), (1, 8)):
        for suffix in ("", "_reverse"):
            expected += [(f"weight_ih_l{layer}{suffix}", (16, width)),
                         (f"weight_hh_l{layer}{suffix}", (16, 4)),
                         (f"bias_ih_l{layer}{suffix}", (16,)), (f"bias_hh_l{layer}{suffix}", (16,))]
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == expected
    assert [(k, tuple(v.shape)) for k, v in nn.GRUCell(3, 5).state_dict().items()] == [
        ("weight_ih", (15, 3)), ("weight_hh", (15, 5)), ("bias_ih", (15,)), ("bias_hh", (15,))]


@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 3, "bidirectional": True},
                                    {"bias": False, "num_layers": 2}])
def test_state_dict_keys_and_shapes_equal_torchs(kwargs):
    torch = pytest.importorskip("torch")
    for kind in ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"):
        args = kwargs if not kind.endswith("Cell") else {k: v for k, v in kwargs.items()
                                                          if k == "bias"}
        ours, theirs = getattr(nn, kind)(3, 5, **args), getattr(torch.nn, kind)(3, 5, **args)
        assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
            (k, tuple(v.shape)) for k, v in theirs.state_dict().items()], kind
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_init_is_uniform_within_one_over_sqrt_hidden(kind):
    net = getattr(nn, kind)(10, 16)
    bound = 1 / np.sqrt(16)
    values = np.concatenate([_arr(p).ravel() for p in net.parameters()])
    assert values.dtype == np.float32 and np.abs(values).max() <= bound
    assert values.min() < -0.8 * bound and values.max() > 0.8 * bound  # spread over the range
    assert abs(values.mean()) < 0.02


def test_repr_like_torch():
    assert repr(nn.LSTM(3, 4, num_layers=2, batch_first=True, dropout=0.5)) == \
        "LSTM(3, 4, num_layers=2, batch_first=True, dropout=0.5)"
    assert repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity='relu')"


# ---- behaviour: layouts, unbatched input, states, dropout -----------------------------------
@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_batch_first_and_unbatched_agree_with_the_time_major_layout(mode):
    net = LAYERS[mode](3, 4, num_layers=2, bidirectional=True, **F64)
    first = LAYERS[mode](3, 4, num_layers=2, bidirectional=True, batch_first=True, **F64)
    first.load_state_dict(net.state_dict())
    x = _randn(5, 2, 3)
    out, first_out = _flat(net(x)), _flat(first(x.transpose(0, 1)))
    assert tuple(out[0].shape) == (5, 2, 8) and tuple(first_out[0].shape) == (2, 5, 8)
    np.testing.assert_allclose(_arr(first_out[0]), _arr(out[0]).transpose(1, 0, 2), rtol=1e-14)
    for s, fs in zip(out[1:], first_out[1:]):  # states are (layers * directions, N, H) either way
        assert tuple(s.shape) == tuple(fs.shape) == (4, 2, 4)
        np.testing.assert_allclose(_arr(fs), _arr(s), rtol=1e-14)
    single = _flat(first(x[:, 0]))  # unbatched (L, H_in), whatever batch_first says
    assert tuple(single[0].shape) == (5, 8) and all(tuple(s.shape) == (4, 4) for s in single[1:])
    np.testing.assert_allclose(_arr(single[0]), _arr(out[0])[:, 0], rtol=1e-13)
    for got, want in zip(single[1:], out[1:]):
        np.testing.assert_allclose(_arr(got), _arr(want)[:, 0], rtol=1e-13)


def test_final_states_continue_a_sequence():
    """Running a sequence in two halves, passing the final states on, gives the same outputs."""
    net = nn.LSTM(3, 4, num_layers=2, **F64)
    x = _randn(6, 2, 3)
    whole, (h, c) = net(x)
    first, state = net(x[:3])
    second, (h2, c2) = net(x[3:], state)
    np.testing.assert_allclose(_arr(gpuad.cat([first, second])), _arr(whole), rtol=1e-13)
    np.testing.assert_allclose(_arr(h2), _arr(h), rtol=1e-13)
    np.testing.assert_allclose(_arr(c2), _arr(c), rtol=1e-13)


def test_dropout_between_layers_only_while_training():
    net = nn.GRU(3, 4, num_layers=2, dropout=0.5, **F64)
    plain = nn.GRU(3, 4, num_layers=2, **F64)
    plain.load_state_dict(net.state_dict())
    x = _randn(5, 2, 3)
    trained = _arr(net(x)[0])
    assert not np.allclose(trained, _arr(plain(x)[0]))
    net.eval()
    np.testing.assert_allclose(_arr(net(x)[0]), _arr(plain(x)[0]), rtol=1e-14)
    one = nn.GRU(3, 4, num_layers=1, **F64)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        dropped = nn.GRU(3, 4, num_layers=1, dropout=0.5, **F64)
    dropped.load_state_dict(one.state_dict())  # one layer: nothing between layers to drop
    np.testing.assert_allclose(_arr(dropped(x)[0]), _arr(one(x)[0]), rtol=1e-14)


def test_cells_default_to_zero_states():
    cell = nn.LSTMCell(3, 4)
    x = _randn(2, 3, dtype=np.float32)
    h, c = cell(x)
    h0, c0 = cell(x, (gpuad.zeros(2, 4), gpuad.zeros(2, 4)))
    np.testing.assert_array_equal(_arr(h), _arr(h0))
    np.testing.assert_array_equal(_arr(c), _arr(c0))
    assert h.dtype == gpuad.float32


# ---- long sequences -----------------------------------------------------------------------
def _reachable_nodes(*outputs):
    stack, seen = [t for t in outputs if t._node is not None], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.extend(x for x in t._node.inputs if getattr(x, "_node", None) is not None)
    return len(seen)


def test_backward_through_a_1000_step_lstm_is_linear(monkeypatch):
    """1,000 steps (about 20,000 recorded ops, far past Python's recursion limit) backward without
    recursion, with finite gradients equal to those of the same sequence run as four 250-step
    chunks passing the state on. Linear, measured without a clock: the graph holds 4x the ops of
    one chunk, and the gradients of the per-step slices of the input projection (the part that
    would be quadratic if each step were sliced straight off the whole sequence) add up to
    O(L log L) elements, not O(L^2)."""
    shape_ops = importlib.import_module("gpuad.ops.shape")
    embedded = [0]
    embed = shape_ops._embed

    def counting_embed(src, **kwargs):
        embedded[0] += int(np.prod(kwargs["shape"]))
        return embed(src, **kwargs)
    monkeypatch.setattr(shape_ops, "_embed", counting_embed)

    net = nn.LSTM(3, 4, **F64)
    x_np = np.random.default_rng(0).standard_normal((1000, 2, 3))
    weights = np.random.default_rng(1).standard_normal((1000, 2, 4))

    def run(chunk):
        x = gpuad.tensor(x_np, requires_grad=True)
        state, outs = None, []
        for start in range(0, 1000, chunk):
            out, state = net(x[start:start + chunk], state)
            outs.append(out)
        loss = (gpuad.cat(outs) * gpuad.tensor(weights)).sum() + state[1].sum()
        nodes = _reachable_nodes(loss)
        net.zero_grad()
        embedded[0] = 0
        loss.backward()
        grads = [_arr(x.grad)] + [_arr(p.grad) for p in net.parameters()]
        return nodes, embedded[0], grads

    nodes, elements, grads = run(1000)
    chunk_nodes, chunk_elements, chunk_grads = run(250)
    assert nodes > 10_000
    assert abs(nodes - chunk_nodes) < 0.01 * nodes  # the same ops, cut in four
    for g, cg in zip(grads, chunk_grads):
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, cg, rtol=1e-10, atol=1e-12)
    # 4 chunks of 250 steps slice 4 * 250 log 250 elements; 1000 steps 1000 log 1000: a ratio of
    # about 1.25 (plus the cut of x into chunks), where slicing step by step would give 4
    assert elements / chunk_elements < 1.6, (elements, chunk_elements)


# ---- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_wrong_input_sizes_name_the_layer_the_input_size_and_the_shape(mode):
    net = LAYERS[mode](3, 4, num_layers=2)
    for shape in [(5, 2, 7), (5, 7), (5, 2, 3, 1), (3,)]:
        with pytest.raises(ValueError, match=rf"{mode}\(3, 4, num_layers=2\).*input_size=3.*"
                                             rf"{re_shape(shape)}"):
            net(gpuad.zeros(*shape))
    hx_shape = (1, 2, 4)  # one layer's worth for a 2-layer net
    hx = gpuad.zeros(*hx_shape)
    with pytest.raises(ValueError, match=rf"{mode}.*initial state.*\(2, 2, 4\).*\(1, 2, 4\)"):
        net(gpuad.zeros(5, 2, 3), (hx, hx) if mode == "LSTM" else hx)
    if mode == "LSTM":
        with pytest.raises(TypeError, match="tuple"):
            net(gpuad.zeros(5, 2, 3), gpuad.zeros(2, 2, 4))


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_input_errors(name):
    cell = CELLS[name](3, 4)
    with pytest.raises(ValueError, match=rf"{name}\(3, 4\).*input_size=3.*\(2, 5\)"):
        cell(gpuad.zeros(2, 5))
    h = gpuad.zeros(3, 4)
    with pytest.raises(ValueError, match=rf"{name}.*hidden state h.*\(2, 4\).*\(3, 4\)"):
        cell(gpuad.zeros(2, 3), (h, h) if name == "LSTMCell" else h)


def test_constructor_errors():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, 0)
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(3, 4, num_layers=2, dropout=0.2)  # no warning with layers to drop between


# ---- devices ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_forward_and_backward_on_each_device(kind, device):
    layer = not kind.endswith("Cell")
    kwargs = {"num_layers": 2, "dropout": 0.3, "bidirectional": True} if layer else {}
    net = getattr(nn, kind)(3, 4, **kwargs)
    net.eval()
    x_np = np.random.default_rng(0).standard_normal((5, 2, 3) if layer else (2, 3))
    expected = [_arr(o) for o in _flat(net(gpuad.tensor(x_np, dtype=gpuad.float32)))]
    net.to(device).train()
    x = gpuad.tensor(x_np, dtype=gpuad.float32, device=device, requires_grad=True)
    out = _flat(net(x))  # training: dropout between the layers, drawn on the device
    sum(o.sum() for o in out).backward()
    assert all(o.device == gpuad.device(device) and o.dtype == gpuad.float32 for o in out)
    assert x.grad.device == gpuad.device(device)
    assert all(p.grad.device == gpuad.device(device) and np.isfinite(_arr(p.grad)).all()
               for p in net.parameters())
    net.eval()
    for got, want in zip(_flat(net(x)), expected):
        np.testing.assert_allclose(_arr(got), want, rtol=1e-5, atol=1e-6)
