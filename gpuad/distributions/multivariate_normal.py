"""MultivariateNormal(loc, covariance_matrix | precision_matrix | scale_tril): the Gaussian over
vectors, held as the lower Cholesky factor L of its covariance; reparameterised as loc + L eps."""
import math

import numpy

from .. import creation, linalg, ops
from . import constraints
from .distribution import Distribution, lazy_property, standard_normal


def _precision_to_scale_tril(P):
    """The Cholesky factor of P^-1 from a Cholesky factorisation of P with its order reversed
    (torch's, which avoids inverting P)."""
    flipped = linalg.cholesky(ops.flip(P, (-2, -1)))
    inverse_factor = ops.swapaxes(ops.flip(flipped, (-2, -1)), -2, -1)
    identity = creation.eye(P.shape[-1], dtype=P.dtype, device=P.device)
    return linalg.solve_triangular(inverse_factor, ops.expand(identity, P.shape), upper=False)


def batch_mahalanobis(L, x):
    """|L^-1 x|^2 for lower-triangular L (..., n, n) and vectors x (..., n), batch dims
    broadcast."""
    n = x.shape[-1]
    if L.ndim == 2:  # one factor for every vector: one solve with the vectors as columns
        columns = ops.permute(ops.reshape(x, (-1, n)), (1, 0))
        solved = linalg.solve_triangular(L, columns, upper=False)
        return ops.reshape(ops.sum(solved ** 2, dim=0), tuple(x.shape[:-1]))
    batch = numpy.broadcast_shapes(tuple(L.shape[:-2]), tuple(x.shape[:-1]))
    solved = linalg.solve_triangular(ops.expand(L, batch + (n, n)),
                                     ops.unsqueeze(ops.expand(x, batch + (n,)), -1), upper=False)
    return ops.sum(ops.squeeze(solved, -1) ** 2, dim=-1)


def half_log_det(L):
    return ops.sum(ops.log(ops.diagonal(L, dim1=-2, dim2=-1)), dim=-1)


class MultivariateNormal(Distribution):
    """The multivariate normal with mean loc (..., n) and one of covariance_matrix,
    precision_matrix or scale_tril (..., n, n), like torch.distributions.MultivariateNormal."""
    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [(k, v) for k, v in (("scale_tril", scale_tril),
                                     ("covariance_matrix", covariance_matrix),
                                     ("precision_matrix", precision_matrix)) if v is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril "
                             "may be specified.")
        name, matrix = given[0]
        if matrix.ndim < 2:
            what = "scale_tril matrix" if name == "scale_tril" else name
            raise ValueError(f"{what} must be at least two-dimensional, with optional leading "
                             f"batch dimensions")
        batch_shape = numpy.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        setattr(self, name, ops.expand(matrix, batch_shape + tuple(matrix.shape[-2:])))
        self.loc = ops.expand(loc, batch_shape + tuple(loc.shape[-1:]))
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        self._unbroadcasted_scale_tril = (
            matrix if name == "scale_tril" else linalg.cholesky(matrix)
            if name == "covariance_matrix" else _precision_to_scale_tril(matrix))

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateNormal, _instance)
        batch_shape = tuple(batch_shape)
        n = self.event_shape[0]
        new.loc = ops.expand(self.loc, batch_shape + (n,))
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                setattr(new, name, ops.expand(self.__dict__[name], batch_shape + (n, n)))
        return self._expanded(new, batch_shape, self.event_shape)

    def _matrix_shape(self):
        return self._batch_shape + self._event_shape + self._event_shape

    @lazy_property
    def scale_tril(self):
        return ops.expand(self._unbroadcasted_scale_tril, self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return ops.expand(ops.matmul(L, ops.swapaxes(L, -1, -2)), self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        L = self._unbroadcasted_scale_tril
        identity = creation.eye(L.shape[-1], dtype=L.dtype, device=L.device)
        inverse = linalg.solve_triangular(L, ops.expand(identity, L.shape), upper=False)
        return ops.expand(ops.matmul(ops.swapaxes(inverse, -1, -2), inverse),
                          self._matrix_shape())

    mean = property(lambda self: self.loc)
    mode = property(lambda self: self.loc)

    @property
    def variance(self):
        return ops.expand(ops.sum(self._unbroadcasted_scale_tril ** 2, dim=-1),
                          self._batch_shape + self._event_shape)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = standard_normal(shape, self.loc.dtype, self.loc.device)
        return self.loc + ops.squeeze(ops.matmul(self._unbroadcasted_scale_tril,
                                                 ops.unsqueeze(eps, -1)), -1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        L = self._unbroadcasted_scale_tril
        M = batch_mahalanobis(L, value - self.loc)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + M) - half_log_det(L)

    def entropy(self):
        H = (0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) +
             half_log_det(self._unbroadcasted_scale_tril))
        return ops.expand(H, self._batch_shape) if self._batch_shape else H
