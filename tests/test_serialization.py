"""gpuad.save / gpuad.load: round trips of nested checkpoints, devices, atomic writes, safetensors
interop, and refusing anything that is not a gpuad checkpoint (never unpickling it)."""
import math
import os
import pickle

import numpy as np
import pytest
import safetensors.numpy

import gpuad
from gpuad import backend
from gpuad.serialization import load, save


def same(a, b):
    """Deep equality that also checks types (tuple vs list, int vs float, Tensor dtypes)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, gpuad.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(backend.asnumpy(a.array), backend.asnumpy(b.array))
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b) and all(type(k) is type(j) for k, j in zip(a, b))
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def checkpoint(device="cpu"):
    gpuad.randn(3)  # give the host generator some state to save
    return {
        "model": {"fc.weight": gpuad.randn(3, 4, device=device, requires_grad=True),
                  "fc.bias": gpuad.zeros(4, device=device),
                  "bn.num_batches_tracked": gpuad.tensor(7, device=device),
                  "mask": gpuad.tensor([True, False, True], device=device),
                  "empty": gpuad.zeros(0, 2, device=device)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.arange(12.0).reshape(3, 4)},
                                1: {"step": 3, "exp_avg": np.ones(4, np.float32)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1],
                                        "nesterov": False, "foreign": None}]},
        "epoch": 4, "loss": float("nan"), "best": float("inf"), "name": "mlp \u2713",
        "rng": gpuad.get_rng_state(), "mixed_keys": {1.5: "a", True: "b", None: "c", "1": "d"},
        "nested": ((1, [2, (3,)]), []), "scalar": np.float32(2.5), "count": np.int64(-3),
        "strided": np.arange(20, dtype=np.int16).reshape(4, 5)[:, ::2],
    }


def test_round_trip(tmp_path):
    obj = checkpoint()
    save(obj, tmp_path / "ck.safetensors")
    back = load(tmp_path / "ck.safetensors")
    same(obj, back)
    assert back["model"]["fc.weight"].device == "cpu"
    assert back["model"]["fc.weight"].array.flags.writeable  # optimizers update in place
    gpuad.set_rng_state(back["rng"])
    save({"only": "python"}, tmp_path / "plain")  # no arrays at all
    assert load(tmp_path / "plain") == {"only": "python"}
    save([gpuad.ones(2)], tmp_path / "list")
    same(load(tmp_path / "list"), [gpuad.ones(2)])


def test_load_onto_a_device_and_back(tmp_path, device):
    obj = checkpoint()
    save(obj, tmp_path / "cpu.ck")
    on_device = load(tmp_path / "cpu.ck", device=device)
    assert on_device["model"]["fc.weight"].device == device
    assert type(on_device["optimizer"]["state"][0]["exp_avg"]) is np.ndarray  # arrays stay numpy
    same(obj, on_device)
    saved_there = checkpoint(device)
    save(saved_there, tmp_path / "device.ck")  # arrays copied to the host on the way out
    same(saved_there, load(tmp_path / "device.ck"))


def test_shared_tensors_stay_shared(tmp_path):
    w = gpuad.randn(2, 2)
    save({"encoder": w, "decoder": w}, tmp_path / "tied")
    back = load(tmp_path / "tied")
    assert back["encoder"] is back["decoder"]
    assert list(safetensors.numpy.load_file(tmp_path / "tied")) == ["encoder"]


def test_other_tools_read_the_arrays(tmp_path):
    obj = checkpoint()
    save(obj, tmp_path / "ck.safetensors")
    arrays = safetensors.numpy.load_file(tmp_path / "ck.safetensors")
    np.testing.assert_array_equal(arrays["model.fc.weight"], obj["model"]["fc.weight"].array)
    np.testing.assert_array_equal(arrays["optimizer.state.0.exp_avg"],
                                  obj["optimizer"]["state"][0]["exp_avg"])


def test_unsupported_values_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"model\.act of type object"):
        save({"model": {"act": object()}}, tmp_path / "bad")
    with pytest.raises(TypeError, match="dict key of type tuple"):
        save({(1, 2): 3}, tmp_path / "bad")
    assert os.listdir(tmp_path) == []  # nothing written


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck"
    save({"epoch": 1, "w": gpuad.ones(3)}, path)

    def crash(src, dst):
        raise OSError("simulated crash before the rename")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save({"epoch": 2, "w": gpuad.zeros(3)}, path)
    monkeypatch.undo()
    same(load(path), {"epoch": 1, "w": gpuad.ones(3)})
    assert os.listdir(tmp_path) == ["ck"]  # no temp file left behind
    save({"epoch": 3}, path)
    assert load(path) == {"epoch": 3} and os.listdir(tmp_path) == ["ck"]


def refused(path, *reasons):
    """load(path)'s ValueError message, checked to name the file and every reason."""
    with pytest.raises(ValueError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message, message
    assert all(r in message for r in reasons), message
    return message


def test_refuses_a_pickle(tmp_path, no_unpickling):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    refused(path, "not a gpuad checkpoint", "pickle")


def test_refuses_a_torch_file(tmp_path, no_unpickling):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    refused(path, "not a gpuad checkpoint", "torch.save")


def test_refuses_random_bytes_and_truncation(tmp_path):
    path = tmp_path / "noise"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    refused(path, "not a gpuad checkpoint")
    path.write_bytes(b"abc")
    refused(path, "only 3 bytes")
    save(checkpoint(), tmp_path / "ck")
    full = (tmp_path / "ck").read_bytes()
    for cut in (100, len(full) - 10):  # inside the header; inside the arrays
        path.write_bytes(full[:cut])
        refused(path)


def test_refuses_foreign_safetensors_and_bad_manifests(tmp_path):
    path = tmp_path / "weights.safetensors"
    safetensors.numpy.save_file({"w": np.ones(2)}, path)
    refused(path, "without a gpuad manifest")
    safetensors.numpy.save_file({"w": np.ones(2)}, path, metadata={"gpuad": "{not json"})
    refused(path, "not valid JSON")
    newer = '{"format": "gpuad.checkpoint", "version": 99, "root": null}'
    safetensors.numpy.save_file({}, path, metadata={"gpuad": newer})
    refused(path, "version 99", "newer gpuad")
    dangling = '{"format": "gpuad.checkpoint", "version": 1, "root": {"tensor": "missing"}}'
    safetensors.numpy.save_file({"w": np.ones(2)}, path, metadata={"gpuad": dangling})
    refused(path, "corrupt gpuad manifest")


# ---- file objects, whole modules, map_location (torch.save / torch.load's ways in) --------------
class WriteOnly:
    """A non-seekable binary sink (a pipe, a socket) that records what was written."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)


def test_file_objects_round_trip(tmp_path, no_unpickling):
    import io
    obj = checkpoint()
    buffer = io.BytesIO()
    buffer.write(b"header")  # written at the file's position, like torch.save
    save(obj, buffer)
    buffer.seek(6)
    same(load(buffer), obj)
    sink = WriteOnly()
    save(obj, sink)
    same(load(io.BytesIO(b"".join(sink.chunks))), obj)
    with open(tmp_path / "ck", "wb") as f:
        save(obj, f)
    with open(tmp_path / "ck", "rb") as f:
        same(load(f), obj)
    same(load(tmp_path / "ck"), obj)  # the same bytes as a path gives


def test_file_object_errors(tmp_path):
    import io
    with open(tmp_path / "t.txt", "w") as f, pytest.raises(TypeError, match="binary mode"):
        save({"a": 1}, f)
    with pytest.raises(TypeError, match="binary mode"):
        load(io.StringIO("text"))
    with pytest.raises(TypeError, match="a path or a binary file object"):
        save({"a": 1}, 42)
    with pytest.raises(ValueError, match="the file object is not a gpuad checkpoint"):
        load(io.BytesIO(b"\x80\x04junk-junk"))


def test_a_whole_module_or_optimizer_is_refused_with_the_fix(tmp_path):
    model = gpuad.nn.Linear(2, 3)
    for obj, where, kind in ((model, "the root", "Linear"),
                             ({"epoch": 1, "model": model}, "model", "Linear"),
                             ([gpuad.optim.SGD(model.parameters(), lr=0.1)], "0", "SGD")):
        with pytest.raises(TypeError, match=rf"{where} is a {kind}; PyTorch pickles whole "
                                            rf"modules .*state_dict\(\)"):
            save(obj, tmp_path / "m.ckpt")
    assert not os.path.exists(tmp_path / "m.ckpt")
    save(model.state_dict(), tmp_path / "m.ckpt")  # the fix the message gives works
    fresh = gpuad.nn.Linear(2, 3)
    fresh.load_state_dict(load(tmp_path / "m.ckpt"))
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), model.weight.detach().numpy())


def test_map_location(tmp_path):
    save({"w": gpuad.ones(2)}, tmp_path / "ck")
    for where in ("strict", gpuad.device("strict"), {"cuda:0": "strict"},
                  {"cuda:0": "strict", "cuda:1": "strict"}):
        assert load(tmp_path / "ck", map_location=where)["w"].device == "strict"
    assert load(tmp_path / "ck", "strict")["w"].device == "strict"  # torch's positional place
    assert load(tmp_path / "ck", map_location="strict", device="strict")["w"].device == "strict"
    assert load(tmp_path / "ck", weights_only=False, mmap=True)["w"].device == "cpu"
    with pytest.raises(ValueError, match="several devices"):
        load(tmp_path / "ck", map_location={"cuda:0": "cpu", "cuda:1": "strict"})
    with pytest.raises(TypeError, match="callable map_location"):
        load(tmp_path / "ck", map_location=lambda storage, loc: storage)
    with pytest.raises(ValueError, match="disagree"):
        load(tmp_path / "ck", map_location="cpu", device="strict")
    with pytest.raises(ValueError, match="pickle_module"):
        load(tmp_path / "ck", pickle_module=pickle)


def test_torch_device_as_map_location(tmp_path):
    torch = pytest.importorskip("torch")
    save({"w": gpuad.ones(2)}, tmp_path / "ck")
    assert load(tmp_path / "ck", map_location=torch.device("cpu"))["w"].device == "cpu"
