"""PyTorch's names that gpuad spells the same, and the error for the ones it lacks."""
import pytest

import gpuad


def test_dtype_aliases_are_torchs():
    assert (gpuad.float, gpuad.double, gpuad.half) == (gpuad.float32, gpuad.float64, gpuad.float16)
    assert (gpuad.long, gpuad.int, gpuad.short) == (gpuad.int64, gpuad.int32, gpuad.int16)
    assert gpuad.ones(2, dtype=gpuad.long).dtype == gpuad.int64
    assert isinstance(gpuad.float32, gpuad.dtype)


def test_tensor_type_is_cpu_and_format():
    t = gpuad.ones(2)
    assert t.type() == "gpuad.FloatTensor" and t.type(gpuad.double).dtype == gpuad.float64
    assert t.long().type() == "gpuad.LongTensor" and t.is_cpu
    assert format(gpuad.tensor(1.2345), "+.2f") == "+1.23"
    with pytest.raises(TypeError):
        format(t, "+.2f")  # like torch: only 0-d tensors take a format spec


def test_matches_torch_where_installed():
    torch = pytest.importorskip("torch")
    for name in ("float", "double", "half", "long", "int", "short", "bool", "uint8", "int8"):
        assert str(getattr(gpuad, name)) == str(getattr(torch, name)).removeprefix("torch.")
    assert format(gpuad.tensor(-0.5), ".3e") == format(torch.tensor(-0.5), ".3e")


def test_a_missing_name_says_gpuad_lacks_it():
    with pytest.raises(AttributeError, match=r"gpuad does not have torch\.frobnicate"):
        gpuad.frobnicate
    with pytest.raises(AttributeError, match=r"does not have torch\.nn\.functional\.frob"):
        gpuad.nn.functional.frob
    with pytest.raises(AttributeError, match=r"does not have torch\.nn\.Frob"):
        gpuad.nn.Frob
    with pytest.raises(AttributeError, match=r"shapes are plain tuples"):
        gpuad.Size
    with pytest.raises(AttributeError, match=r"does not have torch\.Tensor\.frob"):
        gpuad.ones(1).frob
    assert not hasattr(gpuad.ones(1), "_private_thing")


def test_empty_like_logspace_numel_and_unflatten_match_torch():
    torch = pytest.importorskip("torch")
    x = gpuad.ones(2, 3, dtype=gpuad.float64)
    e = gpuad.empty_like(x)
    assert e.shape == (2, 3) and e.dtype == gpuad.float64 and gpuad.numel(x) == 6
    for args in [(0, 2, 5), (-1.0, 1.0, 4, 2.0)]:
        got, want = gpuad.logspace(*args), torch.logspace(*args)
        assert str(got.dtype) == str(want.dtype).removeprefix("torch.")
        assert got.tolist() == pytest.approx(want.tolist(), rel=1e-6)
    layer, twin = gpuad.nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3))
    assert layer(gpuad.ones(4, 6)).shape == tuple(twin(torch.ones(4, 6)).shape) == (4, 2, 3)
    assert repr(layer) == repr(twin)
