"""gpuad.linalg: torch.linalg's names over gpuad's ops (gpuad/ops/solve.py, decomposition.py,
norm.py, linalg.py). Re-exports only; inputs are matrices or batches of them (..., m, n).
"""
from .backend.linalg import LinAlgError  # noqa: F401
from .ops import cholesky, det, matmul, matrix_exp, matrix_power, slogdet  # noqa: F401
from .ops import inverse as inv  # noqa: F401
from .ops import linalg_cond as cond  # noqa: F401
from .ops import linalg_cross as cross  # noqa: F401
from .ops import linalg_eigh as eigh  # noqa: F401
from .ops import linalg_eigvalsh as eigvalsh  # noqa: F401
from .ops import linalg_lstsq as lstsq  # noqa: F401
from .ops import linalg_matrix_norm as matrix_norm  # noqa: F401
from .ops import linalg_matrix_rank as matrix_rank  # noqa: F401
from .ops import linalg_multi_dot as multi_dot  # noqa: F401
from .ops import linalg_norm as norm  # noqa: F401
from .ops import linalg_pinv as pinv  # noqa: F401
from .ops import linalg_qr as qr  # noqa: F401
from .ops import linalg_solve as solve  # noqa: F401
from .ops import linalg_solve_triangular as solve_triangular  # noqa: F401
from .ops import linalg_svd as svd  # noqa: F401
from .ops import linalg_svdvals as svdvals  # noqa: F401
from .ops import linalg_vecdot as vecdot  # noqa: F401
from .ops import linalg_vector_norm as vector_norm  # noqa: F401

_MISSING = {  # torch.linalg names gpuad does not have, and what to use instead
    "eig": "real inputs only here: use eigh for symmetric matrices",
    "eigvals": "real inputs only here: use eigvalsh for symmetric matrices",
    "inv_ex": "use inv, which raises LinAlgError rather than returning an info tensor",
    "cholesky_ex": "use cholesky, which raises LinAlgError rather than returning an info tensor",
    "solve_ex": "use solve, which raises LinAlgError rather than returning an info tensor",
}


def __getattr__(name):
    hint = _MISSING.get(name, "see gpuad.linalg's module contents for what exists")
    raise AttributeError(f"gpuad.linalg has no {name!r} (torch.linalg.{name}); {hint}")
