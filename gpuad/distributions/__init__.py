"""gpuad.distributions: probability distributions with torch.distributions' API.

Parameters are Tensors, so log_prob, entropy and the statistics are differentiable in them, and
rsample draws reparameterised samples (gradients flow through the draw) where torch does.
kl_divergence looks up closed forms registered with register_kl. Sits beside nn (it uses
nn.functional's losses) and above the ops and gpuad.linalg.
"""
from . import constraints  # noqa: F401
from .bernoulli import Bernoulli  # noqa: F401
from .beta import Beta  # noqa: F401
from .categorical import Categorical  # noqa: F401
from .dirichlet import Dirichlet  # noqa: F401
from .distribution import Distribution  # noqa: F401
from .gamma import Gamma  # noqa: F401
from .independent import Independent  # noqa: F401
from .kl import kl_divergence, register_kl  # noqa: F401
from .laplace import Laplace  # noqa: F401
from .log_normal import LogNormal  # noqa: F401
from .multivariate_normal import MultivariateNormal  # noqa: F401
from .normal import Normal  # noqa: F401
from .one_hot_categorical import OneHotCategorical  # noqa: F401
from .uniform import Uniform  # noqa: F401
