"""SGD: one update rule over the Optimizer base (raw arrays, in place, one fused kernel on CUDA)."""
from ..backend import xp_of
from ..backend.kernels import fused
from .optimizer import Optimizer, check_nonnegative, layout_free, refuse_torch_only_options, scratch


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov, weight decay and
    maximize, exactly like torch.optim.SGD (the first momentum step stores g undampened)."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        check_nonnegative("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        refuse_torch_only_options("SGD", differentiable=differentiable)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})

    @layout_free
    def _update(self, p, g, state, group):
        momentum, buf, first = group["momentum"], None, False
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:  # the first step fills it with the gradient (never aliases .grad)
                buf = state["momentum_buffer"] = xp_of(p).empty_like(p)
                first = True
        sgd_step(p, g, buf, lr=group["lr"], momentum=momentum,
                 dampening=group["dampening"], weight_decay=group["weight_decay"],
                 nesterov=group["nesterov"], maximize=group["maximize"], first=first)


@fused("sgd_step", elementwise=True, blocked=True)
def sgd_step(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """torch.optim.SGD's update of p in place; `buf` is the momentum buffer (None without
    momentum), which the first step (`first`) sets to the gradient."""
    xp = xp_of(p)
    if weight_decay:  # d = (-g if maximize else g) + wd * p, in a temporary of our own
        d = xp.multiply(p, weight_decay, out=scratch(p, 1))
        if maximize:
            d -= g
        else:
            d += g
        owned, sign = True, 1
    else:  # d = g, and maximize flips the sign where d is used (negation is exact)
        d, owned, sign = g, False, -1 if maximize else 1
    if buf is not None:
        if first:
            xp.multiply(d, sign, out=buf)
        else:
            buf *= momentum
            if dampening:
                buf += (1 - dampening) * sign * d
            elif sign > 0:
                buf += d
            else:
                buf -= d
        if nesterov:
            step = xp.multiply(buf, momentum, out=scratch(p, 2))
            if sign > 0:
                step += d
            else:
                step -= d
            d, owned, sign = step, True, 1
        else:
            d, owned, sign = buf, False, 1
    if owned:
        d *= lr
    else:
        d = xp.multiply(d, lr, out=scratch(p, 0))
    if sign > 0:
        p -= d
    else:
        p += d
