"""Attention and the Transformer encoder: the op-table checks (forward against numpy on every
backend, float64 gradcheck of first and second order, float32 staying float32) for
scaled_dot_product_attention and multi_head_attention_forward, gradchecks of the layers'
parameters, errors, and PyTorch twins with copied weights (skipped without torch)."""
import math

import numpy as np
import pytest
import test_ops as table
from op_cases import REAL, Case

import gpuad
import gpuad.nn.functional as F
from gpuad import nn
from gpuad.nn.attention import generate_square_subsequent_mask


# ---- references (numpy, float64) ---------------------------------------------------------------
def _softmax_or_zero(s):
    """softmax over the last dim; rows with every score -inf give zeros (torch's SDPA)."""
    top = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0))
    total = e.sum(-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _sdpa_ref(q, k, v, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    if enable_gqa:
        k, v = (np.repeat(t, q.shape[-3] // t.shape[-3], axis=-3) for t in (k, v))
    s = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        attn_mask = np.tril(np.ones(s.shape[-2:], bool))
    if attn_mask is not None:
        s = np.where(attn_mask, s, -np.inf) if attn_mask.dtype == bool else s + attn_mask
    return _softmax_or_zero(s) @ v


def _mha_ref(q, k, v, w_in, b_in, w_out, b_out, kpm, am, use="none", average_attn_weights=True):
    """torch's multi_head_attention_forward for sequence-first inputs and 2 heads."""
    (L, N, E), S, H = q.shape, k.shape[0], 2

    def heads(x, w, b):  # (T, N, E) -> (N, H, T, E // H)
        return (x @ w.T + b).reshape(x.shape[0], N, H, E // H).transpose(1, 2, 0, 3)
    wq, wk, wv = np.split(w_in, 3)
    bq, bk, bv = np.split(b_in, 3)
    qh, kh, vh = heads(q, wq, bq), heads(k, wk, bk), heads(v, wv, bv)
    s = qh @ np.swapaxes(kh, -1, -2) / math.sqrt(E // H)
    if use in ("attn_mask", "both"):
        bias = np.where(am, -np.inf, 0) if am.dtype == bool else am
        s = s + (bias if bias.ndim == 2 else bias.reshape(N, H, L, S))
    if use in ("key_padding_mask", "both"):
        s = s + np.where(kpm, -np.inf, 0)[:, None, None, :]
    w = _softmax_or_zero(s)
    out = (w @ vh).transpose(2, 0, 1, 3).reshape(L, N, E) @ w_out.T + b_out
    return out, (w.mean(1) if average_attn_weights else w)


# ---- inputs ------------------------------------------------------------------------------------
def _bool_mask(rng, shape, empty_row=False):
    """True = takes part; every row keeps a key unless empty_row masks all of row 1."""
    mask = rng.random(shape) > 0.4
    mask[..., 0] = True
    if empty_row:
        mask[..., 1, :] = False
    return mask


def _with_mask(mask):
    def make(rng, shapes):
        return [REAL(rng, s) for s in shapes[:3]] + [mask(rng, shapes[3])]
    return make


def _float_mask_with_infs(rng, shape):  # some keys and all of row 1 at -inf
    mask = REAL(rng, shape)
    mask[..., 2] = -np.inf
    mask[..., 1, :] = -np.inf
    return mask


def _sdpa(q, k, v, *mask, **kw):
    return F.scaled_dot_product_attention(q, k, v, *mask, **kw)


QKV = [((2, 3, 4), (2, 5, 4), (2, 5, 2)), ((3, 4), (5, 4), (5, 3)),
       ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)), ((2, 3, 4), (1, 5, 4), (1, 5, 2))]
MASKED = [((2, 3, 4), (2, 5, 4), (2, 5, 2), (3, 5)), ((2, 3, 4), (2, 5, 4), (2, 5, 2), (2, 3, 5)),
          ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3), (2, 1, 1, 5))]


def _mha(q, k, v, w_in, b_in, w_out, b_out, kpm, am, use="none", average_attn_weights=True):
    return F.multi_head_attention_forward(
        q, k, v, q.shape[-1], 2, w_in, b_in, None, None, False, 0.0, w_out, b_out,
        key_padding_mask=kpm if use in ("key_padding_mask", "both") else None,
        attn_mask=am if use in ("attn_mask", "both") else None,
        average_attn_weights=average_attn_weights)


def _mha_inputs(bool_attn_mask):
    def make(rng, shapes):
        (L, N, _), S = shapes[0], shapes[1][0]
        arrays = [REAL(rng, s) for s in shapes[:7]]
        kpm = rng.random((N, S)) > 0.7
        kpm[:, 0] = False  # True = padding; key 0 stays, so no row is empty
        am = rng.random((N * 2, L, S)) > 0.6 if bool_attn_mask else REAL(rng, (L, S))
        if bool_attn_mask:
            am[..., 0] = False
        return arrays + [kpm, am]
    return make


MHA_SHAPES = [((2, 2, 4), (3, 2, 4), (3, 2, 4), (12, 4), (12,), (4, 4), (4,), (2, 3), (2, 3))]
MHA_DIFF = tuple(range(7))  # the float attn_mask is an input too, but not one we check here

CASES = [
    Case("scaled_dot_product_attention", _sdpa, _sdpa_ref, QKV,
         kwargs=[{}, {"scale": 0.7}, {"is_causal": True}]),
    Case("scaled_dot_product_attention", _sdpa, _sdpa_ref,  # causal, L > S and L < S
         [((2, 5, 4), (2, 3, 4), (2, 3, 2)), ((3, 4), (6, 4), (6, 2))],
         kwargs=[{"is_causal": True}]),
    Case("scaled_dot_product_attention", _sdpa, _sdpa_ref, MASKED,
         make=_with_mask(_bool_mask)),
    Case("scaled_dot_product_attention", _sdpa, _sdpa_ref, MASKED[:2],
         make=_with_mask(lambda rng, s: _bool_mask(rng, s, empty_row=True))),
    Case("scaled_dot_product_attention", _sdpa, _sdpa_ref, MASKED, kwargs=[{}, {"scale": 0.5}]),
    Case("scaled_dot_product_attention", _sdpa, _sdpa_ref, MASKED[:2],
         make=_with_mask(_float_mask_with_infs), diff=(0, 1, 2)),
    Case("scaled_dot_product_attention", _sdpa, _sdpa_ref,
         [((2, 4, 3, 2), (2, 2, 5, 2), (2, 2, 5, 3))], kwargs=[{"enable_gqa": True}]),
    Case("multi_head_attention_forward", _mha, _mha_ref, MHA_SHAPES, make=_mha_inputs(False),
         kwargs=[{}, {"use": "both"}, {"use": "attn_mask", "average_attn_weights": False}],
         diff=MHA_DIFF),
    Case("multi_head_attention_forward", _mha, _mha_ref, MHA_SHAPES, make=_mha_inputs(True),
         kwargs=[{"use": "both"}], diff=MHA_DIFF),
]
test_forward, test_gradcheck, test_second_order_gradcheck, test_float32_stays_float32 = \
    table.table_tests(CASES)


def test_fully_masked_rows_give_zeros_and_zero_gradients():
    q, k, v = (gpuad.randn(*s, dtype=gpuad.float64, requires_grad=True)
               for s in ((3, 4), (5, 4), (5, 2)))
    mask = gpuad.ones(3, 5, dtype=gpuad.bool)
    mask[1] = False
    out = F.scaled_dot_product_attention(q, k, v, mask)
    out.sum().backward()
    assert (out[1].detach().numpy() == 0).all() and (q.grad[1].numpy() == 0).all()
    assert np.isfinite(k.grad.numpy()).all() and np.isfinite(v.grad.numpy()).all()


# ---- dropout ------------------------------------------------------------------------------------
def test_attention_dropout_drops_weights_and_is_seeded():
    q, k, v = gpuad.randn(2, 3, 4), gpuad.randn(2, 5, 4), gpuad.randn(2, 5, 2)
    plain = F.scaled_dot_product_attention(q, k, v).numpy()
    gpuad.manual_seed(3)
    dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    gpuad.manual_seed(3)
    again = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    assert (dropped == again).all() and not np.allclose(dropped, plain)
    assert (F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).numpy() == 0).all()


def test_multihead_attention_drops_weights_only_while_training():
    mha = nn.MultiheadAttention(4, 2, dropout=0.5)
    x = gpuad.randn(3, 2, 4)
    with gpuad.no_grad():
        mha.eval()
        out, clean = mha(x, x, x, average_attn_weights=False)
        mha.train()
        _, dropped = mha(x, x, x, average_attn_weights=False)
    clean, dropped = clean.numpy(), dropped.numpy()
    kept = dropped != 0
    assert kept.any() and not kept.all()
    np.testing.assert_allclose(dropped[kept], 2 * clean[kept], rtol=1e-6)
    mha.eval()
    with gpuad.no_grad():
        np.testing.assert_array_equal(mha(x, x, x)[0].numpy(), out.numpy())


# ---- modules: layout, gradchecks, backends -----------------------------------------------------
def _randomise(module, seed=0):
    rng = np.random.default_rng(seed)
    module.double()
    with gpuad.no_grad():
        for p in module.parameters():
            p.array[...] = rng.uniform(-0.5, 0.5, p.shape)
    return module


def test_multihead_attention_parameters_and_init():
    mha = nn.MultiheadAttention(6, 3)
    assert [(k, tuple(v.shape)) for k, v in mha.state_dict().items()] == [
        ("in_proj_weight", (18, 6)), ("in_proj_bias", (18,)), ("out_proj.weight", (6, 6)),
        ("out_proj.bias", (6,))]
    assert type(mha.out_proj).__name__ == "NonDynamicallyQuantizableLinear"
    bound = math.sqrt(6 / (18 + 6))  # xavier_uniform_ on (3E, E)
    w = mha.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > bound / 2
    assert (mha.in_proj_bias.detach().numpy() == 0).all()
    assert (mha.out_proj.bias.detach().numpy() == 0).all()
    sep = nn.MultiheadAttention(4, 2, kdim=3, vdim=5, add_bias_kv=True, bias=False)
    assert [(k, tuple(v.shape)) for k, v in sep.state_dict().items()] == [
        ("q_proj_weight", (4, 4)), ("k_proj_weight", (4, 3)), ("v_proj_weight", (4, 5)),
        ("bias_k", (1, 1, 4)), ("bias_v", (1, 1, 4)), ("out_proj.weight", (4, 4))]
    assert sep.in_proj_weight is None and sep.in_proj_bias is None


@pytest.mark.parametrize("kwargs", [{}, {"batch_first": True, "add_bias_kv": True},
                                    {"kdim": 3, "vdim": 5, "add_zero_attn": True}])
def test_multihead_attention_gradcheck(kwargs):
    mha = _randomise(nn.MultiheadAttention(4, 2, **kwargs))
    first = 0 if kwargs.get("batch_first") else 1
    rng = np.random.default_rng(1)

    def seq(n, features):
        shape = (2, n, features) if first == 0 else (n, 2, features)
        return gpuad.tensor(rng.standard_normal(shape), requires_grad=True)
    q, k, v = seq(2, 4), seq(3, mha.kdim), seq(3, mha.vdim)
    kpm = gpuad.tensor([[False, False, True], [False, True, False]])
    assert gpuad.gradcheck(lambda *_: mha(q, k, v, key_padding_mask=kpm), [
        *mha.parameters(), q, k, v])


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_gradcheck(norm_first):
    layer = _randomise(nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0,
                                                  activation="gelu", norm_first=norm_first))
    x = gpuad.tensor(np.random.default_rng(1).standard_normal((3, 2, 4)), requires_grad=True)
    mask = generate_square_subsequent_mask(3, dtype=gpuad.float64)
    assert gpuad.gradcheck(lambda *_: layer(x, src_mask=mask, is_causal=True),
                           [*layer.parameters(), x])


def test_modules_run_on_every_backend(device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4))
    kpm = np.array([[False, False, True], [False, False, False]])
    layer = _randomise(nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, batch_first=True))
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(4)).double().eval()
    mha = _randomise(nn.MultiheadAttention(4, 2, batch_first=True))
    want = [encoder(gpuad.tensor(x), src_key_padding_mask=gpuad.tensor(kpm)).detach().numpy(),
            mha(gpuad.tensor(x), gpuad.tensor(x), gpuad.tensor(x))[1].detach().numpy()]
    encoder.to(device), mha.to(device)
    xd = gpuad.tensor(x, device=device)
    got = [encoder(xd, src_key_padding_mask=gpuad.tensor(kpm, device=device)), mha(xd, xd, xd)[1]]
    for g, w in zip(got, want):
        assert g.device == gpuad.device(device)
        np.testing.assert_allclose(gpuad.backend.asnumpy(g.array), w, rtol=1e-12)


def test_transformer_training_step_never_syncs_with_the_host():
    """Masks, padding, the empty-row guard and dropout all stay on the device (CuPy's too)."""
    from gpuad.testing.strict import forbid_host_sync
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.RMSNorm(8)).to("strict")
    norm = nn.GroupNorm(2, 8).to("strict")
    x = gpuad.randn(2, 5, 8, device="strict")
    mask = generate_square_subsequent_mask(5, device="strict")
    padding = gpuad.tensor([[False] * 5, [False, False, True, True, True]], device="strict")
    with forbid_host_sync():
        out = encoder(x, mask=mask, src_key_padding_mask=padding, is_causal=True)
        loss = norm(out.swapaxes(1, 2)).square().mean()
        loss.backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_transformer_encoder_clones_the_layer():
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6)
    encoder = nn.TransformerEncoder(layer, 3)
    assert len(encoder.layers) == 3 and encoder.norm is None
    assert encoder.layers[0].linear1.weight is not layer.linear1.weight
    np.testing.assert_array_equal(encoder.layers[2].linear1.weight.detach().numpy(),
                                  layer.linear1.weight.detach().numpy())
    assert next(iter(encoder.state_dict())) == "layers.0.self_attn.in_proj_weight"


# ---- errors -------------------------------------------------------------------------------------
def test_errors_name_the_op_the_shapes_and_the_fix():
    q, k, v = gpuad.randn(2, 3, 4), gpuad.randn(2, 5, 4), gpuad.randn(2, 5, 6)
    sdpa = F.scaled_dot_product_attention
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: attn_mask of shape "
                                         r"\(4, 5\) .*\(2, 3, 5\).*pass an \(L, S\) = \(3, 5\)"):
        sdpa(q, k, v, gpuad.ones(4, 5, dtype=gpuad.bool))
    with pytest.raises(ValueError, match="either attn_mask or is_causal=True, not both"):
        sdpa(q, k, v, gpuad.ones(3, 5, dtype=gpuad.bool), is_causal=True)
    with pytest.raises(ValueError, match=r"share the feature size E .*: 4 vs 3"):
        sdpa(q, gpuad.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match=r"share the source length S: 5 vs 4"):
        sdpa(q, k, gpuad.randn(2, 4, 6))
    with pytest.raises(TypeError, match="attn_mask must be a bool or floating tensor, got dtype "
                                        "int64"):
        sdpa(q, k, v, gpuad.ones(3, 5, dtype=gpuad.int64))
    with pytest.raises(ValueError, match=r"MultiheadAttention: embed_dim \(5\) must be divisible "
                                         r"by num_heads \(2\).*pick num_heads dividing 5"):
        nn.MultiheadAttention(5, 2)
    mha, x = nn.MultiheadAttention(4, 2), gpuad.randn(3, 2, 4)
    with pytest.raises(ValueError, match=r"MultiheadAttention: attn_mask of shape \(3, 4\).*"
                                         r"expected \(L, S\) = \(3, 3\) or .* = \(4, 3, 3\)"):
        mha(x, x, x, attn_mask=gpuad.zeros(3, 4))
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(3, 2\).*expected \(N, S\) "
                                         r"= \(2, 3\)"):
        mha(x, x, x, key_padding_mask=gpuad.zeros(3, 2, dtype=gpuad.bool))
    with pytest.raises(ValueError, match="is_causal=True is only a hint.*"
                                         r"generate_square_subsequent_mask\(3\)"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match=r"query \(3, 2, 5\) has 5 features.*embed_dim=4"):
        mha(gpuad.randn(3, 2, 5), x, x)
    with pytest.raises(ValueError, match=r"key \(3, 2, 3\) and value \(3, 2, 3\) must have "
                                         r"kdim=4 and vdim=4"):
        mha(x, gpuad.randn(3, 2, 3), gpuad.randn(3, 2, 3))
    with pytest.raises(ValueError, match="activation should be 'relu', 'gelu' or a callable"):
        nn.TransformerEncoderLayer(4, 2, activation="tanh")


# ---- PyTorch twins ------------------------------------------------------------------------------
def _copied(ours, theirs, torch, seed=0):
    """theirs with random float64 weights, loaded into ours through state_dict."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) - 0.5)
    ours.double().load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours


def _close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-12,
                               err_msg=what)


def _compare_with_grads(ours_fn, theirs_fn, arrays, ours_module, theirs_module, torch):
    """Run both on the same float64 inputs; compare outputs, then the gradients of a random
    weighted sum with respect to every input and parameter."""
    xs = [gpuad.tensor(a, requires_grad=True) for a in arrays]
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    outs, touts = ours_fn(*xs), theirs_fn(*txs)
    rng = np.random.default_rng(7)
    total, ttotal = 0, 0
    for i, (o, t) in enumerate(zip(outs, touts)):
        assert (o is None) == (t is None), i
        if o is None:
            continue
        _close(o.detach().numpy(), t, f"output {i}")
        w = rng.standard_normal(o.shape)
        total, ttotal = total + (o * gpuad.tensor(w)).sum(), ttotal + (t * torch.tensor(w)).sum()
    total.backward()
    ttotal.backward()
    for i, (x, tx) in enumerate(zip(xs, txs)):
        _close(x.grad.numpy(), tx.grad, f"grad of input {i}")
    theirs_params = dict(theirs_module.named_parameters())
    for name, p in ours_module.named_parameters():
        _close(p.grad.numpy(), theirs_params[name].grad, f"grad of {name}")


SDPA_TWINS = {"plain": {}, "causal": {"is_causal": True}, "scale": {"scale": 0.3},
              "bool mask": {"attn_mask": "bool"}, "float mask": {"attn_mask": "float"},
              "2-D bool mask and scale": {"attn_mask": "bool2d", "scale": 2.0}}


@pytest.mark.parametrize("name", list(SDPA_TWINS))
def test_sdpa_matches_torch(name):
    """Including rows with every key masked: zeros and zero gradients in both."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s) for s in ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)))
    kwargs = dict(SDPA_TWINS[name])
    mask = {"bool": lambda: _bool_mask(rng, (2, 1, 3, 5), empty_row=True),
            "bool2d": lambda: _bool_mask(rng, (3, 5), empty_row=True),
            "float": lambda: _float_mask_with_infs(rng, (3, 5))}.get(kwargs.pop("attn_mask", None))
    mask = None if mask is None else mask()

    def run(sdpa, tensor):
        return lambda *xs: [sdpa(*xs, None if mask is None else tensor(mask), **kwargs)]
    _compare_with_grads(run(F.scaled_dot_product_attention, gpuad.tensor),
                        run(torch.nn.functional.scaled_dot_product_attention, torch.tensor),
                        [q, k, v], nn.Module(), torch.nn.Module(), torch)


def test_sdpa_gqa_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s) for s in ((1, 4, 3, 2), (1, 2, 5, 2), (1, 2, 5, 3)))
    _compare_with_grads(
        lambda *xs: [F.scaled_dot_product_attention(*xs, enable_gqa=True)],
        lambda *xs: [torch.nn.functional.scaled_dot_product_attention(*xs, enable_gqa=True)],
        [q, k, v], nn.Module(), torch.nn.Module(), torch)


MHA_CONFIGS = [
    ({}, {}),
    ({"batch_first": True}, {"need_weights": False}),
    ({}, {"key_padding_mask": "bool", "average_attn_weights": False}),
    ({"batch_first": True}, {"attn_mask": "bool", "key_padding_mask": "bool"}),
    ({}, {"attn_mask": "float", "key_padding_mask": "float"}),
    ({"batch_first": True}, {"attn_mask": "bool3d"}),
    ({}, {"attn_mask": "causal", "is_causal": True, "need_weights": False}),
    ({"bias": False}, {"key_padding_mask": "bool"}),
    ({"add_bias_kv": True}, {"attn_mask": "bool", "key_padding_mask": "bool"}),
    ({"add_zero_attn": True, "batch_first": True}, {"key_padding_mask": "bool"}),
    ({"add_bias_kv": True, "add_zero_attn": True}, {}),
    ({"kdim": 3, "vdim": 5}, {"key_padding_mask": "bool"}),
    ({"kdim": 3, "vdim": 5, "batch_first": True}, {"attn_mask": "float"}),
]


def _mask(rng, kind, shape):
    if kind == "causal":
        return np.triu(np.ones(shape, bool), 1)
    if kind == "float":
        return rng.standard_normal(shape)
    mask = rng.random(shape) > 0.6
    mask[..., 0] = False  # True = masked out; key 0 stays, so no row is empty (torch: NaN)
    return mask


@pytest.mark.parametrize("init,call", MHA_CONFIGS, ids=[f"{i}-{c}" for i, c in MHA_CONFIGS])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_multihead_attention_matches_torch(init, call, cross):
    torch = pytest.importorskip("torch")
    E, H, L, S, N = 4, 2, 3, (4 if cross else 3), 2
    theirs = torch.nn.MultiheadAttention(E, H, dtype=torch.float64, **init)
    ours = _copied(nn.MultiheadAttention(E, H, **init), theirs, torch)
    separate = "kdim" in init
    rng = np.random.default_rng(1)
    batch_first = init.get("batch_first", False)

    def seq(n, features):
        return rng.standard_normal((N, n, features) if batch_first else (n, N, features))
    q = seq(L, E)
    k, v = (seq(S, ours.kdim), seq(S, ours.vdim)) if cross or separate else (q, q)
    kwargs = dict(call)
    masks = {}
    if "attn_mask" in call:
        kind = kwargs.pop("attn_mask")
        masks["attn_mask"] = _mask(rng, kind, (N * H, L, S) if kind == "bool3d" else (L, S))
    if "key_padding_mask" in call:
        masks["key_padding_mask"] = _mask(rng, kwargs.pop("key_padding_mask"), (N, S))
    arrays = [q] if not (cross or separate) else [q, k, v]

    def run(module, tensor):
        def fn(*xs):
            q, k, v = xs if len(xs) == 3 else xs * 3
            return module(q, k, v, **kwargs, **{key: tensor(m) for key, m in masks.items()})
        return fn
    _compare_with_grads(run(ours, gpuad.tensor), run(theirs, torch.tensor), arrays, ours, theirs,
                        torch)


def test_multihead_attention_unbatched_matches_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.MultiheadAttention(4, 2, batch_first=True, dtype=torch.float64)
    ours = _copied(nn.MultiheadAttention(4, 2, batch_first=True), theirs, torch)
    rng = np.random.default_rng(2)
    q, k = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    kpm = np.array([False, True, False, False, True])
    _compare_with_grads(
        lambda q, k: ours(q, k, k, key_padding_mask=gpuad.tensor(kpm)),
        lambda q, k: theirs(q, k, k, key_padding_mask=torch.tensor(kpm)), [q, k], ours, theirs,
        torch)


def test_multihead_attention_fully_padded_rows_are_zeros_like_torchs_fast_path():
    """torch gives zeros with need_weights=False (its SDPA) and NaN with need_weights=True; gpuad
    gives zeros (and zero weights) in both, so a padded sequence never poisons a batch."""
    torch = pytest.importorskip("torch")
    theirs = torch.nn.MultiheadAttention(4, 2, batch_first=True, dtype=torch.float64)
    ours = _copied(nn.MultiheadAttention(4, 2, batch_first=True), theirs, torch)
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    kpm = np.array([[False, False, True], [True, True, True]])
    out, weights = ours(gpuad.tensor(x), gpuad.tensor(x), gpuad.tensor(x),
                        key_padding_mask=gpuad.tensor(kpm))
    tx = torch.tensor(x)
    tout, _ = theirs(tx, tx, tx, key_padding_mask=torch.tensor(kpm), need_weights=False)
    _close(out.detach().numpy(), tout, "output")
    assert (weights[1].detach().numpy() == 0).all()
    assert torch.isnan(theirs(tx, tx, tx, key_padding_mask=torch.tensor(kpm))[1][1]).all()


LAYER_CONFIGS = [
    {},
    {"norm_first": True, "batch_first": True},
    {"activation": "gelu", "bias": False},
    {"norm_first": True, "activation": "callable", "layer_norm_eps": 1e-3},
]


@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=[str(c) for c in LAYER_CONFIGS])
@pytest.mark.parametrize("masks", ["none", "causal", "padding"])
def test_transformer_encoder_layer_matches_torch(config, masks):
    """Eval mode, so dropout is off in both; grad on, so torch takes its reference path."""
    torch = pytest.importorskip("torch")
    ours_kw, theirs_kw = dict(config), dict(config)
    if config.get("activation") == "callable":
        ours_kw["activation"] = F.silu
        theirs_kw["activation"] = torch.nn.functional.silu
    theirs = torch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dtype=torch.float64,
                                              **theirs_kw).eval()
    ours = _copied(nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, **ours_kw), theirs,
                   torch).eval()
    batch_first = config.get("batch_first", False)
    x = np.random.default_rng(4).standard_normal((2, 3, 4) if batch_first else (3, 2, 4))
    kw, tkw = {}, {}
    if masks == "causal":
        kw = {"src_mask": generate_square_subsequent_mask(3, dtype=gpuad.float64),
              "is_causal": True}
        tkw = {"src_mask": torch.nn.Transformer.generate_square_subsequent_mask(
            3, dtype=torch.float64), "is_causal": True}
    elif masks == "padding":
        kpm = np.array([[False, False, True], [False, False, False]])
        kw, tkw = {"src_key_padding_mask": gpuad.tensor(kpm)}, {
            "src_key_padding_mask": torch.tensor(kpm)}
    _compare_with_grads(lambda x: [ours(x, **kw)], lambda x: [theirs(x, **tkw)], [x], ours,
                        theirs, torch)


def test_transformer_encoder_matches_torch():
    torch = pytest.importorskip("torch")
    layer = torch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dtype=torch.float64)
    theirs = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(4, dtype=torch.float64),
                                         enable_nested_tensor=False).eval()
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, dim_feedforward=6), 2,
                                 norm=nn.LayerNorm(4))
    ours = _copied(ours, theirs, torch).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(5).standard_normal((3, 2, 4))
    kpm = np.array([[False, True, False], [False, False, False]])
    _compare_with_grads(
        lambda x: [ours(x, src_key_padding_mask=gpuad.tensor(kpm))],
        lambda x: [theirs(x, src_key_padding_mask=torch.tensor(kpm))], [x], ours, theirs, torch)


def test_generate_square_subsequent_mask_matches_torch():
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(generate_square_subsequent_mask(4).numpy(),
                                  torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
