"""gpuad.func.vmap: each batching rule against the loop over examples (on every backend, and
without falling back), in_dims/out_dims/chunk_size/randomness, torch's errors, composition with
grad, vjp, jacrev and hessian (per-example gradients of an MLP against the loop and against
torch.func), nesting, and the per-example fallback (taken, counted, warned about in debug mode)."""
import sys

import numpy as np
import pytest

import gpuad
import gpuad.nn as nn
import gpuad.nn.functional as Fn
from gpuad import backend
from gpuad.func import functional_call, grad, hessian, jacrev, record_fallbacks, vjp, vmap

F64 = gpuad.float64


def host(t):
    return backend.asnumpy(t.detach().array)


def data(device, *shape, seed=0, ints=None):
    rng = np.random.default_rng(seed + sum(shape))
    if ints is not None:
        return gpuad.tensor(rng.integers(0, ints, shape), device=device)
    return gpuad.tensor(rng.normal(size=shape), dtype=F64, device=device)


def loop(f, args, dims):
    """f applied to each example and the results stacked: what vmap must equal."""
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    outs = [f(*(a if d is None else a[(slice(None),) * d + (i,)] for a, d in zip(args, dims)))
            for i in range(size)]
    if isinstance(outs[0], tuple):
        return tuple(np.stack([host(o[k]) for o in outs]) for k in range(len(outs[0])))
    return np.stack([host(o) for o in outs])


def spd(device):
    a = data(device, 4, 3, 3, seed=9)
    return a @ a.mT + 3 * gpuad.eye(3, dtype=F64, device=device)


# (id, f, inputs: device -> tuple, in_dims); every row has a batching rule (no fallback)
ROWS = [
    ("sum", lambda a: a.sum(), lambda d: (data(d, 4, 3, 5),), 0),
    ("sum_dims_keepdim", lambda a: a.sum((0, -1), keepdim=True), lambda d: (data(d, 4, 3, 5),), 0),
    ("mean_var_std", lambda a: a.mean(0) + a.var(1).sum() + a.std(), lambda d: (data(d, 4, 3, 5),),
     0),
    ("max_dim", lambda a: a.max(1), lambda d: (data(d, 4, 3, 5),), 0),
    ("argmax_all", lambda a: a.argmax(), lambda d: (data(d, 4, 3, 5),), 0),
    ("logsumexp_cumsum", lambda a: a.logsumexp(1).sum() + a.cumsum(0),
     lambda d: (data(d, 4, 3, 5),), 0),
    ("softmax", lambda a: Fn.softmax(a, -1) + Fn.log_softmax(a, 0),
     lambda d: (data(d, 4, 3, 5),), 0),
    ("broadcast_pair", lambda a, b: a * b - b, lambda d: (data(d, 4, 3, 5), data(d, 4, 5)), 0),
    ("shared_operand", lambda a, b: gpuad.where(a > 0, a, b), lambda d: (data(d, 4, 5),
                                                                        data(d, 3, 5)), (0, None)),
    ("matmul_vector_matrix", lambda a, w: a @ w, lambda d: (data(d, 4, 5), data(d, 5, 2)),
     (0, None)),
    ("matmul_matrix_vector", lambda a, w: w @ a, lambda d: (data(d, 4, 5), data(d, 2, 5)),
     (0, None)),
    ("matmul_both_batched", lambda a, b: a @ b, lambda d: (data(d, 4, 3, 5), data(d, 4, 5)), 0),
    ("matmul_dot", lambda a, b: a @ b, lambda d: (data(d, 4, 5), data(d, 4, 5)), 0),
    ("matmul_batched_matrices", lambda a, w: w @ a, lambda d: (data(d, 4, 3, 5), data(d, 2, 3, 3)),
     (0, None)),
    ("shape_ops", lambda a: a.reshape(-1, 3).T.unsqueeze(0).expand(2, 3, 5).flip(1),
     lambda d: (data(d, 4, 3, 5),), 0),
    ("permute_squeeze", lambda a: a.permute(1, 0).unsqueeze(1).squeeze(1),
     lambda d: (data(d, 4, 3, 5),), 0),
    ("getitem_basic", lambda a: a[1:, ::2].sum(-1, keepdim=True) + a[-1, None],
     lambda d: (data(d, 4, 3, 5),), 0),
    ("getitem_list", lambda a: a[:, [0, 2, 2]], lambda d: (data(d, 4, 3, 5),), 0),
    ("getitem_batched_index", lambda a, i: a[i], lambda d: (data(d, 4, 3, 5),
                                                              data(d, 4, ints=3)), 0),
    ("getitem_batched_index_after_slice", lambda a, i: a[:, i],
     lambda d: (data(d, 4, 3, 5), data(d, 4, ints=5)), 0),
    ("getitem_table_by_batched_index", lambda t, i: t[i], lambda d: (data(d, 6, 2),
                                                                       data(d, 4, 3, ints=6)),
     (None, 0)),
    ("cat_stack_split", lambda a: gpuad.cat([a, gpuad.stack(a.split(1, 0), 0)[0]], 0),
     lambda d: (data(d, 4, 3, 5),), 0),
    ("cat_with_shared", lambda a, b: gpuad.cat([a, b], 0), lambda d: (data(d, 4, 3, 5),
                                                                      data(d, 2, 5)), (0, None)),
    ("gather", lambda a, i: a.gather(1, i), lambda d: (data(d, 4, 3, 5), data(d, 4, 3, 2, ints=5)),
     0),
    ("index_select", lambda a: a.index_select(1, gpuad.tensor([0, 4], device=a.device)),
     lambda d: (data(d, 4, 3, 5),), 0),
    ("einsum", lambda a, w: gpuad.einsum("ij,jk->ik", a, w), lambda d: (data(d, 4, 3, 5),
                                                                        data(d, 5, 2)), (0, None)),
    ("linear_layer_norm", lambda a, w: Fn.layer_norm(Fn.linear(a, w, w[:, 0]), (2,)),
     lambda d: (data(d, 4, 3, 5), data(d, 2, 5)), (0, None)),
    ("per_example_weights", lambda a, w: Fn.linear(a, w, w[:, 0]),
     lambda d: (data(d, 4, 3, 5), data(d, 4, 2, 5)), 0),
    ("conv2d", lambda a, k: Fn.conv2d(a, k, padding=1), lambda d: (data(d, 2, 1, 3, 5, 5),
                                                                   data(d, 2, 3, 3, 3)), (0, None)),
    ("conv1d", lambda a, k: Fn.conv1d(a, k), lambda d: (data(d, 2, 1, 3, 6), data(d, 2, 3, 2)),
     (0, None)),
    ("pooling", lambda a: Fn.max_pool2d(a, 2) + Fn.avg_pool2d(a, 2) +
     Fn.max_pool2d(a, 2, return_indices=True)[1].double(), lambda d: (data(d, 3, 2, 3, 4, 4),), 0),
    ("cross_entropy", lambda x, t: Fn.cross_entropy(x, t), lambda d: (data(d, 4, 3, 5),
                                                                       data(d, 4, 3, ints=5)), 0),
    ("class_cross_entropy", lambda x, t, w: Fn._class_cross_entropy(
        x, t, w, ignore_index=1, reduction="none"),
     lambda d: (data(d, 4, 3, 5), data(d, 4, 3, ints=5), data(d, 5)), (0, 0, None)),
    ("class_nll", lambda x, t, w: Fn._class_nll(x, t, w, ignore_index=1, reduction="none"),
     lambda d: (data(d, 4, 3, 5), data(d, 4, 3, ints=5), data(d, 5)), (0, 0, None)),
    ("nll_loss_sum", lambda x, t: Fn.nll_loss(x, t, reduction="sum"),
     lambda d: (data(d, 4, 3, 5), data(d, 4, 3, ints=5)), 0),
    ("embedding", lambda i, w: Fn.embedding(i, w), lambda d: (data(d, 4, 3, ints=6),
                                                               data(d, 6, 2)), (0, None)),
    ("one_hot_mse", lambda i, y: Fn.mse_loss(Fn.one_hot(i, 5).double(), y),
     lambda d: (data(d, 4, ints=5), data(d, 4, 5)), 0),
    ("linalg", lambda a: gpuad.linalg.cholesky(a).sum() + gpuad.linalg.det(a) +
     gpuad.linalg.inv(a).sum() + gpuad.linalg.slogdet(a)[1], lambda d: (spd(d),), 0),
    ("solve_triangular", lambda a, b: gpuad.linalg.solve_triangular(a, b, upper=False),
     lambda d: (gpuad.linalg.cholesky(spd(d)), data(d, 3, 2)), (0, None)),
    ("sort_topk", lambda a: gpuad.topk(a, 2).values.sum() + gpuad.sort(a, 0).values[:2],
     lambda d: (data(d, 4, 3, 5),), 0),
    ("in_dim_1", lambda a: a.sum(0), lambda d: (data(d, 3, 4, 5),), 1),
    ("in_dim_negative", lambda a: a * 2, lambda d: (data(d, 3, 5, 4),), -1),
]


@pytest.mark.parametrize("f,make,in_dims", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_each_rule_equals_the_loop_without_falling_back(f, make, in_dims, device):
    args = make(device)
    dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)
    dims = tuple(None if d is None else d % a.ndim for a, d in zip(args, dims))
    with record_fallbacks() as fallbacks:
        out = vmap(f, in_dims=in_dims)(*args)
    assert not fallbacks, f"fell back: {dict(fallbacks)}"
    expected = loop(f, args, dims)
    for got, want in zip(out if isinstance(out, tuple) else (out,),
                         expected if isinstance(expected, tuple) else (expected,)):
        assert got.device == args[0].device
        np.testing.assert_allclose(host(got), want, rtol=1e-10, atol=1e-12)


# ---- in_dims, out_dims, chunks ------------------------------------------------------------------
def test_in_dims_and_out_dims_structures():
    x, y, z = data("cpu", 4, 3), data("cpu", 3, 4), data("cpu", 3)
    out = vmap(lambda p, s: p["a"] * s + p["b"][0], in_dims=({"a": 0, "b": None}, 1))(
        {"a": x, "b": [z]}, y)
    np.testing.assert_allclose(host(out), host(x * y.T + z))
    a, b = vmap(lambda r: (r, r.sum()), out_dims=(1, 0))(x)
    assert a.shape == (3, 4) and b.shape == (4,)
    shared = vmap(lambda r: (r * 2, y), out_dims=(0, None))(x)[1]
    assert shared is y
    assert vmap(lambda r: gpuad.ones(3))(x).shape == (4, 3)  # unbatched results are repeated
    scaled = vmap(lambda r, scale=1.0: r * scale)(x, scale=3.0)  # kwargs are not mapped
    np.testing.assert_allclose(host(scaled), 3 * host(x))
    chunked = vmap(lambda r: (r.sum(), r * 2), chunk_size=3, out_dims=(0, 1))(x)
    np.testing.assert_allclose(host(chunked[0]), host(x.sum(1)))
    np.testing.assert_allclose(host(chunked[1]), 2 * host(x).T)


def test_errors_match_torchs():
    torch = pytest.importorskip("torch")
    tx, x = torch.ones(2, 3), gpuad.ones(2, 3)
    cases = [
        (lambda v, t: v(lambda a: a, in_dims=[0])(t), ValueError),
        (lambda v, t: v(lambda a, b: a, in_dims=(0,))(t, t), ValueError),
        (lambda v, t: v(lambda a, b: a, in_dims=(0, 0))(t, 1.0), ValueError),
        (lambda v, t: v(lambda a: a, in_dims=2)(t), ValueError),
        (lambda v, t: v(lambda a, b: a)(t, t[:1]), ValueError),
        (lambda v, t: v(lambda a: a, in_dims=None)(t), ValueError),
        (lambda v, t: v(lambda a: a, in_dims=(None,))(t), ValueError),
        (lambda v, t: v(lambda a: a, out_dims=None)(t), ValueError),
        (lambda v, t: v(lambda a: 1.0)(t), ValueError),
        (lambda v, t: v(lambda a: a, out_dims=3)(t), IndexError),
        (lambda v, t: v(lambda a: a, randomness="other")(t), RuntimeError),
        (lambda v, t: v(lambda a: a, chunk_size=0)(t), ValueError),
        (lambda v, t: v(lambda a: a.sum().item())(t), RuntimeError),
        (lambda v, t: v(lambda a: a if a.sum() > 0 else -a)(t), RuntimeError),
    ]
    for case, kind in cases:
        with pytest.raises(kind) as expected:
            case(torch.func.vmap, tx)
        with pytest.raises(kind) as got:
            case(vmap, x)
        first = str(expected.value).split(":")[0].split("(")[0]
        assert str(got.value).startswith(first), (got.value, expected.value)


def test_misuse_inside_vmap_fails_loudly():
    x = gpuad.ones(2, 3)
    with pytest.raises(RuntimeError, match="backward"):
        vmap(lambda a: a.sum().backward())(x.requires_grad_())
    with pytest.raises(RuntimeError, match="in-place"):
        vmap(lambda a: a.add_(1))(gpuad.ones(2, 3))
    escaped = []
    vmap(lambda a: escaped.append(a) or a)(gpuad.ones(2, 3))
    with pytest.raises(RuntimeError):
        escaped[0] + 1

    class Cube(gpuad.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a ** 3

        @staticmethod
        def backward(ctx, g):
            return g
    with pytest.raises(NotImplementedError, match="custom gpuad.autograd.Function"):
        vmap(Cube.apply)(gpuad.ones(2, 3))
    assert gpuad.ops.BATCHING is None  # uninstalled after errors too


def test_batched_tensor_looks_like_one_example():
    seen = []
    vmap(lambda a: seen.append((a.shape, a.ndim, a.dtype, a.numel(), len(a), repr(a))) or a)(
        gpuad.ones(4, 2, 3))
    shape, ndim, dtype, numel, length, text = seen[0]
    assert (shape, ndim, dtype, numel, length) == ((2, 3), 2, gpuad.float32, 6, 2)
    assert text.startswith("BatchedTensor(lvl=1, bdim=0")


# ---- randomness --------------------------------------------------------------------------------
def test_randomness_modes():
    x = gpuad.zeros(4, 3)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(lambda a: a + gpuad.randn(3))(x)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(lambda a: Fn.dropout(a, 0.5))(x)
    same = host(vmap(lambda a: a + gpuad.randn(3), randomness="same")(x))
    assert np.allclose(same, same[0])
    different = host(vmap(lambda a: a + gpuad.rand_like(a), randomness="different")(x))
    assert not np.allclose(different, different[0]) and (different >= 0).all()
    nested = host(vmap(vmap(lambda a: a + gpuad.randn(()), randomness="different"),
                       randomness="same")(gpuad.zeros(2, 5)))
    assert np.allclose(nested[0], nested[1]) and not np.allclose(nested[0], nested[0][0])
    dropped = host(vmap(lambda a: Fn.dropout(a, 0.5), randomness="different")(gpuad.ones(8, 500)))
    assert not np.allclose(dropped, dropped[0]) and abs(dropped.mean() - 1) < 0.1
    with pytest.raises(NotImplementedError, match="randomness='different'"):
        vmap(lambda a: gpuad.bernoulli(a), randomness="different")(x)


# ---- with the differentiating transforms ---------------------------------------------------------
def mlp_and_loss():
    gpuad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4)).double()

    def loss(params, x, y):
        out = functional_call(model, params, (x.unsqueeze(0),))
        return Fn.cross_entropy(out, y.unsqueeze(0))
    params = {k: p.detach() for k, p in model.named_parameters()}
    return model, loss, params


def test_per_example_gradients_of_an_mlp_equal_the_loop(device):
    model, loss, params = mlp_and_loss()
    params = {k: p.to(device) for k, p in params.items()}
    x, y = data(device, 6, 3), data(device, 6, ints=4)
    with record_fallbacks() as fallbacks:
        per = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    assert not fallbacks
    for k, p in params.items():
        expected = np.stack([host(grad(loss)(params, x[i], y[i])[k]) for i in range(6)])
        assert per[k].shape == (6,) + p.shape
        np.testing.assert_allclose(host(per[k]), expected, rtol=1e-10, atol=1e-12)


def test_per_example_gradients_match_torch_func():
    torch = pytest.importorskip("torch")
    model, loss, params = mlp_and_loss()
    x, y = data("cpu", 5, 3), data("cpu", 5, ints=4)
    per = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 4)).double()
    tparams = {k: torch.tensor(host(v)) for k, v in params.items()}

    def tloss(p, a, b):
        out = torch.func.functional_call(tmodel, p, (a.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(out, b.unsqueeze(0))
    tper = torch.func.vmap(torch.func.grad(tloss), in_dims=(None, 0, 0))(
        tparams, torch.tensor(host(x)), torch.tensor(host(y)))
    for k in params:
        np.testing.assert_allclose(host(per[k]), tper[k].numpy(), rtol=1e-10, atol=1e-12)


def f(x, w):
    return (gpuad.tanh(x @ w) ** 2).sum()


def test_grad_of_vmap_and_vmap_of_grad_and_nesting():
    x, w, xs = data("cpu", 4, 3), data("cpu", 3, 2), data("cpu", 2, 4, 3)
    expected = sum(host(grad(f, argnums=1)(x[i], w)) for i in range(4))
    np.testing.assert_allclose(host(grad(lambda v: vmap(f, in_dims=(0, None))(x, v).sum())(w)),
                               expected)
    leaf = w.detach().requires_grad_()
    vmap(f, in_dims=(0, None))(x, leaf).sum().backward()  # the caller's autograd sees through
    np.testing.assert_allclose(host(leaf.grad), expected)
    nested = vmap(vmap(grad(f, argnums=1), in_dims=(0, None)), in_dims=(0, None))(xs, w)
    np.testing.assert_allclose(host(nested), np.stack(
        [[host(grad(f, argnums=1)(xs[i, j], w)) for j in range(4)] for i in range(2)]))
    second = grad(lambda v: vmap(grad(f, argnums=1), in_dims=(0, None))(x, v).sum())(w)
    eps, numeric = 1e-6, np.zeros((3, 2))
    for idx in np.ndindex(3, 2):
        step = np.zeros((3, 2))
        step[idx] = eps
        at = [vmap(grad(f, argnums=1), in_dims=(0, None))(x, w + gpuad.tensor(s, dtype=F64)).sum()
              for s in (step, -step)]
        numeric[idx] = (at[0].item() - at[1].item()) / (2 * eps)
    np.testing.assert_allclose(host(second), numeric, atol=1e-6)


def test_vmap_of_jacrev_hessian_and_vjp():
    x, v = data("cpu", 4, 3), data("cpu", 4, 3, seed=1)

    def g(a):
        return gpuad.sin(a) * a.sum()
    np.testing.assert_allclose(host(vmap(jacrev(g))(x)),
                               np.stack([host(jacrev(g)(x[i])) for i in range(4)]))
    h = hessian(lambda a: (a ** 3).sum() * a[0])
    np.testing.assert_allclose(host(vmap(h)(x)), np.stack([host(h(x[i])) for i in range(4)]))
    pulled = vmap(lambda a, u: vjp(g, a)[1](u)[0])(x, v)
    np.testing.assert_allclose(host(pulled),
                               np.stack([host(vjp(g, x[i])[1](v[i])[0]) for i in range(4)]))


# ---- the fallback --------------------------------------------------------------------------------
def test_ops_without_a_rule_run_per_example():
    a, b = spd("cpu"), data("cpu", 4, 3)
    solve = gpuad.linalg.solve  # its primitive has no rule: torch's vector-or-matrix b
    with record_fallbacks() as fallbacks:
        out = vmap(solve)(a, b)
    assert fallbacks == {"_solve": 1}
    np.testing.assert_allclose(host(out), loop(solve, (a, b), (0, 0)))
    per_example = vmap(grad(lambda m, v: solve(m, v).sum(), argnums=1))(a, b)  # through the loop
    np.testing.assert_allclose(host(per_example), loop(
        grad(lambda m, v: solve(m, v).sum(), argnums=1), (a, b), (0, 0)))
    x, index = data("cpu", 3, 4), data("cpu", 3, 2, ints=4)
    with record_fallbacks() as fallbacks:  # a composite reading raw indices: loops too
        picked = vmap(lambda r, i: r.index_select(0, i))(x, index)
    assert fallbacks == {"index_select": 1}
    np.testing.assert_allclose(host(picked), loop(lambda r, i: r.index_select(0, i),
                                                  (x, index), (0, 0)))


def test_debug_mode_warns_about_each_fallback_op_once():
    sys.modules["gpuad.func.vmap"]._warned.discard("_solve")  # warned once per process
    gpuad.set_debug(True)
    try:
        with pytest.warns(UserWarning, match="solve has no batching rule"):
            vmap(gpuad.linalg.solve)(spd("cpu"), data("cpu", 4, 3))
    finally:
        gpuad.set_debug(False)
