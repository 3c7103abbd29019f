"""weight_norm and spectral_norm as parametrizations, like torch.nn.utils.parametrizations: the
same state_dict keys (parametrizations.weight.original0/original1; original, 0._u and 0._v), the
same formulas, and spectral norm's power iteration updating u and v in training mode only.
"""
from ... import creation, ops
from ...autograd import no_grad
from ...tensor import Tensor
from ..module import Module
from . import parametrize


def norm_except_dim(v, dim):
    """The 2-norm of v over every dim but `dim`, kept as size-1 dims (torch's norm_except_dim);
    dim -1 means the whole tensor, a 0-d result, as in torch."""
    if dim == -1:
        return ops.norm(v)
    return ops.norm(v, 2, tuple(d for d in range(v.ndim) if d != dim), keepdim=True)


def _normalize(x, eps):
    """x / max(||x||, eps) along dim 0 (torch.nn.functional.normalize)."""
    return x / ops.clamp(ops.norm(x, 2, 0, keepdim=True), min=eps)


class _WeightNorm(Module):
    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight):
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """Reparametrize module.<name> as g * v / ||v|| (norms over every dim but `dim`; dim=None:
    the whole tensor), with g = original0 and v = original1, like
    torch.nn.utils.parametrizations.weight_norm."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if not -ndim <= dim < max(ndim, 1):
            raise IndexError(f"spectral_norm: dim {dim} is out of range for a weight of shape "
                             f"{tuple(weight.shape)}")
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: expected n_power_iterations to be positive, got "
                             f"{n_power_iterations}")
        self.dim, self.eps = dim % max(ndim, 1), eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            matrix = self._reshape_weight_to_matrix(weight.detach())
            h, w = matrix.shape
            kw = {"dtype": weight.dtype, "device": weight.device}
            self.register_buffer("_u", _normalize(creation.randn(h, **kw), eps))
            self.register_buffer("_v", _normalize(creation.randn(w, **kw), eps))
            self._power_method(matrix, 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute((self.dim,) + tuple(d for d in range(weight.ndim)
                                                        if d != self.dim))
        return weight.flatten(1)

    @no_grad()
    def _power_method(self, matrix, n_power_iterations):
        for _ in range(n_power_iterations):  # in place: the buffers stay the same tensors
            self._u.copy_(_normalize(ops.matmul(matrix, self._v), self.eps))
            self._v.copy_(_normalize(ops.matmul(matrix.mT, self._u), self.eps))

    def forward(self, weight):
        if weight.ndim == 1:
            return _normalize(weight, self.eps)
        matrix = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(matrix.detach(), self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()  # later updates must not touch this graph
        sigma = ops.sum(u * ops.matmul(matrix, v))
        return weight / sigma

    def right_inverse(self, value):
        return value  # torch does not enforce the constraint on assignment either


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divide module.<name> by its largest singular value, estimated by power iteration (one
    step per forward in training mode, 15 at registration), like
    torch.nn.utils.parametrizations.spectral_norm; dim defaults to 1 for transposed convolutions
    and 0 otherwise (the output dim of the weight)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"spectral_norm: module {type(module).__name__} has no parameter or "
                         f"buffer named {name!r}")
    if dim is None:
        cls = parametrize.type_before_parametrizations(module)
        dim = 1 if cls.__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
