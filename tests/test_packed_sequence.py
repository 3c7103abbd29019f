"""gpuad.nn.utils.rnn (gpuad/nn/packing.py) and the recurrent layers on PackedSequence input:
packed layout, pack/pad round trips, float64 gradchecks through pack -> LSTM -> pad, a per-sequence
oracle that needs no torch, no host syncs on the strict backend, error messages, and PyTorch
twins with copied weights (skipped without torch)."""
import numpy as np
import pytest

import gpuad
from gpuad import backend, nn
from gpuad.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)
from gpuad.testing.strict import forbid_host_sync

LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
F64 = {"dtype": gpuad.float64}
LENGTHS = [3, 5, 1, 4]  # unsorted, distinct (so torch's unstable sort agrees with ours)


def _arr(t):
    return backend.asnumpy(t.detach().array)


def _randn(*shape, seed=0, device="cpu", requires_grad=False):
    data = np.random.default_rng(seed).standard_normal(shape)
    return gpuad.tensor(data, device=device, requires_grad=requires_grad)


def _padded_reference(x, lengths, value, batch_first):
    """numpy x (T, B, *) or (B, T, *) with everything past each length set to `value`."""
    x = np.array(x)
    for b, n in enumerate(lengths):
        (x[b, n:] if batch_first else x[n:, b])[...] = value
    return x


def _flat(out):
    """(output, h_n) or (output, (h_n, c_n)) as a flat list, a PackedSequence as its data."""
    out, state = out
    return [out.data if isinstance(out, PackedSequence) else out,
            *(state if isinstance(state, tuple) else (state,))]


# ---- layout and round trips ----------------------------------------------------------------------
def test_packed_layout_is_torchs(device):
    """The example of torch's pad_packed_sequence docstring, value by value."""
    seq = gpuad.tensor([[1, 2, 0], [3, 0, 0], [4, 5, 6]], device=device)
    packed = pack_padded_sequence(seq, [2, 1, 3], batch_first=True, enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = packed  # a namedtuple, as in torch
    assert _arr(data).tolist() == [4, 1, 3, 5, 2, 6] and data.device == gpuad.device(device)
    assert batch_sizes.tolist() == [3, 2, 1] and batch_sizes.device == gpuad.device("cpu")
    assert _arr(sorted_indices).tolist() == [2, 0, 1]
    assert _arr(unsorted_indices).tolist() == [1, 2, 0]
    assert sorted_indices.device == gpuad.device(device) and sorted_indices.dtype == gpuad.int64
    padded, lengths = pad_packed_sequence(packed, batch_first=True)
    assert _arr(padded).tolist() == [[1, 2, 0], [3, 0, 0], [4, 5, 6]]
    assert lengths.tolist() == [2, 1, 3] and lengths.device == gpuad.device("cpu")
    assert lengths.dtype == gpuad.int64
    sorted_pack = pack_padded_sequence(seq[gpuad.tensor([2, 0, 1], device=device)], [3, 2, 1],
                                       batch_first=True)
    assert sorted_pack.sorted_indices is None and sorted_pack.unsorted_indices is None
    assert _arr(sorted_pack.data).tolist() == [4, 1, 3, 5, 2, 6]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_pack_then_pad_gives_the_padded_batch_back(batch_first, enforce_sorted, device):
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    shape = (4, 6, 2, 3) if batch_first else (6, 4, 2, 3)  # one step more than the longest
    x = _randn(*shape, device=device)
    packed = pack_padded_sequence(x, gpuad.tensor(lengths), batch_first, enforce_sorted)
    assert tuple(packed.data.shape) == (sum(lengths), 2, 3)
    assert packed.batch_sizes.tolist() == [4, 3, 3, 2, 1]
    padded, got_lengths = pad_packed_sequence(packed, batch_first, padding_value=-7.0)
    assert got_lengths.tolist() == lengths
    trimmed = _arr(x)[:, :5] if batch_first else _arr(x)[:5]  # up to the longest length
    np.testing.assert_array_equal(_arr(padded),
                                  _padded_reference(trimmed, lengths, -7.0, batch_first))
    longer, _ = pad_packed_sequence(packed, batch_first, total_length=6)
    np.testing.assert_array_equal(_arr(longer), _padded_reference(_arr(x), lengths, 0.0,
                                                                  batch_first))


@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequence_pack_sequence_and_back(batch_first, device):
    sequences = [_randn(n, 2, seed=n, device=device) for n in LENGTHS]
    padded = pad_sequence(sequences, batch_first, padding_value=9.0)
    expected = np.full((4, 5, 2), 9.0)
    for b, s in enumerate(sequences):
        expected[b, :len(s)] = _arr(s)
    np.testing.assert_array_equal(_arr(padded), expected if batch_first else
                                  expected.transpose(1, 0, 2))
    left = _arr(pad_sequence(sequences, True, padding_side="left"))
    for b, s in enumerate(sequences):
        np.testing.assert_array_equal(left[b, 5 - len(s):], _arr(s))
        assert not left[b, :5 - len(s)].any()
    for unsorted in (True, False):
        parts = sequences if unsorted else sorted(sequences, key=len, reverse=True)
        packed = pack_sequence(parts, enforce_sorted=not unsorted)
        reference = pack_padded_sequence(pad_sequence(parts), [len(s) for s in parts],
                                         enforce_sorted=not unsorted)
        np.testing.assert_array_equal(_arr(packed.data), _arr(reference.data))
        for got, want in zip(unpack_sequence(packed), parts):
            np.testing.assert_array_equal(_arr(got), _arr(want))
    for got, want in zip(unpad_sequence(padded, gpuad.tensor(LENGTHS), batch_first), sequences):
        np.testing.assert_array_equal(_arr(got), _arr(want))


def test_reachable_where_torch_keeps_them():
    from gpuad.nn.utils.rnn import pack_padded_sequence as from_torchs_path
    assert from_torchs_path is pack_padded_sequence
    assert gpuad.nn.utils.rnn.PackedSequence is PackedSequence
    assert callable(gpuad.nn.utils.clip_grad_norm_)


def test_packed_sequence_behaves_like_torchs():
    data = gpuad.arange(6, dtype=gpuad.float64)
    packed = PackedSequence(data, [3, 2, 1], gpuad.tensor([2, 0, 1]))  # unsorted_indices derived
    assert packed.unsorted_indices.tolist() == [1, 2, 0]
    assert PackedSequence((data, gpuad.tensor([3, 2, 1]))).batch_sizes.tolist() == [3, 2, 1]
    moved = packed.to("strict")
    assert moved.data.device == moved.sorted_indices.device == moved.unsorted_indices.device == \
        gpuad.device("strict")
    assert moved.batch_sizes is packed.batch_sizes and packed.to("cpu") is packed
    assert moved.float().data.dtype == gpuad.float32 and moved.cpu().data.device.type == "cpu"
    with pytest.raises(ValueError, match="batch_sizes must be a CPU tensor"):
        PackedSequence(data, gpuad.tensor([3, 2, 1], device="strict"))


# ---- gradients ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradcheck_pack_lstm_pad(bidirectional, device):
    """float64 finite differences through pack (unsorted lengths) -> LSTM -> pad, for the input,
    the initial states in the caller's order and every weight."""
    net = nn.LSTM(2, 2, bidirectional=bidirectional, **F64).to(device)
    directions = 2 if bidirectional else 1
    x = _randn(4, 3, 2, device=device, requires_grad=True)
    h0 = _randn(directions, 3, 2, seed=1, device=device, requires_grad=True)
    c0 = _randn(directions, 3, 2, seed=2, device=device, requires_grad=True)

    def fn(x, h0, c0, *params):
        packed = pack_padded_sequence(x, [2, 4, 1], enforce_sorted=False)
        out, (h, c) = net(packed, (h0, c0))
        padded, _ = pad_packed_sequence(out, padding_value=0.5)
        return padded, h, c
    assert gpuad.gradcheck(fn, [x, h0, c0, *net.parameters()])


def test_gradcheck_pad_sequence_both_sides(device):
    parts = [_randn(n, 2, seed=n, device=device, requires_grad=True) for n in (2, 3, 1)]
    assert gpuad.gradcheck(lambda *xs: (pad_sequence(xs), pad_sequence(xs, True, 1.0, "left")),
                           parts)


# ---- semantics without torch: each sequence on its own -----------------------------------------
@pytest.mark.parametrize("mode", sorted(LAYERS))
def test_packed_batch_equals_each_sequence_run_alone(mode, device):
    """A packed batch gives, for every sequence, the outputs and final states of running that
    sequence alone through the dense path: states stop at each sequence's own end, the reverse
    direction starts from its own last step, and h_n comes back in the caller's order."""
    net = LAYERS[mode](3, 4, num_layers=2, bidirectional=True, **F64).to(device)
    x = _randn(5, 4, 3, device=device)
    h0 = [_randn(4, 4, 4, seed=s, device=device) for s in range(2 if mode == "LSTM" else 1)]
    hx = tuple(h0) if mode == "LSTM" else h0[0]
    out, state = net(pack_padded_sequence(x, LENGTHS, enforce_sorted=False), hx)
    padded, finals = pad_packed_sequence(out)[0], state if mode == "LSTM" else (state,)
    for b, n in enumerate(LENGTHS):
        alone = [h[:, b:b + 1] for h in h0]
        want_out, *want_finals = _flat(net(x[:n, b:b + 1], tuple(alone) if mode == "LSTM"
                                           else alone[0]))
        np.testing.assert_allclose(_arr(padded)[:n, b], _arr(want_out)[:, 0], rtol=1e-12,
                                   atol=1e-12)
        assert not _arr(padded)[n:, b].any()
        for got, want in zip(finals, want_finals):
            np.testing.assert_allclose(_arr(got)[:, b], _arr(want)[:, 0], rtol=1e-12, atol=1e-12)


def test_dense_input_of_full_lengths_matches_packed():
    net = nn.GRU(3, 4, num_layers=2, bidirectional=True, **F64)
    x = _randn(5, 3, 3)
    dense_out, dense_h = net(x)
    packed_out, packed_h = net(pack_padded_sequence(x, [5, 5, 5]))
    np.testing.assert_allclose(_arr(pad_packed_sequence(packed_out)[0]), _arr(dense_out),
                               rtol=1e-13)
    np.testing.assert_allclose(_arr(packed_h), _arr(dense_h), rtol=1e-13)


# ---- the strict backend: the packed path never waits for the device ----------------------------
def test_pack_lstm_pad_backward_never_syncs():
    net = nn.LSTM(3, 4, num_layers=2, bidirectional=True).to("strict")
    x = gpuad.randn(5, 4, 3, device="strict", requires_grad=True)
    with forbid_host_sync():  # lengths are a host list, so nothing needs reading back
        out, (h, c) = net(pack_padded_sequence(x, LENGTHS, enforce_sorted=False))
        padded, lengths = pad_packed_sequence(out, batch_first=True)
        (padded.sum() + h.sum() + c.sum()).backward()
    assert lengths.tolist() == LENGTHS and x.grad.device == gpuad.device("strict")
    # a PackedSequence made by hand has no host copy of its order: padding reads it back, a sync
    rebuilt = PackedSequence(out.data, out.batch_sizes, out.sorted_indices)
    with forbid_host_sync(), pytest.raises(RuntimeError, match="synchronise"):
        pad_packed_sequence(rebuilt)
    assert pad_packed_sequence(rebuilt)[1].tolist() == LENGTHS


# ---- errors -------------------------------------------------------------------------------------
def test_packing_errors_name_the_function_the_shapes_and_the_fix():
    x = gpuad.zeros(5, 3, 2)
    cases = [
        (([3, 4, 2],), ValueError, (r"pack_padded_sequence: lengths \[3, 4, 2\] are not sorted "
                                    r"in decreasing order.*enforce_sorted=False")),
        (([3, 0, 2], False), ValueError, (r"length 0 of sequence 1 is not positive.*"
                                          r"\(5, 3, 2\).*drop empty sequences")),
        (([3, 7, 2], False), ValueError, (r"length 7 of sequence 1 is longer than the 5 steps.*"
                                          r"\(5, 3, 2\).*\(T, B, \*\).*pad the input")),
        (([3, 2],), ValueError, (r"got 2 lengths for a batch of 3 sequences \(input of shape "
                                 r"\(5, 3, 2\), read as \(T, B, \*\)\).*batch_first=True")),
        ((gpuad.tensor([3, 2, 1], device="strict"),), ValueError,
         r"lengths must be on the CPU.*strict.*lengths\.cpu\(\)"),
        (([3.0, 2.0, 1.0],), TypeError, r"1-D list or CPU tensor of integers"),
    ]
    for args, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            pack_padded_sequence(x, *args)
    with pytest.raises(ValueError, match=r"\(B, T, \*\).*got shape \(5,\)"):
        pack_padded_sequence(gpuad.zeros(5), [5], batch_first=True)
    packed = pack_padded_sequence(x, [3, 2, 1])
    with pytest.raises(ValueError, match=r"pad_packed_sequence: total_length=2 is shorter than "
                                         r"the longest sequence \(3 steps\)"):
        pad_packed_sequence(packed, total_length=2)
    with pytest.raises(ValueError, match=r"pad_sequence: every sequence must be \(L, \*\(2,\)\).*"
                                         r"\(4, 3\) at position 1"):
        pad_sequence([gpuad.zeros(3, 2), gpuad.zeros(4, 3)])
    with pytest.raises(ValueError, match="non-empty list"):
        pad_sequence([])


def test_recurrent_layers_check_packed_input_and_states():
    packed = pack_padded_sequence(gpuad.zeros(5, 3, 2), [3, 2, 1])
    with pytest.raises(ValueError, match=r"LSTM\(4, 2\): expected a PackedSequence of data "
                                         r"\(sum\(lengths\), input_size=4\), got data of shape "
                                         r"\(6, 2\)"):
        nn.LSTM(4, 2)(packed)
    h = gpuad.zeros(1, 2, 2)  # a batch of 2 for 3 packed sequences
    with pytest.raises(ValueError, match=r"GRU.*initial state hx.*\(1, 3, 2\).*\(1, 2, 2\)"):
        nn.GRU(2, 2)(packed, h)


# ---- PyTorch twins ------------------------------------------------------------------------------
TWIN_CASES = [
    ("RNN", {}), ("RNN", {"num_layers": 2, "bidirectional": True, "nonlinearity": "relu"}),
    ("LSTM", {}), ("LSTM", {"num_layers": 2}), ("LSTM", {"bidirectional": True}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("GRU", {"batch_first": True}), ("GRU", {"num_layers": 2, "bidirectional": True}),
]


def _torch_twin(torch, ours, kwargs):
    theirs = getattr(torch.nn, type(ours).__name__)(ours.input_size, ours.hidden_size,
                                                    **kwargs).double()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(_arr(getattr(ours, name)).copy()))
    return theirs


@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("mode,kwargs", TWIN_CASES)
def test_pack_rnn_pad_matches_torch(mode, kwargs, enforce_sorted):
    """pack -> layer -> pad against torch with copied weights: padded outputs, states, lengths,
    and the gradients of the input, the initial states and every weight."""
    torch = pytest.importorskip("torch")
    rnn = torch.nn.utils.rnn
    ours = LAYERS[mode](3, 4, **kwargs, **F64)
    theirs = _torch_twin(torch, ours, kwargs)
    batch_first = kwargs.get("batch_first", False)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((4, 5, 3) if batch_first else (5, 4, 3))
    count = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    hx_np = [rng.standard_normal((count, 4, 4)) for _ in range(2 if mode == "LSTM" else 1)]
    x, tx = gpuad.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    hx = [gpuad.tensor(h, requires_grad=True) for h in hx_np]
    thx = [torch.tensor(h, requires_grad=True) for h in hx_np]
    pack = (lambda s: tuple(s)) if mode == "LSTM" else (lambda s: s[0])

    out, state = ours(pack_padded_sequence(x, lengths, batch_first, enforce_sorted), pack(hx))
    tout, tstate = theirs(rnn.pack_padded_sequence(tx, lengths, batch_first, enforce_sorted),
                          pack(thx))
    np.testing.assert_allclose(_arr(out.data), tout.data.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert out.batch_sizes.tolist() == tout.batch_sizes.tolist()
    padded, got_lengths = pad_packed_sequence(out, batch_first, total_length=6)
    tpadded, t_lengths = rnn.pad_packed_sequence(tout, batch_first, total_length=6)
    assert got_lengths.tolist() == t_lengths.tolist() == lengths
    outs = [padded, *(state if mode == "LSTM" else (state,))]
    touts = [tpadded, *(tstate if mode == "LSTM" else (tstate,))]
    weights = [rng.standard_normal(o.shape) for o in outs]
    for o, to in zip(outs, touts):
        assert tuple(o.shape) == tuple(to.shape)
        np.testing.assert_allclose(_arr(o), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    sum((o * gpuad.tensor(w)).sum() for o, w in zip(outs, weights)).backward()
    sum((to * torch.from_numpy(w)).sum() for to, w in zip(touts, weights)).backward()
    for ours_grad, their_grad, name in [(x.grad, tx.grad, "x"), *(
            (h.grad, th.grad, "hx") for h, th in zip(hx, thx)), *(
            (getattr(ours, n).grad, p.grad, n) for n, p in theirs.named_parameters())]:
        np.testing.assert_allclose(_arr(ours_grad), their_grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_packing_functions_match_torch():
    torch = pytest.importorskip("torch")
    rnn = torch.nn.utils.rnn
    sequences = [np.random.default_rng(n).standard_normal((n, 2)) for n in LENGTHS]
    ours = pack_sequence([gpuad.tensor(s) for s in sequences], enforce_sorted=False)
    theirs = rnn.pack_sequence([torch.tensor(s) for s in sequences], enforce_sorted=False)
    for got, want in zip(ours, theirs):
        np.testing.assert_array_equal(_arr(got), want.numpy())
    for side in ("right", "left"):
        np.testing.assert_array_equal(
            _arr(pad_sequence([gpuad.tensor(s) for s in sequences], True, -1.0, side)),
            rnn.pad_sequence([torch.tensor(s) for s in sequences], True, -1.0, side).numpy())
