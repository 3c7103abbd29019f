"""Backends as a fixture: every device-aware test runs on cpu, on the strict backend (numpy arrays
that refuse what CuPy refuses) and, when CuPy sees a GPU, on cuda."""
import pickle

import pytest

import gpuad

DEVICES = ["cpu", "strict", pytest.param("cuda", marks=pytest.mark.gpu)]


def pytest_collection_modifyitems(config, items):
    if gpuad.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU that CuPy can see")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    gpuad.manual_seed(0)


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything unpickles (gpuad.load must never)."""
    def fail(*args, **kwargs):
        pytest.fail("gpuad.load tried to unpickle")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, fail)
