"""Anomaly detection and debug mode (gpuad.autograd.detect_anomaly, set_debug)."""
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.nn as nn
from gpuad.autograd import AnomalyError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the NaNs are on purpose


def test_forward_nan_names_the_op_the_line_and_the_shapes():
    x = gpuad.tensor([1.0, -1.0], requires_grad=True)
    with gpuad.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"forward of 'sqrt' produced NaN .*inputs of shapes "
                                               r"\(2,\)\).*test_anomaly.py:\d+"):
            gpuad.sqrt(x)
    assert not gpuad.autograd.is_anomaly_enabled()


def test_backward_inf_names_the_op_and_where_it_was_created():
    x = gpuad.tensor([4.0, 0.0], requires_grad=True)
    with gpuad.detect_anomaly():
        y = gpuad.sqrt(x)  # fine forward (0 is allowed) ...
        line = y.grad_fn.site
        with pytest.raises(AnomalyError, match=r"backward of 'sqrt' produced Inf.*called at "
                                               + line.replace("\\", "\\\\")):
            y.sum().backward()  # ... but d sqrt/dx at 0 is inf
    first = test_backward_inf_names_the_op_and_where_it_was_created.__code__.co_firstlineno
    assert line.endswith(f"test_anomaly.py:{first + 3}")


def test_off_by_default_and_free_of_checks():
    assert not gpuad.autograd.is_anomaly_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = gpuad.log(gpuad.tensor([0.0, -1.0]))  # inf and nan pass silently, as in numpy
    assert np.isinf(y.numpy()[0]) and np.isnan(y.numpy()[1])
    assert gpuad.tensor([1.0], requires_grad=True).exp().grad_fn is not None
    assert not hasattr(gpuad.exp(gpuad.tensor([1.0], requires_grad=True)).grad_fn, "site")


def test_global_switch():
    gpuad.set_detect_anomaly(True)
    try:
        with pytest.raises(AnomalyError):
            gpuad.tensor([0.0]) ** -1.0
    finally:
        gpuad.set_detect_anomaly(False)
    gpuad.tensor([0.0]) ** -1.0


def test_debug_mode_says_which_module_and_gives_dtypes_devices_and_line():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    gpuad.set_debug(True)
    try:
        with pytest.raises(ValueError) as info:
            model(gpuad.ones(4, 5))
    finally:
        gpuad.set_debug(False)
    notes = getattr(info.value, "__notes__", [])
    assert (any("Linear.forward" in n for n in notes)
            and any("Sequential.forward" in n for n in notes))
    with pytest.raises(ValueError, match=r"dtypes float32, float32; devices cpu, cpu; called at "):
        gpuad.set_debug(True)
        try:
            gpuad.ones(2, 3) + gpuad.ones(4)
        finally:
            gpuad.set_debug(False)
