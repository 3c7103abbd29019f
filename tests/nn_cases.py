"""Rows of the op table for gpuad.nn.functional (merged into op_cases.CASES): each functional with
an independent numpy float64 reference. Integer class targets come from `make=` and are excluded
from gradchecks with `diff=`; dropout's randomness is tested in test_nn.py."""
import numpy as np
from op_cases import POSITIVE, REAL, Case

import gpuad.nn.functional as F


# ---- references (numpy, float64) --------------------------------------------------------------
def _softmax_ref(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax_ref(x, axis):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _reduce_ref(loss, reduction):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def _class_loss_ref(logp, t, weight, ignore_index, reduction, label_smoothing):
    """torch's nll_loss / cross_entropy formulas on log-probabilities (N, C, d...) or (C,)."""
    single = logp.ndim == 1
    if single:
        logp, t = logp[None], np.asarray(t)[None]
    classes = logp.shape[1]
    w = np.ones(classes) if weight is None else weight
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    wt = np.where(valid, w[safe], 0.0)
    nll = -np.take_along_axis(logp, safe[:, None], 1)[:, 0] * wt
    smooth = np.where(valid, -(logp * w.reshape((classes,) + (1,) * (logp.ndim - 2))).sum(1), 0)
    loss = (1 - label_smoothing) * nll + label_smoothing / classes * smooth
    if reduction == "none":
        return loss[0] if single else loss
    return loss.sum() if reduction == "sum" else loss.sum() / wt.sum()


def _cross_entropy_ref(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    class_dim = 0 if x.ndim == 1 else 1
    logp = _log_softmax_ref(x, class_dim)
    if t.dtype.kind != "f":
        return _class_loss_ref(logp, t, weight, ignore_index, reduction, label_smoothing)
    classes = x.shape[class_dim]
    t = t * (1 - label_smoothing) + label_smoothing / classes
    w = 1 if weight is None else weight.reshape((classes,) + (1,) * (x.ndim - class_dim - 1))
    loss = -(logp * t * w).sum(class_dim)
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else (
        loss.sum() / (x.size / classes))


def _nll_ref(x, t, weight=None, ignore_index=-100, reduction="mean"):
    return _class_loss_ref(x, t, weight, ignore_index, reduction, 0.0)


def _batch_norm_ref(x, rm=None, rv=None, w=None, b=None, training=False, eps=1e-5, **_):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    else:
        mean, var = rm.reshape(shape), rv.reshape(shape)
    y = (x - mean) / np.sqrt(var + eps)
    y = y if w is None else y * w.reshape(shape)
    return y if b is None else y + b.reshape(shape)


def _layer_norm_ref(x, w=None, b=None, normalized_shape=(), eps=1e-5):
    k = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    axes = tuple(range(x.ndim - k, x.ndim))
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    y = y if w is None else y * w
    return y if b is None else y + b


def _bce_ref(x, t, w=None, reduction="mean"):
    with np.errstate(divide="ignore"):
        loss = -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log(1 - x), -100))
    return _reduce_ref(loss if w is None else loss * w, reduction)


def _bce_logits_ref(x, t, w=None, pos_weight=None, reduction="mean"):
    log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
    loss = (1 - t) * x + log_weight * np.logaddexp(0, -x)
    return _reduce_ref(loss if w is None else loss * w, reduction)


def _softmax_nll_grad_ref(x, t, scale):
    p = _softmax_ref(x, 1)
    np.put_along_axis(p, t[:, None], np.take_along_axis(p, t[:, None], 1) - 1, 1)
    return p * scale[:, None]


# ---- inputs -----------------------------------------------------------------------------------
def _classes(ignore=None, weight=False, probabilities=False):
    """(logits, class indices[, weight]): every 3rd target set to `ignore` when given."""
    def make(rng, shapes):
        x_shape, t_shape = shapes[:2]
        classes = x_shape[0] if len(x_shape) == 1 else x_shape[1]
        if probabilities:
            t = _softmax_ref(REAL(rng, t_shape), 0 if len(x_shape) == 1 else 1)
        else:
            t = rng.integers(0, classes, t_shape)
            if ignore is not None:
                t.reshape(-1)[::3] = ignore
        return [REAL(rng, x_shape), t] + ([rng.uniform(0.5, 2, (classes,))] if weight else [])
    return make


def _apart(rng, shape):  # input and target at least 0.2 apart: no kink of |x - t| in reach
    x = REAL(rng, shape)
    return [x, x + rng.uniform(0.2, 1, shape) * rng.choice([-1, 1], shape)]


def _probabilities(rng, shapes):
    return [rng.uniform(0.05, 0.95, s) for s in shapes]


def _triple(rng, shapes):  # logits, class indices, per-row weights (or gradient scales)
    x_shape, t_shape, w_shape = shapes
    return [REAL(rng, x_shape), rng.integers(0, x_shape[1], t_shape), REAL(rng, w_shape)]


def _running(rng, shapes):  # x, running_mean, running_var (positive), weight, bias
    return [REAL(rng, shapes[0]), REAL(rng, shapes[1]), POSITIVE(rng, shapes[2])] + [
        REAL(rng, s) for s in shapes[3:]]


def _ce(x, t, *w, **kw):
    return F.cross_entropy(x, t, *w, **kw)


def _nll(x, t, *w, **kw):
    return F.nll_loss(x, t, *w, **kw)


def _layer_norm(x, w, b, normalized_shape, **kw):
    return F.layer_norm(x, normalized_shape, w, b, **kw)


def _weighted(ref):
    return lambda x, t, w, **kw: ref(x, t, w, **kw)


REDUCTIONS = [{}, {"reduction": "sum"}, {"reduction": "none"}]
CE_KWARGS = REDUCTIONS + [{"label_smoothing": 0.1}, {"label_smoothing": 0.2, "reduction": "none"},
                          {"label_smoothing": 0.15, "reduction": "sum"}]
CE_SHAPES = [((4, 3), (4,)), ((2, 3, 4), (2, 4)), ((3,), ())]
SOFTMAX_KWARGS = [{"dim": 0}, {"dim": 1}, {"dim": -1}]
BN_SHAPES = [((4, 3), (3,), (3,)), ((2, 3, 4), (3,), (3,)), ((2, 3, 2, 2), (3,), (3,))]
RUNNING_SHAPES = [((4, 3), (3,), (3,), (3,), (3,)), ((2, 3, 2, 2), (3,), (3,), (3,), (3,))]

NN_CASES = [
    Case("_linear", lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b,
         [((2, 3), (4, 3), (4,)), ((3,), (4, 3), (4,)), ((2, 2, 3), (4, 3), (4,))]),
    Case("_linear", lambda x, w: F.linear(x, w), lambda x, w: x @ w.T,
         [((2, 3), (4, 3)), ((3,), (4, 3)), ((2, 2, 3), (4, 3))]),
    # ---- softmax ----
    Case("_softmax", F._softmax, _softmax_ref, [((2, 3),), ((2, 3, 4),)], kwargs=SOFTMAX_KWARGS),
    Case("_log_softmax", F._log_softmax, _log_softmax_ref, [((2, 3),), ((2, 3, 4),)],
         kwargs=SOFTMAX_KWARGS),
    Case("softmax", F.softmax, _softmax_ref, [((2, 3),), ((2, 3, 4),)], kwargs=SOFTMAX_KWARGS),
    Case("softmax", F.softmax, lambda x, axis: np.ones(()), [((),)], kwargs=[{"dim": 0}]),
    Case("log_softmax", F.log_softmax, _log_softmax_ref, [((2, 3),), ((2, 3, 4),)],
         kwargs=SOFTMAX_KWARGS),
    Case("log_softmax", F.log_softmax, _log_softmax_ref, [((4,),)],
         kwargs=[{"dim": 0}], make=lambda rng, shapes: [np.array([1e3, -1e3, 0.0, 999.0])]),
    # ---- cross entropy and its fused primitives ----
    Case("cross_entropy", _ce, _cross_entropy_ref, CE_SHAPES, kwargs=CE_KWARGS, make=_classes()),
    Case("cross_entropy", _ce, _cross_entropy_ref, [((5, 3), (5,)), ((2, 3, 3), (2, 3))],
         kwargs=[{}, {"reduction": "none"}, {"label_smoothing": 0.1}], make=_classes(ignore=-100)),
    Case("cross_entropy", _ce, _cross_entropy_ref, [((5, 3), (5,))],
         kwargs=[{"ignore_index": 1}, {"ignore_index": 1, "label_smoothing": 0.2}],
         make=_classes(ignore=1)),
    Case("cross_entropy", _ce, _weighted(_cross_entropy_ref),
         [((5, 3), (5,), (3,)), ((2, 3, 3), (2, 3), (3,))],
         kwargs=CE_KWARGS + [{"ignore_index": 1, "label_smoothing": 0.1}, {"ignore_index": 1}],
         make=_classes(ignore=1, weight=True), diff=(0,)),
    Case("cross_entropy", _ce, _cross_entropy_ref, [((4, 3), (4, 3)), ((2, 3, 2), (2, 3, 2)),
                                                    ((3,), (3,))],
         kwargs=REDUCTIONS + [{"label_smoothing": 0.1}], make=_classes(probabilities=True)),
    Case("cross_entropy", _ce, _weighted(_cross_entropy_ref), [((4, 3), (4, 3), (3,))],
         kwargs=REDUCTIONS + [{"label_smoothing": 0.3}],
         make=_classes(probabilities=True, weight=True), diff=(0, 1)),
    Case("_softmax_nll", F._softmax_nll,
         lambda x, t, w: -np.take_along_axis(_log_softmax_ref(x, 1), t[:, None], 1)[:, 0] * w,
         [((4, 3), (4,), (4,)), ((2, 3, 2), (2, 2), (2, 2))], make=_triple, diff=(0,)),
    Case("_softmax_nll_grad", F._softmax_nll_grad, _softmax_nll_grad_ref,
         [((4, 3), (4,), (4,)), ((2, 3, 2), (2, 2), (2, 2))], make=_triple, diff=(0, 2)),
    Case("nll_loss", _nll, _nll_ref, CE_SHAPES, kwargs=REDUCTIONS, make=_classes()),
    Case("nll_loss", _nll, _nll_ref, [((5, 3), (5,))], kwargs=REDUCTIONS,
         make=_classes(ignore=-100)),
    Case("nll_loss", _nll, _weighted(_nll_ref), [((5, 3), (5,), (3,)), ((2, 3, 3), (2, 3), (3,))],
         kwargs=REDUCTIONS + [{"ignore_index": 1}], make=_classes(ignore=1, weight=True),
         diff=(0,)),
    # ---- normalisation ----
    Case("batch_norm", lambda x, w, b, **kw: F.batch_norm(x, None, None, w, b, training=True, **kw),
         lambda x, w, b, **kw: _batch_norm_ref(x, w=w, b=b, training=True, **kw), BN_SHAPES,
         kwargs=[{}, {"eps": 1e-3}]),
    Case("batch_norm", lambda x: F.batch_norm(x, None, None, training=True),
         lambda x: _batch_norm_ref(x, training=True), [((4, 3),), ((2, 3, 2, 2),)]),
    Case("batch_norm", lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, True, 0.3),
         lambda x, rm, rv, w, b: _batch_norm_ref(x, w=w, b=b, training=True), RUNNING_SHAPES,
         make=_running, diff=(0, 3, 4)),  # running stats move in place; the output ignores them
    Case("batch_norm", lambda x, rm, rv, w, b, **kw: F.batch_norm(x, rm, rv, w, b, **kw),
         _batch_norm_ref, RUNNING_SHAPES, kwargs=[{}, {"eps": 1e-3}], make=_running),
    Case("layer_norm", _layer_norm, _layer_norm_ref, [((2, 3, 4), (4,), (4,))],
         kwargs=[{"normalized_shape": (4,)}, {"normalized_shape": 4, "eps": 1e-3}]),
    Case("layer_norm", _layer_norm, _layer_norm_ref, [((2, 3, 4), (3, 4), (3, 4))],
         kwargs=[{"normalized_shape": (3, 4)}]),
    Case("layer_norm", lambda x: F.layer_norm(x, x.shape[-1:]),
         lambda x: _layer_norm_ref(x, normalized_shape=x.shape[-1:]), [((3, 5),), ((2, 2, 3),)]),
    # ---- dropout (identity cases; randomness in test_nn.py), embedding ----
    Case("dropout", F.dropout, lambda x, p=0.5, training=True: x, [((2, 3),)],
         kwargs=[{"p": 0.0}, {"p": 0.5, "training": False}, {"p": 1.0, "training": False}]),
    Case("embedding", lambda i, w: F.embedding(i, w), lambda i, w: w[i],
         [((2, 3), (5, 4)), ((7,), (5, 2)), ((), (5, 3))], diff=(1,),
         make=lambda rng, shapes: [rng.integers(0, 5, shapes[0]), REAL(rng, shapes[1])]),
    Case("embedding", lambda i, w, padding_idx: F.embedding(i, w, padding_idx),
         lambda i, w, padding_idx: w[i], [((2, 3), (5, 4))], grad=False,
         kwargs=[{"padding_idx": 0}, {"padding_idx": -1}],
         make=lambda rng, shapes: [rng.integers(0, 5, shapes[0]), REAL(rng, shapes[1])]),
    # ---- regression and binary losses ----
    Case("mse_loss", F.mse_loss, lambda x, t, reduction="mean": _reduce_ref((x - t) ** 2,
                                                                             reduction),
         [((2, 3), (2, 3)), ((4,), (4,)), ((), ())], kwargs=REDUCTIONS),
    Case("l1_loss", F.l1_loss, lambda x, t, reduction="mean": _reduce_ref(np.abs(x - t), reduction),
         [((2, 3), (2, 3)), ((4,), (4,))], kwargs=REDUCTIONS,
         make=lambda rng, shapes: _apart(rng, shapes[0])),
    Case("binary_cross_entropy", F.binary_cross_entropy, _bce_ref, [((2, 3), (2, 3)), ((4,), (4,))],
         kwargs=REDUCTIONS, make=_probabilities),
    Case("binary_cross_entropy", lambda x, t, w, **kw: F.binary_cross_entropy(x, t, w, **kw),
         _bce_ref, [((2, 3), (2, 3), (2, 3)), ((2, 3), (2, 3), (3,))], kwargs=REDUCTIONS,
         make=_probabilities),
    Case("binary_cross_entropy", F.binary_cross_entropy, _bce_ref, [((5,), (5,))], grad=False,
         kwargs=REDUCTIONS, make=lambda rng, shapes: [np.array([0.0, 1.0, 0.5, 1e-60, 1.0]),
                                                      np.array([1.0, 0.0, 0.3, 1.0, 1.0])]),
    Case("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, _bce_logits_ref,
         [((2, 3), (2, 3)), ((4,), (4,))], kwargs=REDUCTIONS,
         make=lambda rng, shapes: [REAL(rng, shapes[0]) * 3, rng.uniform(0, 1, shapes[1])]),
    Case("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, _bce_logits_ref,
         [((6,), (6,))], kwargs=REDUCTIONS,  # large logits: no overflow, exact tails
         make=lambda rng, shapes: [np.array([-800.0, -40.0, -3.0, 0.5, 40.0, 800.0]),
                                   np.array([1.0, 0.0, 0.7, 1.0, 0.2, 0.0])]),
    Case("binary_cross_entropy_with_logits",
         lambda x, t, w, p, **kw: F.binary_cross_entropy_with_logits(x, t, w, p, **kw),
         _bce_logits_ref, [((2, 3), (2, 3), (2, 3), (3,)), ((4, 3), (4, 3), (3,), (3,))],
         kwargs=REDUCTIONS, diff=(0, 1, 2, 3),
         make=lambda rng, shapes: [REAL(rng, shapes[0]) * 3, rng.uniform(0, 1, shapes[1]),
                                   POSITIVE(rng, shapes[2]), POSITIVE(rng, shapes[3])]),
    Case("binary_cross_entropy_with_logits",
         lambda x, t, p: F.binary_cross_entropy_with_logits(x, t, pos_weight=p),
         lambda x, t, p: _bce_logits_ref(x, t, pos_weight=p), [((4, 3), (4, 3), (3,))],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), rng.uniform(0, 1, shapes[1]),
                                   POSITIVE(rng, shapes[2])]),
]
