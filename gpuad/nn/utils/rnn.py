"""Packed sequences, like torch.nn.utils.rnn : a batch of
variable-length sequences stored step by step without padding, so that the recurrent layers in
recurrent.py run each sequence only up to its own length.

Packing and padding are one integer-array gather each (getitem, after a cat of one padding row),
so gradients flow through them. Lengths live on the host, as in torch: every index array is built
there from them and copied to the device, so packing never makes the host wait for the device.
"""
import collections

import numpy

from ... import backend, creation, ops
from ...tensor import MovesWithTo, Tensor


class PackedSequence(collections.namedtuple(
        "PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"]),
        MovesWithTo):
    """A packed batch, like torch.nn.utils.rnn.PackedSequence. `data` (sum(lengths), *) holds
    step 0 of every sequence, then step 1 of those still running, and so on, sequences sorted by
    decreasing length; `batch_sizes` (a CPU int64 tensor) says how many run at each step;
    `sorted_indices` gives the caller's batch index of each sorted position and
    `unsorted_indices` its inverse (int64, on data's device), both None when the batch came
    sorted. Make one with pack_padded_sequence or pack_sequence rather than by hand."""

    # The caller's order as a host array, known when the batch was packed from host lengths: with
    # it pad_packed_sequence reorders the lengths without reading unsorted_indices off the device.
    _host_unsorted = None

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:  # PackedSequence((data, batch_sizes)), which torch accepts too
            data, batch_sizes = data
        if not isinstance(batch_sizes, Tensor):
            batch_sizes = creation.tensor(numpy.asarray(batch_sizes, dtype=backend.int64))
        if batch_sizes.device.type != "cpu":
            raise ValueError(f"PackedSequence: batch_sizes must be a CPU tensor (the recurrent "
                             f"layers read them on the host), got one on {batch_sizes.device}; "
                             f"make packed batches with pack_padded_sequence or pack_sequence")
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = creation.zeros_like(sorted_indices)  # invert the permutation
            unsorted_indices[sorted_indices] = creation.arange(
                len(sorted_indices), device=sorted_indices.device)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _replace(self, **fields):
        """namedtuple's _replace; the host order carries over while the indices stay."""
        new = super()._replace(**fields)
        if not {"sorted_indices", "unsorted_indices"} & set(fields):
            new._host_unsorted = self._host_unsorted
        return new

    def to(self, *args, **kwargs):
        """data.to(...), with the indices following data to its device; batch_sizes stay on the
        CPU. Returns self when data does not change, like torch."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        move = (lambda t: None if t is None else t.to(data.device))
        new = super()._replace(data=data, sorted_indices=move(self.sorted_indices),
                               unsorted_indices=move(self.unsorted_indices))
        new._host_unsorted = self._host_unsorted  # the same order, on another device
        return new


def _host_lengths(name, lengths, batch, steps, shape, layout):
    """lengths as a host int64 array, checked against the batch and the number of steps."""
    if isinstance(lengths, Tensor):
        if lengths.device.type != "cpu":
            raise ValueError(f"{name}: lengths must be on the CPU (a list of ints or a CPU int64 "
                             f"tensor, as in torch), got a tensor on {lengths.device}; pass "
                             f"lengths.cpu(), a host sync made knowingly, or keep them in a list")
        lengths = lengths.tolist()
    lengths = numpy.asarray(lengths)
    if lengths.ndim != 1 or (lengths.dtype.kind not in "iu" and lengths.size):
        raise TypeError(f"{name}: expected lengths as a 1-D list or CPU tensor of integers, got "
                        f"shape {lengths.shape} of {lengths.dtype}")
    if batch == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got input of shape {shape}")
    if len(lengths) != batch:
        raise ValueError(f"{name}: got {len(lengths)} lengths for a batch of {batch} sequences "
                         f"(input of shape {shape}, read as {layout}); pass one length per "
                         f"sequence, and batch_first=True if the batch dim comes first")
    for bad, what, fix in (
            (lengths <= 0, "is not positive", "drop empty sequences before packing"),
            (lengths > steps, f"is longer than the {steps} steps of the input",
             "pad the input to the longest length, or fix the lengths")):
        if bad.any():
            i = int(numpy.argmax(bad))
            raise ValueError(f"{name}: length {int(lengths[i])} of sequence {i} {what} (input of "
                             f"shape {shape}, read as {layout}); {fix}")
    return lengths.astype(backend.int64)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) ((B, T, *) when batch_first) of sequences of the given
    lengths (a list or CPU tensor), like torch.nn.utils.rnn.pack_padded_sequence. With
    enforce_sorted the lengths must be in decreasing order; without, the batch is sorted here
    (stably) and sorted_indices remember the order."""
    name, shape = "pack_padded_sequence", tuple(getattr(input, "shape", ()))
    layout = "(B, T, *)" if batch_first else "(T, B, *)"
    if len(shape) < 2:
        raise ValueError(f"{name}: expected a padded batch of shape {layout}, got shape {shape}")
    steps, batch = shape[1::-1] if batch_first else shape[:2]
    lengths = _host_lengths(name, lengths, batch, steps, shape, layout)
    if enforce_sorted:
        if (numpy.diff(lengths) > 0).any():
            raise ValueError(f"{name}: lengths {lengths.tolist()} are not sorted in decreasing "
                             f"order; sort the batch by length, or pass enforce_sorted=False to "
                             f"have it sorted here and unsorted again by pad_packed_sequence")
        order = None
    else:
        order = numpy.argsort(-lengths, kind="stable")
        lengths = lengths[order]
    running = lengths > numpy.arange(lengths[0])[:, None]  # (T, B): sorted sequence k runs at t
    # the packed rows, time-major: (step t, sorted position k) for every running pair, in order
    step, position = numpy.nonzero(running)
    sequence = position if order is None else order[position]
    data = input[sequence, step] if batch_first else input[step, sequence]
    batch_sizes = running.sum(1)
    if order is None:
        return PackedSequence(data, batch_sizes)
    unsorted = numpy.argsort(order)
    packed = PackedSequence(data, batch_sizes, creation.tensor(order, device=data.device),
                            creation.tensor(unsorted, device=data.device))
    packed._host_unsorted = unsorted
    return packed


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """The padded batch (T, B, *) ((B, T, *) when batch_first) of a PackedSequence, in the
    caller's original batch order, and the lengths as a CPU int64 tensor, like
    torch.nn.utils.rnn.pad_packed_sequence; T is total_length when given."""
    sizes = numpy.asarray(sequence.batch_sizes.tolist(), dtype=backend.int64)
    steps, batch, data = len(sizes), int(sizes[0]), sequence.data
    if total_length is None:
        total_length = steps
    elif total_length < steps:
        raise ValueError(f"pad_packed_sequence: total_length={total_length} is shorter than the "
                         f"longest sequence ({steps} steps); pass total_length >= {steps}")
    positions = numpy.arange(batch)
    starts = numpy.cumsum(sizes) - sizes
    pad_row = len(data)  # the index of the padding row cat'ed below the packed rows
    index = numpy.full((total_length, batch), pad_row)
    index[:steps] = numpy.where(positions < sizes[:, None], starts[:, None] + positions, pad_row)
    fill = creation.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype,
                         device=data.device)
    padded = ops.cat([data, fill])[index.T if batch_first else index]
    lengths = (positions[:, None] < sizes).sum(1)  # in sorted order
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(0 if batch_first else 1, sequence.unsorted_indices)
        order = sequence._host_unsorted
        if order is None:  # a PackedSequence built by hand: read the order back, as torch does
            order = numpy.asarray(sequence.unsorted_indices.cpu().tolist(), dtype=backend.int64)
        lengths = lengths[order]
    return padded, creation.tensor(lengths.astype(backend.int64))


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors (L_i, *) into one padded batch (T, B, *) ((B, T, *) when batch_first), T the
    longest L_i, like torch.nn.utils.rnn.pad_sequence; padding_side 'left' pads in front."""
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: expected a non-empty list of tensors")
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got "
                         f"{padding_side!r}")
    rest = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if s.ndim == 0 or tuple(s.shape[1:]) != rest:
            raise ValueError(f"pad_sequence: every sequence must be (L, *{rest}) like the first, "
                             f"got shape {tuple(s.shape)} at position {i}")
    lengths = numpy.array([s.shape[0] for s in sequences], dtype=backend.int64)
    longest, first = int(lengths.max()), sequences[0]
    starts = numpy.cumsum(lengths) - lengths
    # padded step t of sequence b is row starts[b] + t - shift[b] of the joined rows, or padding
    shift = longest - lengths if padding_side == "left" else numpy.zeros_like(lengths)
    step = numpy.arange(longest)[:, None] - shift
    index = numpy.where((step >= 0) & (step < lengths), starts + step, lengths.sum())
    fill = creation.full((1,) + rest, padding_value, dtype=first.dtype, device=first.device)
    rows = ops.cat(sequences + [fill])
    return rows[index.T if batch_first else index]


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of tensors (L_i, *), like torch.nn.utils.rnn.pack_sequence."""
    sequences = list(sequences)
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of sequences (L_i, *) in a padded batch, like torch.nn.utils.rnn.unpad_sequence."""
    lengths = lengths.tolist() if isinstance(lengths, Tensor) else list(lengths)
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[b, :int(n)] for b, n in enumerate(lengths)]


def unpack_sequence(packed_sequences):
    """The list of sequences (L_i, *) in a PackedSequence, in the original order, like
    torch.nn.utils.rnn.unpack_sequence."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
