"""Recurrent layers: RNN, LSTM, GRU and their cells, with torch.nn's gate order, parameter names,
layouts, initialisation and tensor shapes, so a state_dict maps one to one.

Everything is a composite of gpuad ops (F.linear, sigmoid, tanh, slicing, stack), so it runs on
either backend and differentiates to any order. A layer computes its input projection
W_ih x + b_ih for the whole sequence in one matmul and only the hidden projection per step.
A PackedSequence input (packing.py) runs each sequence only up to its own length.
"""
import math
import numbers
import warnings

from .. import creation, ops
from . import functional as F
from . import init
from .checks import check_dtypes
from .module import Module, Parameter
from .utils.rnn import PackedSequence


# ---- one step of each cell: xw = W_ih x + b_ih is given, state is (h,) or (h, c) -------------
def _rnn_tanh_step(xw, state, w_hh, b_hh):
    return (ops.tanh(xw + F.linear(state[0], w_hh, b_hh)),)


def _rnn_relu_step(xw, state, w_hh, b_hh):
    return (ops.relu(xw + F.linear(state[0], w_hh, b_hh)),)


def _lstm_step(xw, state, w_hh, b_hh):
    """Gates in torch's order i, f, g, o: c' = f c + i g, h' = o tanh(c')."""
    h, c = state
    i, f, g, o = ops.chunk(xw + F.linear(h, w_hh, b_hh), 4, dim=-1)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


def _gru_step(xw, state, w_hh, b_hh):
    """Gates in torch's order r, z, n: n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h' = (1 - z) n + z h."""
    h, = state
    size = h.shape[-1]
    x_rz, x_n = ops.split(xw, [2 * size, size], dim=-1)
    h_rz, h_n = ops.split(F.linear(h, w_hh, b_hh), [2 * size, size], dim=-1)
    r, z = ops.chunk(ops.sigmoid(x_rz + h_rz), 2, dim=-1)
    n = ops.tanh(x_n + r * h_n)
    return (n + z * (h - n),)


_STEPS = {"RNN_TANH": _rnn_tanh_step, "RNN_RELU": _rnn_relu_step, "LSTM": _lstm_step,
          "GRU": _gru_step}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _unbind(x, out=None):
    """[x[0], ..., x[L-1]] through a balanced tree of halvings. The gradient of a slice is an array
    the size of what it was cut from, so L slices taken straight off x would cost O(L^2) in
    backward; cutting halves of halves costs O(L log L) in all."""
    out = [] if out is None else out
    n = x.shape[0]
    if n == 1:
        out.append(x[0])
    else:
        _unbind(x[:n // 2], out)
        _unbind(x[n // 2:], out)
    return out


def _scan(step, xws, state, w_hh, b_hh, reverse):
    """Run `step` over the per-step projections xws (backwards if `reverse`): the hidden state at
    every step, in time order, and the final state."""
    outputs = [None] * len(xws)
    for t in (reversed(range(len(xws))) if reverse else range(len(xws))):
        state = step(xws[t], state, w_hh, b_hh)
        outputs[t] = state[0]
    return outputs, state


def _split_steps(x, sizes, out=None):
    """A packed sequence's rows x cut into its steps, blocks of sizes[t] rows, by halving as
    _unbind does, so that backward through the cuts stays O(N log L), not O(N L)."""
    out = [] if out is None else out
    if len(sizes) == 1:
        out.append(x)
    else:
        half = len(sizes) // 2
        rows = sum(sizes[:half])
        _split_steps(x[:rows], sizes[:half], out)
        _split_steps(x[rows:], sizes[half:], out)
    return out


def _scan_packed(step, xws, state, w_hh, b_hh, reverse, sizes):
    """_scan over a packed batch (sorted by decreasing length), step t running the first
    sizes[t] sequences, torch's shrinking prefixes. Forwards, the rows of the sequences that end
    are set aside as their final states; backwards, each sequence joins at its own last step,
    from its initial state. Returns the per-step outputs and the final state of every sequence."""
    outputs = [None] * len(xws)
    if reverse:
        initial, state = state, tuple(s[:sizes[-1]] for s in state)
        for t in reversed(range(len(xws))):
            running = state[0].shape[0]
            if sizes[t] > running:
                state = tuple(ops.cat([s, s0[running:sizes[t]]]) for s, s0 in zip(state, initial))
            state = step(xws[t], state, w_hh, b_hh)
            outputs[t] = state[0]
        return outputs, state
    ended = []  # final states of the sequences that stopped, the shortest (last rows) first
    for t in range(len(xws)):
        if sizes[t] < state[0].shape[0]:
            ended.append(tuple(s[sizes[t]:] for s in state))
            state = tuple(s[:sizes[t]] for s in state)
        state = step(xws[t], state, w_hh, b_hh)
        outputs[t] = state[0]
    if ended:
        state = tuple(ops.cat([s, *parts[::-1]]) for s, *parts in zip(state, *ended))
    return outputs, state


def _check_size(name, what, got, expected):
    if got != expected:
        raise ValueError(f"{name}: expected {what} of shape {expected}, got shape {got}")


def _init_uniform(module, hidden_size):
    """torch's reset_parameters for every recurrent module: all weights and biases
    U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


# ---- the sequence layers ----------------------------------------------------------------------
class RNNBase(Module):
    """Shared by RNN, LSTM and GRU: parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
    bias_hh_l{k} (and _reverse twins when bidirectional) of shapes (G*H, H_in), (G*H, H), (G*H,),
    with G the number of gates, registered in torch's order."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        name = mode.split("_")[0]
        for what, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: {what} must be a positive integer, got {value!r}")
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or \
                not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout option adds dropout after all but last recurrent "
                          f"layer, so non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size (LSTM with projections) is not "
                                      f"supported; use proj_size=0")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, 0
        gates = _GATES[mode] * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self._directions
            for suffix in ("", "_reverse")[:self._directions]:
                shapes = [("weight_ih", (gates, layer_input)), ("weight_hh", (gates, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gates,)), ("bias_hh", (gates,))]
                for kind, shape in shapes:
                    key = f"{kind}_l{layer}{suffix}"
                    self.register_parameter(key, Parameter(creation.empty(
                        *shape, dtype=dtype, device=device)))
                    self._flat_weights_names.append(key)
        self.reset_parameters()

    @property
    def _directions(self):
        return 2 if self.bidirectional else 1

    def reset_parameters(self):
        _init_uniform(self, self.hidden_size)

    def flatten_parameters(self):
        """A no-op, for code written for torch's cuDNN weight layout."""

    def _weights(self, layer, suffix):
        p = self._parameters
        return (p[f"weight_ih_l{layer}{suffix}"], p[f"weight_hh_l{layer}{suffix}"],
                p.get(f"bias_ih_l{layer}{suffix}"), p.get(f"bias_hh_l{layer}{suffix}"))

    def _check_input(self, input):
        shape = tuple(getattr(input, "shape", ()))
        if len(shape) not in (2, 3) or shape[-1] != self.input_size:
            layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
            raise ValueError(f"{type(self).__name__}({self.extra_repr()}): expected input of "
                             f"shape {layout} or (L, H_in) (unbatched) with input_size="
                             f"{self.input_size} features in its last dim, got shape {shape}")
        if 0 in shape[:-1]:
            raise ValueError(f"{type(self).__name__}: expected a non-empty sequence and batch, "
                             f"got input of shape {shape}")

    def _check_dtype(self, input):
        """torch's RNN check: a ValueError when the input's dtype is not the weights'."""
        check_dtypes(self, input, *self._parameters.values(), error=ValueError)

    def _initial_states(self, hx, input, batched, batch, order=None):
        """The initial state of each (layer, direction) as a tuple (h,) or (h, c), from hx of
        shape (num_layers * num_directions, batch, H) (its batch taken in `order` if given), or
        zeros like input."""
        count = self.num_layers * self._directions
        n_states = 2 if self.mode == "LSTM" else 1
        if hx is None:
            zero = creation.zeros(batch, self.hidden_size, dtype=input.dtype, device=input.device)
            return [(zero,) * n_states] * count
        names = ("h0", "c0") if n_states == 2 else ("hx",)
        if n_states == 2 and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{type(self).__name__}: hx must be a tuple (h0, c0), got "
                            f"{type(hx).__name__}")
        states = tuple(hx) if n_states == 2 else (hx,)
        expected = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        for name, state in zip(names, states):
            _check_size(f"{type(self).__name__}({self.extra_repr()})", f"initial state {name}",
                        tuple(state.shape), expected)
            check_dtypes(self, state, input, what="input", subject=f"initial state {name}")
        if not batched:
            states = tuple(s.unsqueeze(1) for s in states)
        if order is not None:
            states = tuple(s.index_select(1, order) for s in states)
        return [tuple(s[k] for s in states) for k in range(count)]

    def forward(self, input, hx=None):
        """input (L, N, H_in), or (N, L, H_in) when batch_first, or (L, H_in) unbatched; returns
        (output, h_n), or (output, (h_n, c_n)) for LSTM, with output (L, N, D*H) (batch_first:
        (N, L, D*H)) and h_n, c_n (num_layers*D, N, H): batch_first never applies to states.
        A PackedSequence input gives a PackedSequence output, as in torch."""
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        self._check_input(input)
        self._check_dtype(input)
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        initial = self._initial_states(hx, input, batched, input.shape[1])
        output, states = self._layers(input, iter(initial))
        if not batched:
            output, states = output.squeeze(1), tuple(s.squeeze(1) for s in states)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (states if self.mode == "LSTM" else states[0])

    def _forward_packed(self, packed, hx):
        """forward for a PackedSequence: the input projection is one GEMM over the packed rows,
        each step runs only the sequences still going, h_n holds each sequence's state at its
        own last step, and hx and h_n are in the caller's batch order, like torch."""
        data, sizes = packed.data, packed.batch_sizes.tolist()  # batch_sizes live on the CPU
        if data.ndim != 2 or data.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}({self.extra_repr()}): expected a "
                             f"PackedSequence of data (sum(lengths), input_size={self.input_size})"
                             f", got data of shape {tuple(data.shape)}")
        self._check_dtype(data)
        initial = self._initial_states(hx, data, True, sizes[0], packed.sorted_indices)
        output, states = self._layers(data, iter(initial), sizes)
        if packed.unsorted_indices is not None:
            states = tuple(s.index_select(1, packed.unsorted_indices) for s in states)
        return packed._replace(data=output), (states if self.mode == "LSTM" else states[0])

    def _layers(self, layer_input, initial, sizes=None):
        """Every layer and direction over time-major input (L, N, H_in), or over a packed
        sequence's rows when its batch `sizes` are given: the last layer's output (L, N, D*H) or
        (sum(sizes), D*H), and the final states stacked (num_layers*D, N, H)."""
        if sizes is None:
            cut, scan, join = _unbind, _scan, ops.stack
        else:
            cut, join = (lambda x: _split_steps(x, sizes)), ops.cat
            scan = (lambda *args: _scan_packed(*args, sizes))
        step, finals = _STEPS[self.mode], []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                layer_input = F.dropout(layer_input, self.dropout, True)
            directions = []
            for suffix in ("", "_reverse")[:self._directions]:
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
                xws = cut(F.linear(layer_input, w_ih, b_ih))  # one GEMM for all steps
                outputs, final = scan(step, xws, next(initial), w_hh, b_hh, bool(suffix))
                directions.append(join(outputs))
                finals.append(final)
            layer_input = directions[0] if len(directions) == 1 else ops.cat(directions, dim=-1)
        states = tuple(ops.stack([final[i] for final in finals]) for i in range(len(finals[0])))
        return layer_input, states

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) with act tanh or relu, like
    torch.nn.RNN."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; select from 'tanh' or "
                             f"'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory, like torch.nn.LSTM (gates i, f, g, o); forward(input, (h0, c0))
    returns (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit, like torch.nn.GRU (gates r, z, n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


# ---- the cells: one step, input (N, H_in) or (H_in,) ---------------------------------------
class RNNCellBase(Module):
    """Shared by the cells: weight_ih (G*H, H_in), weight_hh (G*H, H), bias_ih and bias_hh
    (G*H,), like torch.nn.RNNCellBase."""

    def __init__(self, mode, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.bias = bias
        gates = _GATES[mode] * hidden_size
        kw = {"dtype": dtype, "device": device}
        self.weight_ih = Parameter(creation.empty(gates, input_size, **kw))
        self.weight_hh = Parameter(creation.empty(gates, hidden_size, **kw))
        self.register_parameter("bias_ih", Parameter(creation.empty(gates, **kw)) if bias else None)
        self.register_parameter("bias_hh", Parameter(creation.empty(gates, **kw)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        _init_uniform(self, self.hidden_size)

    def _step(self, input, hx):
        """Check shapes, run one step on a batch, and give the state back unbatched if the input
        was: the new state tuple."""
        name = f"{type(self).__name__}({self.extra_repr()})"
        shape = tuple(getattr(input, "shape", ()))
        if len(shape) not in (1, 2) or shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (N, {self.input_size}) or "
                             f"({self.input_size},) (unbatched), with input_size="
                             f"{self.input_size}, got shape {shape}")
        batched = len(shape) == 2
        expected = (shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if hx is None:
            hx = (creation.zeros(*expected, dtype=input.dtype, device=input.device),) * (
                2 if self.mode == "LSTM" else 1)
        check_dtypes(self, input, *self._parameters.values())
        for what, state in zip(("h", "c"), hx):
            _check_size(name, f"hidden state {what}", tuple(state.shape), expected)
            check_dtypes(self, state, input, what="input", subject=f"hidden state {what}")
        if not batched:
            input, hx = input.unsqueeze(0), tuple(s.unsqueeze(0) for s in hx)
        xw = F.linear(input, self.weight_ih, self.bias_ih)
        state = _STEPS[self.mode](xw, hx, self.weight_hh, self.bias_hh)
        return state if batched else tuple(s.squeeze(0) for s in state)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        return s


class RNNCell(RNNCellBase):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu, like torch.nn.RNNCell."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; select from "
                             f"'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, bias,
                         device=device, dtype=dtype)

    def forward(self, input, hx=None):
        return self._step(input, None if hx is None else (hx,))[0]


class LSTMCell(RNNCellBase):
    """One LSTM step, like torch.nn.LSTMCell: forward(input, (h, c)) returns (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        return self._step(input, None if hx is None else tuple(hx))


class GRUCell(RNNCellBase):
    """One GRU step, like torch.nn.GRUCell."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        return self._step(input, None if hx is None else (hx,))[0]
