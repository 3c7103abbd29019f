"""gpuad.data: TensorDataset and DataLoader (batching, reproducible and resumable shuffling,
devices, the fast path's single device copy) and MNIST (the real files when GPUAD_DATA holds them,
fake IDX files for malformed input, downloads from a local HTTP server)."""
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import struct
import threading

import numpy as np
import pytest

import gpuad
from gpuad import backend
from gpuad.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    datasets,
    random_split,
)
from gpuad.data.datasets import MNIST

MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte"]


def host(t):
    return backend.asnumpy(t.array)


def xy(n=10, device="cpu"):
    x = gpuad.tensor(np.arange(n * 3, dtype=np.float32).reshape(n, 3), device=device)
    return x, gpuad.arange(n, device=device)


def orders(loader, epochs):
    return [np.concatenate([host(y) for _, y in loader]).tolist() for _ in range(epochs)]


# ---- TensorDataset and DataLoader --------------------------------------------------------------
def test_tensor_dataset():
    x, y = xy(5)
    ds = TensorDataset(x, y)
    assert len(ds) == 5 and ds.tensors == (x, y)
    xi, yi = ds[2]
    assert host(xi).tolist() == [6, 7, 8] and yi.item() == 2
    assert len(TensorDataset(np.zeros((4, 2)), [0, 1, 2, 3])) == 4  # arrays and lists converted
    with pytest.raises(ValueError, match=r"same size in their first dimension.*\(5, 3\), \(4,\)"):
        TensorDataset(x, gpuad.arange(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_batches_len_and_drop_last():
    ds = TensorDataset(*xy(10))
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert np.concatenate([host(x) for x, _ in batches]).tolist() == host(ds.tensors[0]).tolist()
    assert all(y.dtype == gpuad.int64 and x.dtype == gpuad.float32 for x, y in batches)
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(x) for x, _ in dropped] == [4, 4]
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == len(DataLoader(ds, 5)) == 2
    assert len(DataLoader(ds)) == 10
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(ds, batch_size=bad)


def test_shuffle_reproducible_per_seed():
    ds = TensorDataset(*xy(50))
    first = orders(DataLoader(ds, batch_size=8, shuffle=True, seed=1), 3)
    assert all(sorted(o) == list(range(50)) for o in first)
    assert first[0] != first[1] != first[2]  # reshuffled every epoch
    assert orders(DataLoader(ds, batch_size=8, shuffle=True, seed=1), 3) == first
    assert orders(DataLoader(ds, batch_size=8, shuffle=True, seed=2), 1)[0] != first[0]
    assert orders(DataLoader(ds, batch_size=8), 1)[0] == list(range(50))  # no shuffle: in order


def test_set_epoch_resumes_the_same_order():
    ds = TensorDataset(*xy(40))
    run = orders(DataLoader(ds, batch_size=16, shuffle=True, seed=7), 4)
    resumed = DataLoader(ds, batch_size=16, shuffle=True, seed=7)
    resumed.set_epoch(2)
    assert orders(resumed, 2) == run[2:]  # epoch 2, then counts on to 3
    resumed.set_epoch(0)
    assert orders(resumed, 1) == run[:1]


def test_default_seed_comes_from_gpuad_and_generator():
    ds = TensorDataset(*xy(30))
    gpuad.manual_seed(5)
    a = orders(DataLoader(ds, batch_size=30, shuffle=True), 2)
    gpuad.manual_seed(5)
    assert orders(DataLoader(ds, batch_size=30, shuffle=True), 2) == a
    gpuad.manual_seed(6)
    assert orders(DataLoader(ds, batch_size=30, shuffle=True), 1)[0] != a[0]
    g = orders(DataLoader(ds, batch_size=30, shuffle=True, generator=np.random.default_rng(3)), 2)
    assert orders(DataLoader(ds, batch_size=30, shuffle=True,
                             generator=np.random.default_rng(3)), 2) == g


def test_batches_land_on_the_device(device):
    ds = TensorDataset(*xy(10))
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0, device=device)
    order = orders(DataLoader(ds, batch_size=4, shuffle=True, seed=0), 1)[0]
    got = []
    for x, y in loader:
        assert x.device == device and y.device == device
        got += host(y).tolist()
        assert host(x).tolist() == host(ds.tensors[0])[host(y)].tolist()
    assert got == order  # same (seed, epoch), same order, whatever the device


def test_fast_path_copies_the_dataset_once(device, monkeypatch):
    x, y = xy(12)
    calls = []
    to_device = backend.to_device

    def counting(array, dev):
        calls.append("data" if array is x.array or array is y.array else "other")
        return to_device(array, dev)
    monkeypatch.setattr(backend, "to_device", counting)
    loader = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True, seed=0, device=device)
    for epoch in range(3):
        calls.clear()
        assert len(list(loader)) == 3
        # the dataset moves on the first epoch only; then one copy per epoch (the order)
        assert calls == (["data", "data", "other"] if epoch == 0 else ["other"])
    assert list(loader._placed) == [gpuad.device(device)]


def test_device_none_keeps_the_data_where_it_is():
    x, y = xy(6, device="strict")
    batches = list(DataLoader(TensorDataset(x, y), batch_size=4))
    assert all(t.device == "strict" for batch in batches for t in batch)
    assert host(batches[1][1]).tolist() == [4, 5]


class Squares(Dataset):
    """A dataset without .tensors: the loader gathers it on the host."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.full(2, i, dtype=np.float32), i * i


class Plain(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return float(i)


def test_host_path(device):
    loader = DataLoader(Squares(), batch_size=3, shuffle=True, seed=4, device=device)
    order = orders(DataLoader(TensorDataset(*xy(7)), batch_size=3, shuffle=True, seed=4), 1)[0]
    seen = []
    for x, y in loader:
        assert x.device == device and y.device == device
        assert x.dtype == gpuad.float32 and y.dtype == gpuad.int64 and x.shape[1:] == (2,)
        assert (host(x)[:, 0] ** 2).tolist() == host(y).tolist()
        seen += host(x)[:, 0].astype(int).tolist()
    assert seen == order  # the same shuffling on both paths
    single = list(DataLoader(Plain(), batch_size=2))
    # Python floats collate to float64, as torch's default_collate makes them
    assert isinstance(single[0], gpuad.Tensor) and single[0].dtype == gpuad.float64
    assert [host(b).tolist() for b in single] == [[0, 1], [2, 3], [4]]
    with pytest.raises(NotImplementedError):
        len(Dataset())


# ---- torch's DataLoader arguments: workers, collate_fn, generator, samplers ----------------------
class Recording(Dataset):
    """Host samples that note which thread and worker built them, and draw from gpuad's RNG."""

    def __init__(self, n=23, delay=0.0):
        self.n, self.delay, self.seen = n, delay, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if self.delay:
            import time
            time.sleep(self.delay)
        info = gpuad.data.get_worker_info()
        self.seen.append((i, threading.current_thread().name, None if info is None else info.id))
        noise = gpuad.rand(1).item()
        return np.full(2, i, dtype=np.float32), i, noise


def _epoch(loader):
    return [(host(x).tolist(), host(y).tolist()) for x, y, _ in loader]


def test_every_torch_argument_is_accepted_and_workers_keep_the_order():
    ds = Recording()
    plain = _epoch(DataLoader(ds, batch_size=4, shuffle=True, seed=3))
    inits = []
    loader = DataLoader(ds, 4, True, None, None, 3, None, True, False, 10, inits.append, None,
                        None, prefetch_factor=3, persistent_workers=False, pin_memory_device="",
                        in_order=True, seed=3)
    ds.seen.clear()
    assert _epoch(loader) == plain  # threads fetch ahead; batches still come in order
    assert sorted(inits) == [0, 1, 2]
    threads = {name for _, name, _ in ds.seen}
    assert len(threads) == 3 and all(name.startswith("gpuad-data-") for name in threads)
    order = [i for _, labels in plain for i in labels]
    for i, _, worker in ds.seen:  # batch b is built by worker b % 3, as torch deals them
        assert worker == (order.index(i) // 4) % 3
    assert gpuad.data.get_worker_info() is None  # not in a worker


def test_worker_random_draws_repeat_and_differ_by_worker():
    def noises():
        gpuad.manual_seed(0)
        return [host(n).tolist() for _, _, n in DataLoader(Recording(12), batch_size=2,
                                                            num_workers=2)]
    first = noises()
    assert noises() == first
    assert first[0] != first[1]  # worker 0 and worker 1 are seeded differently


def test_persistent_workers_start_once():
    inits = []
    loader = DataLoader(Recording(8), batch_size=2, num_workers=2, persistent_workers=True,
                        worker_init_fn=inits.append)
    for _ in range(3):
        assert len(list(loader)) == 4
    assert sorted(inits) == [0, 1]
    again = []
    transient = DataLoader(Recording(8), batch_size=2, num_workers=2, worker_init_fn=again.append)
    for _ in range(2):
        list(transient)
    assert sorted(again) == [0, 0, 1, 1]


def test_worker_errors_and_timeout_reach_the_caller():
    class Broken(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            raise KeyError(f"sample {i} is missing")
    with pytest.raises(KeyError, match="is missing"):
        list(DataLoader(Broken(), num_workers=2))
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.05 seconds"):
        list(DataLoader(Recording(4, delay=0.5), num_workers=1, timeout=0.05))


def test_collate_fn_is_honoured_on_both_paths(device):
    def collate(samples):
        return {"n": len(samples), "x": gpuad.stack([gpuad.tensor(s[0]) for s in samples])}
    for ds in (Squares(), TensorDataset(*xy(7))):
        batches = list(DataLoader(ds, batch_size=3, collate_fn=collate, device=device))
        assert [b["n"] for b in batches] == [3, 3, 1]
        assert all(b["x"].device == device for b in batches)


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    from gpuad.data import default_collate
    Point = __import__("collections").namedtuple("Point", "x y")
    samples = [{"image": np.ones((2, 2), np.float32) * i, "label": i, "weight": 0.5 * i,
                "flag": bool(i % 2), "name": f"s{i}", "pair": (np.int64(i), [1.0, 2.0]),
                "point": Point(np.float64(i), i)} for i in range(3)]
    ours, theirs = default_collate(samples), torch_collate(samples)

    def compare(a, b, where):
        if isinstance(b, torch.Tensor):
            assert tuple(a.shape) == tuple(b.shape), where
            assert str(a.dtype) == str(b.dtype).removeprefix("torch."), where
            np.testing.assert_array_equal(host(a), b.numpy(), err_msg=where)
        elif isinstance(b, dict):
            assert list(a) == list(b), where
            for k in b:
                compare(a[k], b[k], f"{where}.{k}")
        elif isinstance(b, (list, tuple)):  # torch collates a tuple sample to a list
            assert len(a) == len(b) and type(a).__name__ in (type(b).__name__, "tuple"), where
            for i, (x, y) in enumerate(zip(a, b)):
                compare(x, y, f"{where}[{i}]")
        else:
            assert a == b, where
    compare(ours, theirs, "batch")
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])


def test_a_gpuad_generator_drives_the_shuffle():
    ds = TensorDataset(*xy(40))
    g = gpuad.Generator()

    def epoch():
        return orders(DataLoader(ds, batch_size=8, shuffle=True, generator=g), 1)[0]
    g.manual_seed(1)
    first = epoch()
    gpuad.manual_seed(99)  # the global generator plays no part
    g.manual_seed(1)
    assert epoch() == first and sorted(first) == list(range(40))
    g.manual_seed(2)
    assert epoch() != first
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=g.manual_seed(1))
    two = orders(loader, 2)
    assert two[0] == first and two[1] != first  # torch's: each epoch draws on from the generator


def test_batch_size_none_and_batch_sampler():
    torch = pytest.importorskip("torch")
    ours = list(DataLoader(Squares(), batch_size=None))
    theirs = list(torch.utils.data.DataLoader(Squares(), batch_size=None))
    assert len(ours) == len(theirs) == 7
    assert isinstance(ours[2][0], gpuad.Tensor) and ours[2][1] == theirs[2][1] == 4
    batches = [[0, 5], [6], [1, 2, 3]]
    loader = DataLoader(Squares(), batch_sampler=batches)
    assert len(loader) == 3
    assert [host(y).tolist() for _, y in loader] == [[0, 25], [36], [1, 4, 9]]


LOADER_ERRORS = [
    ({"num_workers": -1}, "num_workers option should be non-negative"),
    ({"timeout": -1}, "timeout option should be non-negative"),
    ({"prefetch_factor": 2}, "prefetch_factor option could only be specified"),
    ({"num_workers": 1, "prefetch_factor": -1}, "prefetch_factor option should be non-negative"),
    ({"persistent_workers": True}, "persistent_workers option needs num_workers > 0"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_sampler": [[0]], "drop_last": True}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, "mutually exclusive with drop_last"),
]


@pytest.mark.parametrize("kwargs,message", LOADER_ERRORS, ids=range(len(LOADER_ERRORS)))
def test_loader_argument_errors_like_torch(kwargs, message):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=message):
        DataLoader(Squares(), **kwargs)
    with pytest.raises(ValueError, match=message):
        torch.utils.data.DataLoader(Squares(), **kwargs)


# ---- MNIST: the real files -----------------------------------------------------------------------
def _real_mnist_folder():
    root = os.environ.get("GPUAD_DATA")
    folder = root and os.path.join(root, "mnist")
    if not folder or not all(os.path.isfile(os.path.join(folder, f + ".gz")) for f in MNIST_FILES):
        pytest.skip("MNIST not found: set GPUAD_DATA to a folder whose mnist/ holds the four "
                    "gzipped IDX files")
    return folder


@pytest.fixture(scope="module")
def mnist_train():
    _real_mnist_folder()
    return MNIST(train=True)


def test_mnist_train(mnist_train):
    ds = mnist_train
    images, labels = ds.tensors
    assert len(ds) == 60000 and images.shape == (60000, 1, 28, 28) and labels.shape == (60000,)
    assert images.dtype == gpuad.float32 and labels.dtype == gpuad.int64
    assert ds.data.dtype == gpuad.uint8 and ds.data.shape == (60000, 28, 28)
    assert ds.targets is labels and len(ds.classes) == 10
    assert host(labels)[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(host(labels)).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                                  5851, 5949]
    x = host(images)
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01  # standardised
    image, label = ds[0]
    assert image.shape == (1, 28, 28) and label.item() == 5


def test_mnist_test_split_unnormalised():
    _real_mnist_folder()
    ds = MNIST(train=False, normalize=False)
    images, labels = ds.tensors
    assert len(ds) == 10000 and host(labels)[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(host(labels)).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                                  1009]
    x = host(images)
    assert x.min() == 0 and x.max() == 1 and abs(x.mean() - 0.1325) < 0.002
    x0, _ = next(iter(DataLoader(ds, batch_size=1000)))
    assert x0.shape == (1000, 1, 28, 28)


# ---- MNIST: fake IDX files -----------------------------------------------------------------------
def idx(array, magic=None):
    magic = bytes([0, 0, 8, array.ndim]) if magic is None else magic
    return magic + struct.pack(f">{array.ndim}i", *array.shape) + array.astype(np.uint8).tobytes()


def write_fake(folder, n=3, gz=True, images=None, labels=None):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    contents = {"train-images-idx3-ubyte": idx(rng.integers(0, 256, (n, 28, 28))),
                "train-labels-idx1-ubyte": idx(np.arange(n) % 10)}
    contents.update({k: v for k, v in (("train-images-idx3-ubyte", images),
                                       ("train-labels-idx1-ubyte", labels)) if v is not None})
    for name, raw in contents.items():
        path = os.path.join(folder, name + (".gz" if gz else ""))
        with open(path, "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)


def test_mnist_reads_fake_files(tmp_path, monkeypatch):
    write_fake(tmp_path / "mnist", n=3)
    ds = MNIST(tmp_path, normalize=False)
    assert len(ds) == 3 and host(ds.targets).tolist() == [0, 1, 2]
    assert np.allclose(host(ds.tensors[0])[:, 0] * 255, host(ds.data))
    write_fake(tmp_path / "flat", n=2, gz=False)  # uncompressed, directly in <root>/
    assert len(MNIST(tmp_path / "flat")) == 2
    monkeypatch.setenv("GPUAD_DATA", str(tmp_path))
    assert MNIST().root == str(tmp_path) and len(MNIST()) == 3


@pytest.mark.parametrize("images,labels,file,message", [
    (idx(np.zeros((2, 28, 28)), magic=b"\x00\x00\x08\x01"), None, "images", "bad magic number"),
    (None, b"\x12\x34\x56\x78" * 3, "labels", "bad magic number"),
    (idx(np.zeros((2, 28, 28)))[:-100], None, "images", "size mismatch"),
    (None, idx(np.zeros(5))[:6], "labels", "truncated"),
    (idx(np.zeros((2, 27, 28))), None, "images", "wrong dims"),
    (None, idx(np.arange(4)), "images", "3 images but .* 4 labels"),
    (None, idx(np.array([1, 12, 3])), "labels", "label 12 outside"),
], ids=["images-magic", "labels-magic", "truncated-payload", "truncated-header", "dims", "count",
        "label-range"])
def test_mnist_malformed_files_name_the_file(tmp_path, images, labels, file, message):
    write_fake(tmp_path / "mnist", n=3, images=images, labels=labels)
    with pytest.raises(ValueError, match=f"train-{file}-idx.-ubyte.gz.*{message}"):
        MNIST(tmp_path)


def test_mnist_corrupt_gzip(tmp_path):
    write_fake(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz is not a valid gzip"):
        MNIST(tmp_path)
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz is not a valid gzip"):
        MNIST(tmp_path)


def test_mnist_missing_files_say_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        MNIST(tmp_path, train=False)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message and str(tmp_path / "mnist") in message
    assert "download=True" in message and "GPUAD_DATA" in message


# ---- MNIST: downloads from a local server -------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """http://127.0.0.1:<port>/ serving good/ (the real gzipped files), tampered/ (wrong content, a
    corrupt gzip, ...) and nothing under missing/ (404s)."""
    source = _real_mnist_folder()
    base = tmp_path_factory.mktemp("mirror")
    shutil.copytree(source, base / "good")
    (base / "tampered").mkdir()
    (base / "tampered" / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"not mnist"))
    labels = (base / "good" / "train-labels-idx1-ubyte.gz").read_bytes()
    (base / "tampered" / "train-labels-idx1-ubyte.gz").write_bytes(labels[:len(labels) // 2])
    handler = functools.partial(_QuietHandler, directory=str(base))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(datasets, "TIMEOUT", 5)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def _decompressed_sha(path):
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


def test_download_verifies_and_leaves_the_four_files(tmp_path, mirror, offline):
    ds = MNIST(tmp_path, train=False, download=True, mirrors=[mirror + "good/"])
    assert len(ds) == 10000
    folder = tmp_path / "mnist"
    assert sorted(os.listdir(folder)) == sorted(f + ".gz" for f in MNIST_FILES)
    assert all(_decompressed_sha(folder / (f + ".gz")) == datasets._SHA256[f] for f in MNIST_FILES)


def test_download_falls_through_bad_mirrors(tmp_path, mirror, offline):
    mirrors = [mirror + "missing/", mirror + "tampered/", mirror + "good/"]
    ds = MNIST(tmp_path, train=False, download=True, mirrors=mirrors)
    assert len(ds) == 10000
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted(f + ".gz" for f in MNIST_FILES)


def test_download_with_no_good_mirror_fails_cleanly(tmp_path, mirror, offline):
    mirrors = [mirror + "missing/", mirror + "tampered/", "http://127.0.0.1:1/"]
    with pytest.raises(RuntimeError) as info:
        MNIST(tmp_path, download=True, mirrors=mirrors)
    message = str(info.value)
    assert all(m + "train-images-idx3-ubyte.gz" in message for m in mirrors)
    assert "404" in message and "SHA-256" in message and "GPUAD_DATA" in message
    assert os.listdir(tmp_path / "mnist") == []  # no final name, no leftover partial file


# ---- Subset, ConcatDataset, random_split and map-style datasets through the loader --------------
class Samples(Dataset):
    """A map-style dataset whose samples mix a Tensor, a numpy array and Python numbers."""

    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return gpuad.tensor([float(i), 2.0 * i]), np.array([i, i + 1]), i, 0.5 * i


def test_loader_collates_tensors_arrays_and_numbers_like_torch():
    torch = pytest.importorskip("torch")

    class TorchSamples(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.tensor([float(i), 2.0 * i]), np.array([i, i + 1]), i, 0.5 * i
    ours = list(DataLoader(Samples(), batch_size=4))
    theirs = list(torch.utils.data.DataLoader(TorchSamples(), batch_size=4))
    assert len(ours) == len(theirs) == 3
    for batch, expected in zip(ours, theirs):
        for got, want in zip(batch, expected):
            assert got.dtype == np.dtype(str(want.dtype).removeprefix("torch."))
            np.testing.assert_array_equal(host(got), want.numpy())
    shuffled = list(DataLoader(Samples(), batch_size=3, shuffle=True, num_workers=2, seed=1))
    assert sorted(np.concatenate([host(b[2]) for b in shuffled]).tolist()) == list(range(10))


def test_subset_and_concat_dataset():
    base = Samples(10)
    sub = Subset(base, [7, 2, 5])
    assert len(sub) == 3 and sub[0][2] == 7 and sub[-1][2] == 5
    assert [s[2] for s in sub.__getitems__([2, 0])] == [5, 7]
    both = ConcatDataset([sub, Samples(4)])
    assert len(both) == 7 and both.cumulative_sizes == [3, 7]
    assert [both[i][2] for i in (0, 2, 3, 6, -1, -7)] == [7, 5, 0, 3, 3, 7]
    with pytest.raises(ValueError, match="absolute value of index"):
        both[-8]
    with pytest.raises(AssertionError, match="should not be an empty iterable"):
        ConcatDataset([])
    assert len(base + sub) == 13
    ds = TensorDataset(*xy(6))
    batches = list(DataLoader(Subset(ds, [5, 0, 3]), batch_size=2))
    assert [host(y).tolist() for _, y in batches] == [[5, 0], [3]]
    assert host(next(iter(DataLoader(ConcatDataset([ds, ds]), batch_size=8)))[1]).tolist() == [
        0, 1, 2, 3, 4, 5, 0, 1]


def test_random_split_follows_torchs_rules():
    torch = pytest.importorskip("torch")
    for lengths in ([3, 7], [0.3, 0.7], [0.25, 0.25, 0.5], [1 / 3] * 3):
        parts = random_split(range(10), lengths, generator=gpuad.Generator().manual_seed(0))
        expected = torch.utils.data.random_split(range(10), lengths,
                                                 generator=torch.Generator().manual_seed(0))
        assert [len(p) for p in parts] == [len(p) for p in expected]
        assert sorted(i for p in parts for i in p) == list(range(10))
    a = random_split(range(10), [5, 5], generator=gpuad.Generator().manual_seed(3))
    b = random_split(range(10), [5, 5], generator=gpuad.Generator().manual_seed(3))
    assert [list(p) for p in a] == [list(p) for p in b]
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        assert [len(p) for p in random_split(range(3), [0.1, 0.1, 0.8])] == [1, 0, 2]
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        random_split(range(10), [-0.5, 1.5])
