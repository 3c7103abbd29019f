"""Tools around the engine: `to_dot` draws the graph behind a tensor, `summary` tabulates a model's
layers, `checkpoint` recomputes activations in backward instead of keeping them.

Nothing in the engine imports this package; see also gpuad.trace for the evaluation trace of a call.
"""
from .checkpoint import checkpoint, checkpoint_sequential  # noqa: F401  (the function shadows its module)
from .graph import to_dot  # noqa: F401
from .summary import ModelSummary, summary  # noqa: F401
