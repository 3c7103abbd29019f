"""SGD: one update rule over the Optimizer base (raw arrays, in place, one fused kernel on CUDA)."""
from .. import fused
from ..backend import xp_of
from .optimizer import Optimizer, _nonnegative


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov, weight decay and
    maximize, exactly like torch.optim.SGD (the first momentum step stores g undampened)."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False):
        _nonnegative("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})

    def _update(self, p, g, state, group):
        momentum, buf, first = group["momentum"], None, False
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:  # the first step fills it with the gradient (never aliases .grad)
                buf = state["momentum_buffer"] = xp_of(p).empty_like(p)
                first = True
        fused.sgd_step(p, g, buf, lr=group["lr"], momentum=momentum,
                       dampening=group["dampening"], weight_decay=group["weight_decay"],
                       nesterov=group["nesterov"], maximize=group["maximize"], first=first)
