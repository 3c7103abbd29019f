"""Embedding, EmbeddingBag and F.embedding_bag, like torch: a lookup table of rows, and sums,
means or maxima of embedding rows over bags of indices (rows of a 2-D input, or a 1-D input cut
by offsets), with per_sample_weights, include_last_offset and padding_idx. Bags are laid out as
one padded (bags, longest bag) index matrix, so the reduction is one masked op and gradients reach
each used row exactly as torch's (max: the first maximum of each bag and feature).
"""
import numpy

from .. import backend, creation, ops
from . import functional as F
from . import init
from .checks import check_dense_gradients
from .module import Module, Parameter

_MODES = ("sum", "mean", "max")


def _padding_idx(name, padding_idx, num_embeddings):
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{name}: padding_idx {padding_idx} must be within "
                         f"[-{num_embeddings}, {num_embeddings})")
    return padding_idx % num_embeddings


def _reset_rows(weight, padding_idx):
    init.normal_(weight)
    if padding_idx is not None:
        weight._bump_version()
        weight.array[padding_idx] = 0


def _set_table(module, weight, requires_grad, device, dtype):
    """An embedding module's weight: a new table (N(0, 1), the padding row zero), or `weight`,
    shared, when it has the (num_embeddings, embedding_dim) shape."""
    shape = (module.num_embeddings, module.embedding_dim)
    if weight is None:
        module.weight = Parameter(creation.empty(*shape, device=device, dtype=dtype),
                                  requires_grad=requires_grad)
        module.reset_parameters()
        return
    if tuple(weight.shape) != shape:
        raise ValueError(f"{type(module).__name__}: _weight of shape {tuple(weight.shape)} must "
                         f"be {shape}")
    module.weight = Parameter(weight, requires_grad=requires_grad)


class Embedding(Module):
    """A lookup table of num_embeddings rows of size embedding_dim, initialised N(0, 1); the row
    padding_idx starts at zero and receives no gradient, and max_norm caps the norm of the rows
    looked up (F.embedding), like torch.nn.Embedding. `_weight` supplies the table, `_freeze`
    keeps it from training (from_pretrained's)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        padding_idx = _padding_idx("Embedding", padding_idx, num_embeddings)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        _set_table(self, _weight, not _freeze, device, dtype)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding holding the 2-D tensor `embeddings` (shared, as torch's), frozen unless
        freeze=False."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{tuple(embeddings.shape)}")
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def reset_parameters(self):
        _reset_rows(self.weight, self.padding_idx)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        return s


def _check(input, offsets, mode, per_sample_weights, max_norm, scale_grad_by_freq, sparse):
    if mode not in _MODES:
        raise ValueError(f"embedding_bag: mode has to be one of {_MODES}, got {mode!r}")
    check_dense_gradients("embedding_bag", scale_grad_by_freq, sparse)
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights is only supported for "
                                  f"mode='sum' (got mode={mode!r}), as in torch")
    if input.ndim == 2 and offsets is not None:
        raise ValueError(f"embedding_bag: input of shape {tuple(input.shape)} is 2-D, a batch of "
                         f"fixed-length bags, so offsets has to be None")
    if input.ndim == 1 and (offsets is None or offsets.ndim != 1):
        raise ValueError(f"embedding_bag: a 1-D input needs 1-D offsets (the start of each bag), "
                         f"got {None if offsets is None else tuple(offsets.shape)}")
    if input.ndim not in (1, 2):
        raise ValueError(f"embedding_bag: input has to be 1-D (with offsets) or 2-D, got shape "
                         f"{tuple(input.shape)}")
    if per_sample_weights is not None and tuple(per_sample_weights.shape) != tuple(input.shape):
        raise ValueError(f"embedding_bag: per_sample_weights of shape "
                         f"{tuple(per_sample_weights.shape)} must have the input's shape "
                         f"{tuple(input.shape)}")


def _bags(input, offsets, include_last_offset):
    """A 1-D input cut at offsets as a padded (bags, longest) position matrix and its mask."""
    starts = backend.asnumpy(offsets.array).astype(numpy.int64)
    n = input.shape[0]
    if starts.size and starts[0] != 0:
        raise ValueError(f"embedding_bag: offsets[0] has to be 0 (the first bag starts at the "
                         f"first index), got {starts[0]}")
    if include_last_offset:
        starts, ends = starts[:-1], starts[1:]
    else:
        ends = numpy.append(starts[1:], n)
    lengths = ends - starts
    if (lengths < 0).any() or (ends > n).any():
        raise ValueError(f"embedding_bag: offsets {starts.tolist()} must be non-decreasing and at "
                         f"most the input's length {n}")
    width = max(int(lengths.max(initial=0)), 1)
    valid = numpy.arange(width) < lengths[:, None]
    positions = numpy.where(valid, starts[:, None] + numpy.arange(width), 0)
    return positions, valid


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                  mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False,
                  padding_idx=None):
    """Reduce (sum, mean or max) the rows of weight picked by each bag of indices, like
    torch.nn.functional.embedding_bag: input (B, L) holds B bags of L indices; a 1-D input is cut
    into bags at `offsets` (include_last_offset: offsets also holds the end). Empty bags give
    zeros; indices equal to padding_idx are left out (and not counted by 'mean')."""
    device = weight.device
    input, offsets, per_sample_weights = (
        t if t is None or hasattr(t, "shape") else creation.tensor(t, device=device)
        for t in (input, offsets, per_sample_weights))
    _check(input, offsets, mode, per_sample_weights, max_norm, scale_grad_by_freq, sparse)
    if input.ndim == 1:
        if input.shape[0] == 0:
            bags = offsets.shape[0] - (1 if include_last_offset else 0)
            return creation.zeros(bags, weight.shape[1], dtype=weight.dtype, device=device)
        positions, valid = _bags(input, offsets, include_last_offset)
        index = input[creation.tensor(positions, device=device)]
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights[creation.tensor(positions, device=device)]
        valid = creation.tensor(valid, device=device)
    else:
        index = input
        valid = creation.ones(*input.shape, dtype=backend.bool_, device=device)
    if padding_idx is not None:
        valid = ops.logical_and(valid, index != (padding_idx % weight.shape[0]))
    rows = F.embedding(index, weight, max_norm=max_norm, norm_type=norm_type)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.unsqueeze(-1).to(rows.dtype)
    keep = valid.unsqueeze(-1)
    if mode == "max":
        masked = ops.where(keep, rows, -numpy.inf)
        first = ops.argmax(masked.detach(), dim=1, keepdim=True)
        best = ops.gather(masked, 1, first).squeeze(1)
        return ops.where(ops.any(valid, dim=1, keepdim=True), best, 0)
    total = ops.sum(ops.where(keep, rows, 0), 1)
    if mode == "sum":
        return total
    count = ops.sum(valid, dim=1, keepdim=True).to(total.dtype)
    return total / ops.clamp(count, min=1)


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings, like torch.nn.EmbeddingBag: weight
    (num_embeddings, embedding_dim) initialised N(0, 1), the padding_idx row zero;
    forward(input, offsets=None, per_sample_weights=None)."""

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None):
        super().__init__()
        padding_idx = _padding_idx("EmbeddingBag", padding_idx, num_embeddings)
        if mode not in _MODES:
            raise ValueError(f"EmbeddingBag: mode has to be one of {_MODES}, got {mode!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, \
            scale_grad_by_freq
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        self.padding_idx = padding_idx
        _set_table(self, _weight, True, device, dtype)

    def reset_parameters(self):
        _reset_rows(self.weight, self.padding_idx)

    def forward(self, input, offsets=None, per_sample_weights=None):
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                             self.scale_grad_by_freq, self.mode, self.sparse, per_sample_weights,
                             self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        s += f", mode={self.mode!r}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"
