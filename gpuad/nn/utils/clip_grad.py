"""Gradient clipping over a model's parameters, like torch.nn.utils.clip_grad.

Works on the .grad arrays in place, on their devices, under no_grad; the total norm stays a device
tensor so a training step never waits for the GPU (torch.nn.utils.clip_grad_norm_ does the same).
"""
import math

from ... import creation, ops
from ...autograd import no_grad
from ...tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so that their joint norm (the norm of the per-gradient norms)
    is at most max_norm; returns that total norm before clipping, as a tensor on the gradients'
    device. Gradients are scaled by min(1, max_norm / (total + 1e-6)), as in torch. `foreach`,
    torch's choice of kernel, changes nothing here."""
    grads = _grads(parameters)
    if not grads:
        return creation.tensor(0.0)
    norm_type = float(norm_type)
    device = grads[0].device
    norms = [ops.norm(g, norm_type).to(device) for g in grads]
    total = norms[0] if len(norms) == 1 else ops.norm(ops.stack(norms), norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):  # a host sync, only when asked
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is non-finite ({total.item()}), so it cannot be clipped; "
                           f"pass error_if_nonfinite=False to clip anyway")
    coefficient = ops.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coefficient.to(g.device, dtype=g.dtype))
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to [-clip_value, clip_value], in place (`foreach`, torch's
    choice of kernel, changes nothing here)."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.copy_(ops.clamp(g, min=-clip_value, max=clip_value))
