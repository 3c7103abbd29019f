"""Test helpers shipped with gpuad: gradcheck and the strict backend (testing/strict.py)."""
from .gradcheck import GradcheckError, gradcheck  # noqa: F401
