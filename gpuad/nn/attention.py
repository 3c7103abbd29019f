"""Attention with torch.nn's semantics, parameter names and layouts (state_dicts map one to one):
scaled_dot_product_attention, multi_head_attention_forward, MultiheadAttention. The Transformer
layers built on it live in transformer.py (still importable from here).

Everything is composed from gpuad ops (matmul, softmax, where, linear), so it runs on numpy and
CuPy alike and is differentiable to any order. A fused attention primitive would save the
(L, S) weights' memory on long sequences but would need its own second-order rule; not yet.
nn.functional re-exports the two functions.
"""
import math

import numpy

from .. import backend, creation, ops
from ..tensor import Tensor
from . import functional as F
from . import init
from .checks import check_dtypes
from .layers import Linear
from .module import Module, Parameter


# ---- scaled dot-product attention --------------------------------------------------------------
def _as_mask(name, what, mask, like):
    """mask as a bool or floating Tensor on like's device (floats in like's dtype)."""
    if not isinstance(mask, Tensor):
        mask = creation.tensor(mask, device=like.device)
    if mask.device != like.device:
        raise RuntimeError(f"{name}: {what} is on {mask.device} but the query is on "
                           f"{like.device}; move it with .to({str(like.device)!r})")
    if mask.dtype.kind == "f":
        return mask.to(like.dtype)  # torch insists on the query's dtype; casting is kinder
    if mask.dtype.kind != "b":
        raise TypeError(f"{name}: {what} must be a bool or floating tensor, got dtype "
                        f"{mask.dtype} (shape {tuple(mask.shape)})")
    return mask


def _check_qkv(name, query, key, value):
    q, k, v = (tuple(t.shape) for t in (query, key, value))
    fix = None
    if min(len(q), len(k), len(v)) < 2:
        fix = "each needs at least 2 dims"
    elif q[-1] != k[-1]:
        fix = f"query and key must share the feature size E (last dim): {q[-1]} vs {k[-1]}"
    elif k[-2] != v[-2]:
        fix = f"key and value must share the source length S: {k[-2]} vs {v[-2]}"
    else:
        try:
            numpy.broadcast_shapes(q[:-2], k[:-2], v[:-2])
        except ValueError:
            fix = "their leading (batch, head) dims must broadcast"
    if fix:
        raise ValueError(f"{name}: query {q}, key {k} and value {v} do not fit (..., L, E), "
                         f"(..., S, E), (..., S, Ev): {fix}")


def _repeat_heads(x, groups):
    """(..., H, S, E) -> (..., H * groups, S, E), each head repeated in turn (repeat_interleave)."""
    shape = tuple(x.shape)
    wide = ops.expand(x.unsqueeze(-3), shape[:-2] + (groups,) + shape[-2:])
    return wide.reshape(shape[:-3] + (shape[-3] * groups,) + shape[-2:])


def _attention_weights(name, query, key, attn_mask, is_causal, scale):
    """softmax(query @ key^T * scale + mask) over the keys. A row whose keys are all masked out
    comes out as zeros, as torch's scaled_dot_product_attention gives since 2.5, instead of the
    0/0 = NaN of a plain softmax; its gradients are zeros too."""
    scores = ops.matmul(query * scale, key.swapaxes(-2, -1))
    L, S = scores.shape[-2:]
    if is_causal:  # upper-left aligned like torch's: query i sees keys 0..i, never an empty row
        keep = creation.ones(L, S, dtype=backend.bool_, device=query.device).tril()
        return F.softmax(ops.where(keep, scores, -math.inf), -1)
    if attn_mask is None:
        return F.softmax(scores, -1)
    shape = tuple(scores.shape)
    try:
        fits = numpy.broadcast_shapes(tuple(attn_mask.shape), shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: attn_mask of shape {tuple(attn_mask.shape)} does not broadcast "
                         f"to the attention weights' shape {shape} (..., L, S) of query "
                         f"{tuple(query.shape)} and key {tuple(key.shape)}; pass an (L, S) = "
                         f"({L}, {S}) mask or one that broadcasts to {shape}")
    if attn_mask.dtype.kind == "b":
        scores = ops.where(attn_mask, scores, -math.inf)
        empty = ops.logical_not(ops.any(attn_mask, dim=-1, keepdim=True))
    else:
        scores = scores + attn_mask
        empty = ops.all(attn_mask == -math.inf, dim=-1, keepdim=True)
    # an empty row gets finite scores, so the softmax and its gradient stay NaN-free, then zeros
    weights = F.softmax(ops.where(empty, 0.0, scores), -1)
    return ops.where(empty, 0.0, weights)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, *, scale=None, enable_gqa=False):
    """softmax(query @ key^T * scale + mask) @ value for query (..., L, E), key (..., S, E) and
    value (..., S, Ev), like torch.nn.functional.scaled_dot_product_attention.

    attn_mask broadcasts to (..., L, S): bool means True = takes part, float is added to the
    scores. is_causal masks key j > query i (upper-left aligned); it excludes attn_mask, as in
    torch. scale defaults to 1/sqrt(E). Rows with every key masked give zeros (torch >= 2.5).
    dropout_p > 0 drops attention weights whether or not a module is training, as in torch.
    enable_gqa repeats the key/value heads (dim -3) to match the query's."""
    name = "scaled_dot_product_attention"
    if is_causal and attn_mask is not None:
        raise ValueError(f"{name}: pass either attn_mask or is_causal=True, not both (torch "
                         f"refuses this too); fold the causal mask into attn_mask instead")
    if enable_gqa:
        if (min(query.ndim, key.ndim, value.ndim) < 3 or query.shape[-3] % key.shape[-3]
                or value.shape[-3] != key.shape[-3]):
            raise ValueError(f"{name}: enable_gqa needs query (..., Hq, L, E) and key/value "
                             f"(..., H, S, E) with Hq divisible by H; got query "
                             f"{tuple(query.shape)}, key {tuple(key.shape)}, value "
                             f"{tuple(value.shape)}")
        groups = query.shape[-3] // key.shape[-3]
        key, value = _repeat_heads(key, groups), _repeat_heads(value, groups)
    _check_qkv(name, query, key, value)
    if attn_mask is not None:
        attn_mask = _as_mask(name, "attn_mask", attn_mask, query)
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    weights = _attention_weights(name, query, key, attn_mask, is_causal, scale)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return ops.matmul(weights, value)


# ---- multi-head attention ------------------------------------------------------------------------
def _additive(name, what, mask, like):
    """An MHA mask as scores to add: bool means True = masked out (the opposite of
    scaled_dot_product_attention's convention, as in torch) and becomes -inf / 0."""
    mask = _as_mask(name, what, mask, like)
    if mask.dtype.kind == "b":
        return ops.where(mask, -math.inf, 0.0).to(like.dtype)
    return mask


def _check_mha(name, query, key, value, embed_dim, num_heads, key_padding_mask, attn_mask,
               kdim, vdim):
    """torch's _mha_shape_check and friends, with the shapes and the fix in each message."""
    q, k, v = (tuple(t.shape) for t in (query, key, value))
    batched = len(q) == 3
    if len(q) not in (2, 3) or len(k) != len(q) or len(v) != len(q):
        raise ValueError(f"{name}: query {q}, key {k} and value {v} must all be batched 3-D "
                         f"(L, N, E) (or (N, L, E) with batch_first=True) or all unbatched 2-D "
                         f"(L, E)")
    if q[-1] != embed_dim:
        raise ValueError(f"{name}: query {q} has {q[-1]} features in its last dim; expected "
                         f"embed_dim={embed_dim}")
    if embed_dim % num_heads:
        raise ValueError(f"{name}: embed_dim {embed_dim} is not divisible by num_heads "
                         f"{num_heads}; pick num_heads dividing embed_dim")
    if k[:-1] != v[:-1] or (batched and k[1] != q[1]):
        raise ValueError(f"{name}: key {k} and value {v} must share their sequence and batch "
                         f"dims, and the batch size of query {q}")
    if (k[-1], v[-1]) != (kdim, vdim):
        raise ValueError(f"{name}: key {k} and value {v} must have kdim={kdim} and vdim={vdim} "
                         f"features in their last dim (the projection weights' input sizes)")
    S = k[0]
    if key_padding_mask is not None:
        want = (q[1], S) if batched else (S,)
        if tuple(key_padding_mask.shape) != want:
            raise ValueError(f"{name}: key_padding_mask of shape {tuple(key_padding_mask.shape)} "
                             f"does not fit key {k}; expected (N, S) = {want} (True = padding)")
    if attn_mask is not None:
        m, L = tuple(attn_mask.shape), q[0]
        heads = (q[1] if batched else 1) * num_heads
        if m not in ((L, S), (heads, L, S)):
            raise ValueError(f"{name}: attn_mask of shape {m} does not fit query {q} and key {k}; "
                             f"expected (L, S) = {(L, S)} or (N * num_heads, L, S) = "
                             f"{(heads, L, S)}")


def _in_projection(query, key, value, w, b, separate):
    """Project q, k, v. Self-attention with the packed (3E, E) weight is one matmul, as in
    torch's _in_projection_packed."""
    if separate:
        ws = w
    else:
        if query is key and key is value:
            return ops.chunk(F.linear(query, w, b), 3, dim=-1)
        ws = ops.chunk(w, 3)
    bs = (None,) * 3 if b is None else ops.chunk(b, 3)
    return tuple(F.linear(x, wi, bi) for x, wi, bi in zip((query, key, value), ws, bs))


def _multi_head_attention(name, query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                          in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight,
                          out_proj_bias, training=True, key_padding_mask=None, need_weights=True,
                          attn_mask=None, use_separate_proj_weight=False, q_proj_weight=None,
                          k_proj_weight=None, v_proj_weight=None, static_k=None, static_v=None,
                          average_attn_weights=True, is_causal=False):
    if key_padding_mask is not None:
        key_padding_mask = _additive(name, "key_padding_mask", key_padding_mask, query)
    if attn_mask is not None:
        attn_mask = _additive(name, "attn_mask", attn_mask, query)
    elif is_causal:
        raise ValueError(f"{name}: is_causal=True is only a hint that attn_mask is causal (as in "
                         f"torch); pass the mask too, e.g. attn_mask=gpuad.nn.attention."
                         f"generate_square_subsequent_mask({query.shape[0]})")
    kdim, vdim = ((k_proj_weight.shape[1], v_proj_weight.shape[1]) if use_separate_proj_weight
                  else (embed_dim_to_check, embed_dim_to_check))
    _check_mha(name, query, key, value, embed_dim_to_check, num_heads, key_padding_mask,
               attn_mask, kdim, vdim)
    batched = query.ndim == 3
    if not batched:
        query, key, value = _seq_first_views(query, key, value, lambda t: t.unsqueeze(1))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    head_dim = E // num_heads
    proj = ((q_proj_weight, k_proj_weight, v_proj_weight) if use_separate_proj_weight
            else in_proj_weight)
    q, k, v = _in_projection(query, key, value, proj, in_proj_bias, use_separate_proj_weight)

    def heads(t):  # (S, N, E) -> (N, num_heads, S, head_dim)
        return t.reshape((t.shape[0], N, num_heads, head_dim)).permute(1, 2, 0, 3)

    extra = 0  # key positions appended below, which every mask must let through
    if bias_k is not None and bias_v is not None:
        k = ops.cat([k, bias_k.expand(1, N, E)])
        v = ops.cat([v, bias_v.expand(1, N, E)])
        extra += 1
    elif bias_k is not None or bias_v is not None:
        raise ValueError(f"{name}: bias_k and bias_v must be given together")
    q, k, v = heads(q), heads(k), heads(v)
    if static_k is not None:  # precomputed (N * num_heads, S, head_dim) keys/values, as in torch
        k = static_k.reshape((N, num_heads) + tuple(static_k.shape[1:]))
    if static_v is not None:
        v = static_v.reshape((N, num_heads) + tuple(static_v.shape[1:]))
    if add_zero_attn:
        zeros = creation.zeros(N, num_heads, 1, head_dim, dtype=q.dtype, device=q.device)
        k, v = ops.cat([k, zeros], dim=2), ops.cat([v, zeros], dim=2)
        extra += 1
    mask = None
    if attn_mask is not None:
        mask = attn_mask if attn_mask.ndim == 2 else attn_mask.reshape(
            (N, num_heads) + tuple(attn_mask.shape[1:]))
    if key_padding_mask is not None:
        padding = key_padding_mask.reshape((N, 1, 1, key_padding_mask.shape[-1]))
        mask = padding if mask is None else mask + padding
    if mask is not None and extra:
        mask = ops.pad(mask, (0, extra))
    weights = _attention_weights(name, q, k, mask, False, 1 / math.sqrt(head_dim))
    if training and dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    out = ops.matmul(weights, v).permute(2, 0, 1, 3).reshape((L, N, E))
    out = F.linear(out, out_proj_weight, out_proj_bias)
    if not need_weights:
        weights = None
    elif average_attn_weights:
        weights = ops.mean(weights, 1)
    if not batched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """Multi-head attention on sequence-first inputs (L, N, E) / (S, N, E), or unbatched (L, E),
    with torch.nn.functional.multi_head_attention_forward's arguments and masks: bool masks mean
    True = masked out; attn_mask is (L, S) or (N * num_heads, L, S), key_padding_mask (N, S).
    Returns (output (L, N, E), weights: (N, L, S) averaged over heads, (N, num_heads, L, S) per
    head, or None).

    Unlike torch, a query row whose keys are all masked gives zeros in both paths; torch gives
    zeros with need_weights=False and NaN with need_weights=True."""
    return _multi_head_attention("multi_head_attention_forward", **locals())


def _seq_first_views(query, key, value, move):
    """move() applied once per distinct tensor, so self-attention stays recognisably q is k is v."""
    moved = {}
    for t in (query, key, value):
        if id(t) not in moved:
            moved[id(t)] = move(t)
    return moved[id(query)], moved[id(key)], moved[id(value)]


class NonDynamicallyQuantizableLinear(Linear):
    """torch's class name for MultiheadAttention.out_proj; a plain Linear here."""


class MultiheadAttention(Module):
    """Multi-head attention, like torch.nn.MultiheadAttention: the same parameters (in_proj_weight
    (3E, E), or q/k/v_proj_weight when kdim/vdim differ from embed_dim; in_proj_bias (3E);
    out_proj; bias_k/bias_v), the same initialisation and masks (bool True = masked out).
    forward returns (output, attention weights averaged over heads, or per head, or None)."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads}): each head gets embed_dim // num_heads "
                             f"features; pick num_heads dividing {embed_dim}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first, self.add_zero_attn = dropout, batch_first, add_zero_attn
        kw = {"device": device, "dtype": dtype}

        def param(*shape):
            return Parameter(creation.empty(*shape, **kw))
        if self._qkv_same_embed_dim:
            self.in_proj_weight = param(3 * embed_dim, embed_dim)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = param(embed_dim, embed_dim)
            self.k_proj_weight = param(embed_dim, self.kdim)
            self.v_proj_weight = param(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        self.register_parameter("in_proj_bias", param(3 * embed_dim) if bias else None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k, self.bias_v = param(1, 1, embed_dim), param(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self):
        """torch's: Xavier-uniform projections, zero biases, Xavier-normal bias_k/bias_v; out_proj
        keeps Linear's weight initialisation."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias), init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k), init.xavier_normal_(self.bias_v)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        """query (N, L, E) with batch_first, (L, N, E) without, or unbatched (L, E); key and value
        alike with S positions and kdim / vdim features. key_padding_mask (N, S) and attn_mask
        (L, S) or (N * num_heads, L, S): bool True = masked out, floats are added to the scores.
        is_causal is a hint that attn_mask is causal, so attn_mask is required, as in torch."""
        check_dtypes(self, query, *self._parameters.values(),
                        *self.out_proj._parameters.values())
        for what, t in (("key", key), ("value", value)):
            check_dtypes(self, t, query, what="query", subject=f"the {what}")
        batch_first = self.batch_first and query.ndim == 3
        if batch_first:
            query, key, value = _seq_first_views(query, key, value, lambda t: t.swapaxes(0, 1))
        out, weights = _multi_head_attention(
            "MultiheadAttention", query, key, value, self.embed_dim, self.num_heads,
            self.in_proj_weight, self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn,
            self.dropout, self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight, average_attn_weights=average_attn_weights,
            is_causal=is_causal)
        return (out.swapaxes(0, 1) if batch_first else out), weights


def generate_square_subsequent_mask(sz, device=None, dtype=None):
    """The (sz, sz) causal float mask, -inf above the diagonal and 0 elsewhere, like
    torch.nn.Transformer.generate_square_subsequent_mask."""
    above = creation.ones(sz, sz, dtype=backend.bool_, device=device).triu(1)
    return ops.where(above, -math.inf, 0.0).to(dtype or backend.DEFAULT_FLOAT)


def __getattr__(name):
    if name in ("TransformerEncoder", "TransformerEncoderLayer"):  # moved to transformer.py
        from . import transformer
        return getattr(transformer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
