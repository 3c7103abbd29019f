"""Test helpers shipped with gpuad: gradcheck and the strict backend (testing/strict.py)."""
from .gradcheck import GradcheckError, gradcheck  # noqa: F401
from . import strict  # noqa: F401  (registers the "strict" device)
