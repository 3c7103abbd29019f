"""Hand-written reference networks (the "floor" of scripts/bench.py): forward, backward and update
written out by hand on raw arrays, with no autodiff, no Tensor objects and no per-op bookkeeping.

Written once against the array module of the parameters (numpy or CuPy), so the same code is the
bar on the CPU and on the GPU. It is meant to be about as fast as plain array code reasonably gets,
because gpuad is judged against it:

* parameters, gradients and optimizer state each live in ONE contiguous buffer, the per-layer
  arrays being views into it, so an optimizer step is a handful of whole-buffer operations (what
  PyTorch's fused/foreach optimizers achieve) instead of a handful per tensor;
* GEMMs read transposed operands as transposed views (BLAS takes a transpose flag, nothing is
  copied) and write gradients straight into their place in the gradient buffer with `out=`;
* the softmax cross-entropy and its gradient come out of one softmax, computed in place over the
  logits; ReLU after max pooling is applied to the pooled (4x smaller) array, which is the same
  function since ReLU is monotone;
* ReLU is gpuad.backend.relu, in place: numpy's maximum against a block of zeros, which runs 2-3x
  faster than against the scalar 0 (gpuad's relu uses it too); a conv's weight gradient with a
  small result and a long shared dimension is gpuad.backend.linalg.matmul's sum of pieces, which
  OpenBLAS runs about 3x faster than one product (gpuad's matmul uses it too).

Layouts: parameters come in, and gradients are kept, in PyTorch's layout (Linear weights (out,
in), Conv2d weights (out, in, kh, kw)), so the benchmark starts every framework from the same
numbers and the tests compare gradients with autograd's one to one. Images run batch-last inside
(see the convolution section for why).
"""
import math

from gpuad.backend import relu, xp_of
from gpuad.backend.linalg import matmul


# ---- buffers ------------------------------------------------------------------------------------
def _flat_views(xp, shapes, dtype, fill=None):
    """One contiguous buffer and a C-contiguous view of it per shape (usable as GEMM `out=`)."""
    sizes = [math.prod(s) for s in shapes]
    flat = xp.zeros(sum(sizes), dtype) if fill is None else fill
    views, start = [], 0
    for shape, size in zip(shapes, sizes):
        views.append(flat[start:start + size].reshape(shape))
        start += size
    return flat, views


def _flat_copy(arrays):
    xp = xp_of(arrays[0])
    flat = xp.concatenate([xp.ravel(a) for a in arrays])
    return _flat_views(xp, [a.shape for a in arrays], flat.dtype, fill=flat)


# ---- dense layers and the loss -------------------------------------------------------------------
def dense_forward(x, weights, biases):
    """Linear layers with ReLU between them. Returns every layer's input (the post-ReLU activations
    the backward pass needs) followed by the logits."""
    acts = [x]
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = acts[-1] @ w.T  # w.T is a view: BLAS reads (out, in) with its transpose flag
        h += b
        if i < len(weights) - 1:
            relu(h, out=h)
        acts.append(h)
    return acts


def cross_entropy(logits, y, rows):
    """Mean softmax cross-entropy of logits (B, K) against integer labels y, and its gradient
    (softmax - onehot) / B, both from one softmax computed in place over the logits (the caller has
    no further use for them). `rows` is arange(B) on the logits' device."""
    xp = xp_of(logits)
    b = logits.shape[0]
    logits -= logits.max(axis=1, keepdims=True)  # exp cannot overflow; softmax is unchanged
    picked = logits[rows, y]  # a copy, taken before exp overwrites the logits
    p = xp.exp(logits, out=logits)
    s = p.sum(axis=1, keepdims=True)
    loss = (xp.log(s[:, 0]) - picked).mean()
    s *= b  # one division gives softmax / B
    p /= s
    p[rows, y] -= 1.0 / b
    return loss, p


def dense_backward(g, acts, weights, wgrads, bgrads, input_grad=False):
    """Back through dense_forward's layers from the logits' gradient g (overwritten). Gradients go
    into wgrads/bgrads. With input_grad, returns the gradient of the first layer's input TRANSPOSED,
    (in, B), the conv stages' batch-last layout (its ReLU is the caller's business); else None."""
    xp = xp_of(g)
    for i in reversed(range(len(weights))):
        xp.matmul(g.T, acts[i], out=wgrads[i])  # (out, B) @ (B, in): g.T is a view, no copy
        g.sum(axis=0, out=bgrads[i])
        if i == 0:
            return weights[0].T @ g.T if input_grad else None
        g = g @ weights[i]
        g *= acts[i] > 0  # ReLU passes gradient where its output was positive


# ---- optimizers (in place, on whole buffers) -----------------------------------------------------
def sgd_momentum_(p, g, buf, lr, momentum):
    """torch.optim.SGD with momentum (no dampening): buf = momentum * buf + g; p -= lr * buf. A
    zero buf makes the first step store g, as torch does. g is used as scratch."""
    buf *= momentum
    buf += g
    xp_of(p).multiply(buf, lr, out=g)
    p -= g


def adam_(p, g, m, v, tmp, step, lr, betas=(0.9, 0.999), eps=1e-8):
    """torch.optim.Adam at step `step` (counted from 1): m, v are the moment buffers; g and tmp are
    used as scratch."""
    xp = xp_of(p)
    beta1, beta2 = betas
    xp.multiply(g, g, out=tmp)
    tmp *= 1 - beta2
    v *= beta2
    v += tmp  # v = beta2 * v + (1 - beta2) * g**2
    g -= m
    g *= 1 - beta1
    m += g  # m = m + (g - m) * (1 - beta1): torch's lerp
    xp.sqrt(v, out=g)
    g *= 1 / math.sqrt(1 - beta2 ** step)
    g += eps  # denom = sqrt(v) / sqrt(1 - beta2**step) + eps
    xp.divide(m, g, out=g)
    g *= lr / (1 - beta1 ** step)
    p -= g


class _Net:
    """What both networks share: parameters, gradients and optimizer state as flat buffers (the
    per-layer arrays are views into them), kept in torch's layouts."""

    def __init__(self, params):
        self.xp = xp_of(params[0])
        self.flat, self.params = _flat_copy(params)
        self.gflat, self.grads = _flat_views(self.xp, [p.shape for p in params], self.flat.dtype)
        self._rows = {}

    def rows(self, b):
        """arange(b) on the device, made once per batch size (the labels' row index)."""
        if b not in self._rows:
            self._rows[b] = self.xp.arange(b)
        return self._rows[b]

    def torch_grads(self):
        """The last loss_and_grads' gradients, in torch's layouts and parameter order."""
        return list(self.grads)


class MLP(_Net):
    """Linear + ReLU layers trained with SGD momentum: `params` is [W1, b1, W2, b2, ...] in torch's
    layout (W (out, in)); `train_step(x, y)` returns the loss (on the device)."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params)
        self.lr, self.momentum = lr, momentum
        self.buf = self.xp.zeros_like(self.flat)

    def logits(self, x):
        return dense_forward(x.reshape(len(x), -1), self.params[0::2], self.params[1::2])[-1]

    def loss_and_grads(self, x, y):
        """The loss, with every gradient written into self.grads."""
        acts = dense_forward(x.reshape(len(x), -1), self.params[0::2], self.params[1::2])
        loss, g = cross_entropy(acts[-1], y, self.rows(len(x)))
        dense_backward(g, acts[:-1], self.params[0::2], self.grads[0::2], self.grads[1::2])
        return loss

    def train_step(self, x, y):
        loss = self.loss_and_grads(x, y)
        sgd_momentum_(self.flat, self.gflat, self.buf, self.lr, self.momentum)
        return loss


# ---- convolution and pooling, batch-last ---------------------------------------------------------
# Images live as (C, H, W, N), batch LAST, not NCHW or NHWC. Measured on numpy (conv shapes of the
# cnn benchmark, batch 64): im2col's strided copy is 16x (1 channel) and 1.7x (16 channels) faster
# than in NHWC, col2im 3-4x, pooling 1.3-2x, because every inner loop runs over Wo*N contiguous
# numbers instead of C (1 or 16). It also makes the GEMM operands plain torch layouts: a conv is
# W (O, C*k*k) @ cols (C*k*k, Ho*Wo*N), and the last pool's (C, H, W, N) output, read as
# (C*H*W, N), is the transpose of the (N, C*H*W) features in torch's flatten order.
def im2col(x, k, padded):
    """The k x k windows (stride 1, 'same' zero padding) of x (C, H, W, N) as a contiguous
    (C, k, k, Ho, Wo, N) array: ONE copy out of a strided view of the padded input. `padded` is a
    reusable (C, H+k-1, W+k-1, N) buffer whose border is zero and stays zero."""
    xp = xp_of(x)
    c, h, w, n = x.shape
    pad = (k - 1) // 2
    padded[:, pad:pad + h, pad:pad + w, :] = x
    s_c, s_h, s_w, s_n = padded.strides
    view = xp.lib.stride_tricks.as_strided(padded, (c, k, k, h, w, n),
                                           (s_c, s_h, s_w, s_h, s_w, s_n))
    return xp.ascontiguousarray(view)


def col2im(cols):
    """The adjoint of im2col: each entry of cols (C, k, k, H, W, N) added back at its input position
    (one strided add per kernel offset), straight into the unpadded input: entries that fall in the
    padding are skipped rather than added and cropped."""
    xp = xp_of(cols)
    c, k, _, h, w, n = cols.shape
    pad = (k - 1) // 2
    out = xp.zeros((c, h, w, n), cols.dtype)
    for i in range(k):
        rows = slice(max(0, pad - i), min(h, h + pad - i))  # output rows whose input row is inside
        for j in range(k):
            columns = slice(max(0, pad - j), min(w, w + pad - j))
            out[:, rows.start + i - pad:rows.stop + i - pad,
                columns.start + j - pad:columns.stop + j - pad] += cols[:, i, j, rows, columns]
    return out


def conv_forward(x, w, b, padded):
    """'same' convolution of x (C, H, W, N) by w (O, C, k, k), torch's layout: im2col, then one
    GEMM whose (O, H*W*N) result is the (O, H, W, N) output. Returns it and the columns."""
    o, c, k, _ = w.shape
    cols = im2col(x, k, padded)
    y = w.reshape(o, -1) @ cols.reshape(c * k * k, -1)
    y += b[:, None]
    return y.reshape((o,) + x.shape[1:]), cols


def conv_backward(gy, cols, w, gw, gb, input_grad):
    """Gradients of conv_forward from gy (O, H, W, N): into gw, gb, and returned for the input when
    input_grad."""
    o = w.shape[0]
    gy = gy.reshape(o, -1)
    cols2 = cols.reshape(-1, gy.shape[1])
    gw.reshape(o, -1)[...] = matmul(gy, cols2.T)  # cols2.T is a view: BLAS transpose flag
    gy.sum(axis=1, out=gb)
    if not input_grad:
        return None
    return col2im((w.reshape(o, -1).T @ gy).reshape(cols.shape))


def _quarters(a):
    """The four (C, H/2, W/2, N) strided views of a (C, H, W, N) array, one per 2x2 window offset,
    in torch's scan order (row by row): a reshape and slices, no copies."""
    c, h, w, n = a.shape
    r = a.reshape(c, h // 2, 2, w // 2, 2, n)
    return [r[:, :, i, :, j, :] for i in (0, 1) for j in (0, 1)]


def maxpool_relu(y):
    """relu(max_pool2d(y, 2)) for y (C, H, W, N) with even H, W: the same as pooling after the
    ReLU (ReLU is monotone), with the ReLU done on the quarter-size pooled array."""
    xp = xp_of(y)
    q = _quarters(y)
    m = xp.maximum(q[0], q[1])
    xp.maximum(m, q[2], out=m)
    xp.maximum(m, q[3], out=m)
    relu(m, out=m)
    return m


def maxpool_relu_backward(g, y, m):
    """Gradient of maxpool_relu at y (output m) from g: each window's gradient goes to its FIRST
    maximum, like torch and gpuad (ties are common: ReLU zeros, flat image background). Masks, no
    scatter: the still-unrouted gradient goes to the first offset holding the max and is then
    subtracted, so later offsets get nothing."""
    xp = xp_of(g)
    left = g * (m > 0)  # ReLU's gradient: a window whose max was <= 0 passes nothing
    gy = xp.empty_like(y)
    dst, src = _quarters(gy), _quarters(y)
    for d, s in zip(dst[:3], src[:3]):
        xp.multiply(left, s == m, out=d)
        left -= d
    dst[3][...] = left  # the rest: the max was at the last offset (or it is all zero)
    return gy


class CNN(_Net):
    """Conv ('same', stride 1) + ReLU + 2x2 max-pool stages, then Linear + ReLU layers, trained with
    Adam: models.LeNet5's network. `params` is [conv1 W, b, conv2 W, b, ..., fc1 W, b, ...] in
    torch's layouts (used as they are); inputs are (N, C, H, W) like torch's."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.n_conv = sum(p.ndim == 4 for p in params[0::2])
        self.m, self.v = self.xp.zeros_like(self.flat), self.xp.zeros_like(self.flat)
        self.tmp = self.xp.empty_like(self.flat)
        self.step_count = 0
        self._padded = {}

    def _padded_buffer(self, shape, k, dtype):
        key = shape + (k,)
        if key not in self._padded:
            c, h, w, n = shape
            self._padded[key] = self.xp.zeros((c, h + k - 1, w + k - 1, n), dtype)
        return self._padded[key]

    def _features(self, x):
        """The conv stages on x (N, C, H, W): the features as a (C*H*W, N) array (the transposed
        flatten) and what each stage's backward needs."""
        a = x.transpose(1, 2, 3, 0)  # a view; im2col's padding copy makes it batch-last
        saved = []
        for i in range(self.n_conv):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            y, cols = conv_forward(a, w, b, self._padded_buffer(a.shape, w.shape[2], w.dtype))
            a = maxpool_relu(y)
            saved.append((cols, y, a))
        return a.reshape(-1, a.shape[-1]), saved

    def logits(self, x):
        feats, _ = self._features(x)
        n = 2 * self.n_conv
        return dense_forward(feats.T, self.params[n::2], self.params[n + 1::2])[-1]

    def loss_and_grads(self, x, y):
        """The loss, with every gradient written into self.grads."""
        feats, saved = self._features(x)
        n = 2 * self.n_conv
        acts = dense_forward(feats.T, self.params[n::2], self.params[n + 1::2])  # .T: a view
        loss, g = cross_entropy(acts[-1], y, self.rows(len(x)))
        g = dense_backward(g, acts[:-1], self.params[n::2], self.grads[n::2], self.grads[n + 1::2],
                           input_grad=True)
        for i in reversed(range(self.n_conv)):
            cols, y_conv, m = saved[i]
            gy = maxpool_relu_backward(g.reshape(m.shape), y_conv, m)
            g = conv_backward(gy, cols, self.params[2 * i], self.grads[2 * i],
                              self.grads[2 * i + 1], input_grad=i > 0)
        return loss

    def train_step(self, x, y):
        loss = self.loss_and_grads(x, y)
        self.step_count += 1
        adam_(self.flat, self.gflat, self.m, self.v, self.tmp, self.step_count, self.lr,
              self.betas, self.eps)
        return loss
