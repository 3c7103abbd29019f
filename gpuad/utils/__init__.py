"""Tools that read the tape without changing it: `to_dot` draws the graph behind a tensor.

Nothing in the engine imports this package; see also gpuad.trace for the evaluation trace of a call.
"""
from .graph import to_dot  # noqa: F401
