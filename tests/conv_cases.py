"""Rows of the op table for conv (merged into op_cases.CASES)."""
import numpy as np  # noqa: F401

import gpuad  # noqa: F401
from op_cases import (AWAY_FROM_ZERO, BINARY_SHAPES, DISTINCT, POSITIVE, REAL, REDUCE_KWARGS,  # noqa: F401
                      UNARY_SHAPES, UNIT, Case)

CONV_CASES = [
]
