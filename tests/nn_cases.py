"""Rows of the op table for gpuad.nn.functional (merged into op_cases.CASES): each functional with
an independent numpy float64 reference. Integer class targets come from `make=` and are excluded
from gradchecks with `diff=`; dropout's randomness is tested in test_nn.py."""
import numpy as np
from op_cases import POSITIVE, REAL, Case

import gpuad
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


def _per_entry_class_loss(name, op, ref):
    """The rows of a class-index loss primitive (target, weight or None, ignore_index and
    reduction all given), without and with class weights."""
    kwargs = [{"ignore_index": 1, "reduction": r} for r in ("mean", "sum", "none")]
    return [Case(name, lambda x, t, w=None, **kw: op(x, t, w, **kw), ref,
                 [((5, 3), (5,)), ((2, 3, 3), (2, 3))], kwargs=kwargs, make=_classes(ignore=1)),
            Case(name, lambda x, t, w, **kw: op(x, t, w, **kw), _weighted(ref),
                 [((5, 3), (5,), (3,)), ((2, 3, 3), (2, 3), (3,))], kwargs=kwargs,
                 make=_classes(ignore=1, weight=True), diff=(0,))]


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
    Case("_softmax", gpuad.ops._softmax, _softmax_ref, [((2, 3),), ((2, 3, 4),)],
         kwargs=SOFTMAX_KWARGS),
    Case("_log_softmax", gpuad.ops._log_softmax, _log_softmax_ref, [((2, 3),), ((2, 3, 4),)],
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
    *_per_entry_class_loss("_class_cross_entropy", F._class_cross_entropy, _cross_entropy_ref),
    *_per_entry_class_loss("_class_nll", F._class_nll, _nll_ref),
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
    Case("_layer_norm", lambda x, w, b, **kw: F._layer_norm(x, w, b, **kw),  # the primitive
         lambda x, w, b, dims, eps: _layer_norm_ref(x, w, b, x.shape[dims[0]:], eps),
         [((2, 3, 4), (4,), (4,))], kwargs=[{"dims": (2,), "eps": 1e-5}]),
    Case("_layer_norm", lambda x, w, b, **kw: F._layer_norm(x, w, b, **kw),
         lambda x, w, b, dims, eps: _layer_norm_ref(x, w, b, x.shape[dims[0]:], eps),
         [((2, 3, 4), (3, 4), (3, 4))], kwargs=[{"dims": (1, 2), "eps": 1e-3}]),
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
         lambda x, t, w, p, **kw: F.binary_cross_entropy_with_logits(x, t, w, pos_weight=p, **kw),
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


# ---- activations (gpuad/nn/activation.py) ------------------------------------------------------
def _away(*kinks, low=-4.0, high=4.0):
    """Inputs in [low, high] at least 0.1 from every kink, so finite differences see one piece."""
    def sample(rng, shape):
        x = rng.uniform(low, high, shape)
        for k in kinks:
            near = np.abs(x - k) < 0.1
            x = np.where(near, k + np.where(x >= k, 0.1, -0.1) + (x - k), x)
        return x
    return sample


_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
ACT_SHAPES = [((2, 3),), ((),)]


def _elu_ref(x, alpha=1.0, scale=1.0, input_scale=1.0):
    return scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) * input_scale))


def _glu_ref(x, axis=-1):
    a, b = np.split(x, 2, axis=axis)
    return a / (1 + np.exp(-b))


def _prelu_ref(x, w):
    slope = w.reshape((-1,) + (1,) * (x.ndim - 2)) if w.size > 1 else w.reshape(())
    return np.where(x > 0, x, slope * x)


def _ctc_ref(logits, targets, in_len, tg_len, blank=0, reduction="mean"):
    """CTC by brute force: the probability of every path of length T that collapses (merge
    repeats, drop blanks) onto the target, summed."""
    import itertools
    logp = _log_softmax_ref(logits, 2)
    losses = []
    for n in range(logp.shape[1]):
        target = tuple(targets[n, :tg_len[n]])
        total = 0.0
        for path in itertools.product(range(logp.shape[2]), repeat=int(in_len[n])):
            collapsed = [c for i, c in enumerate(path)
                         if c != blank and (i == 0 or c != path[i - 1])]
            if tuple(collapsed) == target:
                total += np.exp(sum(logp[t, n, c] for t, c in enumerate(path)))
        losses.append(-np.log(total))
    losses = np.array(losses)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else (losses / np.maximum(tg_len, 1)).mean()


def _ctc_inputs(rng, shapes):  # logits (T, N, C), padded targets, input and target lengths
    return [REAL(rng, shapes[0]), np.array([[1, 2], [2, 2], [1, 0]]), np.array([4, 3, 4]),
            np.array([2, 1, 1])]


ACTIVATION_CASES = [
    Case("relu6", F.relu6, lambda x: np.clip(x, 0, 6), ACT_SHAPES, domain=_away(0, 6, low=-2,
                                                                                 high=8)),
    Case("hardtanh", F.hardtanh, lambda x, min_val=-1.0, max_val=1.0: np.clip(x, min_val, max_val),
         ACT_SHAPES, kwargs=[{}, {"min_val": -0.5, "max_val": 2.0}], domain=_away(-1, 1, -0.5, 2)),
    Case("hardsigmoid", F.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1), ACT_SHAPES,
         domain=_away(-3, 3, low=-5, high=5)),
    Case("hardswish", F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6, ACT_SHAPES,
         domain=_away(-3, 3, low=-5, high=5)),
    Case("selu", F.selu, lambda x: _elu_ref(x, *_SELU), ACT_SHAPES, domain=_away(0)),
    Case("celu", F.celu, lambda x, alpha=1.0: _elu_ref(x, alpha, 1.0, 1 / alpha), ACT_SHAPES,
         kwargs=[{}, {"alpha": 0.5}], domain=_away(0)),
    Case("elu", F.elu, lambda x, alpha=1.0: _elu_ref(x, alpha), ACT_SHAPES,
         kwargs=[{"alpha": 0.7}], domain=_away(0)),
    Case("mish", F.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), ACT_SHAPES),
    Case("softsign", F.softsign, lambda x: x / (1 + np.abs(x)), ACT_SHAPES, domain=_away(0)),
    Case("softshrink", F.softshrink,
         lambda x, lambd=0.5: np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, 0)),
         ACT_SHAPES, kwargs=[{}, {"lambd": 1.0}], domain=_away(-1, -0.5, 0.5, 1)),
    Case("hardshrink", lambda x, **kw: F.hardshrink(x, **kw),
         lambda x, lambd=0.5: np.where(np.abs(x) > lambd, x, 0), ACT_SHAPES,
         kwargs=[{}, {"lambd": 1.0}], domain=_away(-1, -0.5, 0.5, 1)),
    Case("tanhshrink", F.tanhshrink, lambda x: x - np.tanh(x), ACT_SHAPES),
    Case("threshold", lambda x, **kw: F.threshold(x, **kw),
         lambda x, threshold, value: np.where(x > threshold, x, value), ACT_SHAPES,
         kwargs=[{"threshold": 0.5, "value": -2.0}], domain=_away(0.5)),
    Case("logsigmoid", F.logsigmoid, lambda x: -np.logaddexp(0, -x), ACT_SHAPES + [((5,),)],
         make=lambda rng, shapes: [np.array([-800.0, -20.0, 0.3, 20.0, 800.0])
                                   if shapes[0] == (5,) else REAL(rng, shapes[0])]),
    Case("softmin", F.softmin, lambda x, axis: _softmax_ref(-x, axis), [((2, 3),), ((2, 3, 4),)],
         kwargs=SOFTMAX_KWARGS),
    Case("glu", F.glu, _glu_ref, [((2, 4),), ((4, 3, 2),)], kwargs=[{}, {"dim": 0}]),
    Case("prelu", lambda x, w: F.prelu(x, w), _prelu_ref,
         [((2, 3), (3,)), ((2, 3, 4), (1,)), ((5,), (1,)), ((2, 3, 2), (3,))], domain=_away(0)),
    Case("rrelu", lambda x, **kw: F.rrelu(x, **kw),
         lambda x, lower=1 / 8, upper=1 / 3: np.where(x > 0, x, x * (lower + upper) / 2),
         ACT_SHAPES, kwargs=[{}, {"lower": 0.1, "upper": 0.5}], domain=_away(0)),
    Case("softmax", lambda x, dim: gpuad.softmax(x, dim), _softmax_ref, [((2, 3),)],
         kwargs=[{"dim": 1}]),
    Case("log_softmax", lambda x, dim, dtype: gpuad.log_softmax(x, dim, dtype=dtype),
         lambda x, axis, dtype: _log_softmax_ref(x, axis), [((2, 3),)],
         kwargs=[{"dim": 0, "dtype": gpuad.float64}]),
]


# ---- losses (gpuad/nn/loss.py) -----------------------------------------------------------------
def _huberish(x, t, width, scale, **_):
    d = x - t
    a = np.abs(d)
    return np.where(a < width, 0.5 * d * d / scale, (a - 0.5 * width) * width / scale)


def _smooth_l1_ref(x, t, reduction="mean", beta=1.0):
    return _reduce_ref(np.abs(x - t) if beta == 0 else _huberish(x, t, beta, beta), reduction)


def _huber_ref(x, t, reduction="mean", delta=1.0):
    return _reduce_ref(_huberish(x, t, delta, 1.0), reduction)


def _off_kinks(*distances):
    """(input, target) whose difference keeps 0.1 away from every +-distance."""
    def make(rng, shapes):
        x = REAL(rng, shapes[0])
        d = _away(*distances, *(-k for k in distances), low=-3, high=3)(rng, shapes[1])
        return [x, x + d]
    return make


def _kl_ref(x, t, reduction="mean", log_target=False):
    loss = np.exp(t) * (t - x) if log_target else t * (np.log(t) - x)
    if reduction == "batchmean":
        return loss.sum() / x.shape[0]
    return _reduce_ref(loss, reduction)


def _poisson_ref(x, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
    loss = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    if full:
        safe = np.where(t > 1, t, 2.0)
        loss = loss + np.where(t > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe),
                               0)
    return _reduce_ref(loss, reduction)


def _gaussian_ref(x, t, v, full=False, eps=1e-6, reduction="mean"):
    v = np.maximum(v, eps)
    loss = 0.5 * (np.log(v) + (x - t) ** 2 / v) + (0.5 * np.log(2 * np.pi) if full else 0)
    return _reduce_ref(loss, reduction)


def _cosine_ref(a, b, y, margin=0.0, reduction="mean"):
    cos = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
    loss = np.where(y == 1, 1 - cos, 0) + np.where(y == -1, np.maximum(cos - margin, 0), 0)
    return _reduce_ref(loss, reduction)


def _multilabel_ref(x, t, w=None, reduction="mean"):
    loss = t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)
    loss = (loss if w is None else loss * w).mean(-1)
    return _reduce_ref(loss, reduction)


def _multi_margin_ref(x, t, w=None, p=1, margin=1.0, reduction="mean"):
    picked = np.take_along_axis(x, t[:, None], 1)
    z = np.maximum(margin - picked + x, 0) ** p
    np.put_along_axis(z, t[:, None], 0.0, 1)
    z = z if w is None else z * w[t][:, None]
    return _reduce_ref(z.sum(1) / x.shape[1], reduction)


def _triplet_ref(a, p, n, margin=1.0, p_norm=2, eps=1e-6, swap=False, reduction="mean"):
    def dist(u, v):
        return (np.abs(u - v + eps) ** p_norm).sum(-1) ** (1 / p_norm)
    d_neg = dist(a, n)
    if swap:
        d_neg = np.minimum(d_neg, dist(p, n))
    return _reduce_ref(np.maximum(margin + dist(a, p) - d_neg, 0), reduction)


def _signs(rng, shape):
    return rng.choice([-1.0, 1.0], shape)


def _labelled(rng, shapes):  # scores, +-1 labels: away from the margin kinks
    return [_away(-0.5, 0, 0.5, 1)(rng, shapes[0]), _signs(rng, shapes[1])]


LOSS_CASES = [
    Case("smooth_l1_loss", F.smooth_l1_loss, _smooth_l1_ref, [((2, 3), (2, 3))],
         kwargs=REDUCTIONS + [{"beta": 0.5}, {"beta": 0.0}], make=_off_kinks(0, 0.5, 1)),
    Case("huber_loss", F.huber_loss, _huber_ref, [((2, 3), (2, 3))],
         kwargs=REDUCTIONS + [{"delta": 0.5}], make=_off_kinks(0.5, 1)),
    Case("kl_div", F.kl_div, _kl_ref, [((3, 4), (3, 4))],
         kwargs=[{"reduction": "batchmean"}, {"reduction": "sum"}, {"reduction": "none"}],
         make=lambda rng, shapes: [np.log(rng.uniform(0.1, 1, s)) for s in shapes]
         [:1] + [rng.uniform(0.1, 1, shapes[1])]),
    Case("kl_div", lambda x, t, **kw: F.kl_div(x, t, log_target=True, **kw),
         lambda x, t, **kw: _kl_ref(x, t, log_target=True, **kw), [((3, 4), (3, 4))],
         kwargs=[{"reduction": "batchmean"}, {"reduction": "none"}]),
    Case("poisson_nll_loss", F.poisson_nll_loss, _poisson_ref, [((2, 3), (2, 3))],
         kwargs=[{}, {"log_input": False}, {"full": True, "reduction": "sum"},
                 {"log_input": False, "full": True, "reduction": "none"}],
         make=lambda rng, shapes: [rng.uniform(0.2, 2, shapes[0]),
                                   rng.uniform(0, 4, shapes[1]) + 0.05]),
    Case("gaussian_nll_loss", F.gaussian_nll_loss, _gaussian_ref,
         [((2, 3), (2, 3), (2, 3)), ((2, 3), (2, 3), (2, 1))],
         kwargs=[{}, {"full": True, "reduction": "none"}],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]),
                                   POSITIVE(rng, shapes[2])]),
    Case("cosine_embedding_loss", F.cosine_embedding_loss, _cosine_ref,
         [((4, 3), (4, 3), (4,))], kwargs=[{}, {"margin": -0.9, "reduction": "none"}],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]),
                                   _signs(rng, shapes[2])], diff=(0, 1)),
    Case("margin_ranking_loss", F.margin_ranking_loss,
         lambda a, b, y, margin=0.0, reduction="mean": _reduce_ref(
             np.maximum(-y * (a - b) + margin, 0), reduction),
         [((5,), (5,), (5,))], kwargs=[{}, {"margin": 0.2, "reduction": "none"}],
         make=lambda rng, shapes: [_away(0.2)(rng, shapes[0]), np.zeros(shapes[1]),
                                   _signs(rng, shapes[2])], diff=(0, 1)),
    Case("hinge_embedding_loss", F.hinge_embedding_loss,
         lambda x, y, margin=1.0, reduction="mean": _reduce_ref(
             np.where(y == 1, x, np.maximum(margin - x, 0)), reduction),
         [((2, 3), (2, 3))], kwargs=[{}, {"margin": 0.5, "reduction": "sum"}], make=_labelled,
         diff=(0,)),
    Case("soft_margin_loss", F.soft_margin_loss,
         lambda x, y, reduction="mean": _reduce_ref(np.log1p(np.exp(-x * y)), reduction),
         [((2, 3), (2, 3))], kwargs=REDUCTIONS, make=_labelled, diff=(0,)),
    Case("multilabel_soft_margin_loss", F.multilabel_soft_margin_loss, _multilabel_ref,
         [((2, 3), (2, 3)), ((3,), (3,))], kwargs=REDUCTIONS,
         make=lambda rng, shapes: [REAL(rng, shapes[0]),
                                   rng.integers(0, 2, shapes[1]).astype(float)], diff=(0,)),
    Case("multilabel_soft_margin_loss",
         lambda x, t, w, **kw: F.multilabel_soft_margin_loss(x, t, w, **kw), _multilabel_ref,
         [((2, 3), (2, 3), (3,))], kwargs=[{}, {"reduction": "none"}],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), rng.integers(0, 2, shapes[1]).astype(
             float), POSITIVE(rng, shapes[2])], diff=(0, 2)),
    Case("multi_margin_loss", lambda x, t, **kw: F.multi_margin_loss(x, t, **kw),
         _multi_margin_ref, [((4, 5), (4,))],
         kwargs=REDUCTIONS + [{"p": 2}, {"margin": 0.5, "reduction": "none"}],
         make=lambda rng, shapes: [rng.permutation(20).reshape(shapes[0]) * 0.137,
                                   rng.integers(0, 5, shapes[1])]),
    Case("multi_margin_loss", lambda x, t, w, **kw: F.multi_margin_loss(x, t, weight=w, **kw),
         lambda x, t, w, **kw: _multi_margin_ref(x, t, w, **kw), [((4, 5), (4,), (5,))],
         kwargs=[{}, {"p": 2}], diff=(0,),
         make=lambda rng, shapes: [rng.permutation(20).reshape(shapes[0]) * 0.137,
                                   rng.integers(0, 5, shapes[1]), POSITIVE(rng, shapes[2])]),
    Case("triplet_margin_loss", F.triplet_margin_loss,
         lambda *inputs, **kw: _triplet_ref(*inputs, **{("p_norm" if k == "p" else k): v
                                                        for k, v in kw.items()}),
         [((4, 3), (4, 3), (4, 3)), ((3,), (3,), (3,))],
         kwargs=[{}, {"p": 1, "reduction": "none"}, {"swap": True, "margin": 3.0}]),
    Case("ctc_loss", lambda x, t, i, n, **kw: F.ctc_loss(F.log_softmax(x, 2), t, i, n, **kw),
         _ctc_ref, [((4, 3, 3), (3, 2), (3,), (3,))],
         kwargs=[{}, {"reduction": "none"}], make=_ctc_inputs),
    Case("_nan_gradient", lambda x, m: __import__("gpuad").nn.loss._nan_gradient(x, m),
         lambda x, m: np.zeros(x.shape), [((2, 3), (2, 3))], grad=False,
         make=lambda rng, shapes: [REAL(rng, shapes[0]), rng.random(shapes[1]) > 0.5]),
]

NN_CASES += ACTIVATION_CASES + LOSS_CASES
