"""Rows of the op table for gpuad/ops/linalg.py (merged into op_cases.CASES)."""
import numpy as np

import gpuad
from op_cases import Case

MATMUL_SHAPES = [
    ((3,), (3,)),                 # dot: a 0-d result
    ((3,), (3, 4)),               # vector @ matrix
    ((2, 3), (3,)),               # matrix @ vector
    ((2, 3), (3, 4)),
    ((3, 3), (3, 3)),             # square: a forgotten transpose would still have the right shape
    ((2, 3, 4), (2, 4, 2)),       # batched
    ((2, 3, 4), (4, 2)),          # batch @ matrix (folded into one GEMM)
    ((3, 4), (2, 4, 5)),          # matrix @ batch
    ((2, 1, 3, 4), (5, 4, 2)),    # broadcast batch dims on both sides
    ((2, 3, 4), (4,)),            # batch @ vector
    ((3,), (2, 3, 4)),            # vector @ batch
]

# (equation, operand shapes): each becomes an einsum row (and the reference is numpy's einsum)
EINSUM_EQUATIONS = [
    ("ij,jk->ik", (2, 3), (3, 4)),
    ("bij,bjk->bik", (2, 3, 4), (2, 4, 2)),
    ("bij,jk->bik", (2, 3, 4), (4, 2)),
    ("ij,j->i", (2, 3), (3,)),
    ("i,j->ij", (3,), (4,)),
    ("i,i->", (4,), (4,)),
    ("ij->j", (2, 3)),
    ("ij->", (2, 3)),
    ("ij->ji", (2, 3)),
    ("ij,kl->jk", (2, 3), (4, 2)),          # i and l are each summed out of one operand only
    ("ij,jk,kl->il", (2, 3), (3, 4), (4, 2)),
    ("i,i,i->", (3,), (3,), (3,)),
    ("...ij,...jk->...ik", (2, 1, 3, 4), (5, 4, 2)),  # ellipsis with broadcast batch dims
    ("...i->...", (2, 3, 4)),
    ("i...->...", (3, 2, 2)),
    ("ij,jk", (2, 3), (3, 4)),              # implicit output: labels used once, sorted
    ("ba,ca", (2, 3), (4, 3)),
    ("i,i", (4,), (4,)),
    ("...ij,...jk", (2, 3, 4), (4, 2)),
    ("ij,ij->ij", (1, 3), (2, 3)),          # a size-1 dim broadcasts against the same label
    (" Ab , bC -> AC ", (2, 3), (3, 2)),     # upper case and spaces
    ("ii->i", (3, 3)),                      # diagonal
    ("ii", (3, 3)),                         # trace
    ("iij,i->j", (2, 2, 3), (2,)),
]

PRIMITIVE_EQUATIONS = [
    ("ij,jk->ik", (2, 3), (3, 4)),
    ("ij,kl->jk", (2, 3), (4, 2)),
    ("ij->", (2, 3)),
    ("ii->i", (3, 3)),
    ("ij,ij,j->i", (2, 3), (2, 3), (3,)),
]


def _einsum_rows(name, fn, equations):
    return [Case(name, fn, lambda *xs, equation: np.einsum(equation, *xs), [shapes],
                 kwargs=[{"equation": equation}]) for equation, *shapes in equations]


LINALG_CASES = [
    Case("matmul", gpuad.matmul, np.matmul, MATMUL_SHAPES),
    Case("mm", gpuad.mm, np.matmul, [((2, 3), (3, 4)), ((3, 3), (3, 3))]),
    Case("bmm", gpuad.bmm, np.matmul, [((2, 3, 4), (2, 4, 2))]),
    Case("mv", gpuad.mv, np.matmul, [((2, 3), (3,))]),
    Case("dot", gpuad.dot, np.dot, [((4,), (4,))]),
    Case("outer", gpuad.outer, np.outer, [((3,), (4,)), ((1,), (2,))]),
    *_einsum_rows("einsum", lambda *xs, equation: gpuad.einsum(equation, *xs), EINSUM_EQUATIONS),
    *_einsum_rows("_einsum", lambda *xs, equation: gpuad.ops._einsum(*xs, equation=equation),
                  PRIMITIVE_EQUATIONS),
]
