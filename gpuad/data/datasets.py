"""Standard data sets as TensorDatasets on the host: MNIST.

Reads the IDX files from disk (gzipped or not) and, when asked, downloads them from public mirrors,
verifying SHA-256 sums and writing atomically. Tensors are built on the CPU; the DataLoader moves
them.
"""
import gzip
import hashlib
import math
import os
import zlib

import numpy

from ..tensor import Tensor
from .dataset import TensorDataset

MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
           "https://storage.googleapis.com/cvdf-datasets/mnist/"]
TIMEOUT = 30  # seconds per network operation
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the training images' statistics (PyTorch MNIST example)

# SHA-256 of the decompressed files (the mirrors' gzip bytes may differ, the content may not)
_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def default_root():
    """$GPUAD_DATA, else ~/.cache/gpuad."""
    return os.environ.get("GPUAD_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "gpuad")


def _gunzip(raw):
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"not a valid gzip file ({e})") from None


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if not path.endswith(".gz"):
        return raw
    try:
        return _gunzip(raw)
    except ValueError as e:
        raise ValueError(f"MNIST: {path} is {e}; delete it and download it again") from None


def read_idx(path, ndim):
    """The uint8 array in an IDX file (magic 0x0000 08 <ndim>, big-endian int32 sizes, payload)."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise ValueError(f"MNIST: {path} has a bad magic number {raw[:4].hex() or '(empty)'}; "
                         f"expected 0x0000080{ndim} (an IDX file of {ndim}-d unsigned bytes)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"MNIST: {path} is truncated: {len(raw)} bytes, shorter than its "
                         f"{header}-byte header")
    shape = tuple(int(d) for d in numpy.frombuffer(raw, ">i4", ndim, 4))
    if len(raw) - header != math.prod(shape):
        raise ValueError(f"MNIST: {path}: size mismatch, the header says {shape} = "
                         f"{math.prod(shape)} bytes of data but the file holds "
                         f"{len(raw) - header} (truncated or corrupt; download it again)")
    return numpy.frombuffer(raw, numpy.uint8, offset=header).reshape(shape)


class MNIST(TensorDataset):
    """The MNIST digits (60,000 train / 10,000 test 28x28 images), like torchvision.datasets.MNIST.

    `.data` (uint8 (N, 28, 28)) and `.targets` (int64 (N,)) are the raw contents; `.tensors` are the
    float32 images (N, 1, 28, 28) scaled to [0, 1] (and standardised with MNIST_MEAN, MNIST_STD if
    normalize) and the labels, so `ds[i]` is (image, label). Files are looked up in <root>/mnist/,
    then <root>/; root defaults to $GPUAD_DATA, then ~/.cache/gpuad. download=True fetches missing
    files into <root>/mnist/ from `mirrors` (default MIRRORS), in order.
    """
    classes = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine")

    def __init__(self, root=None, train=True, download=False, mirrors=None, normalize=True):
        self.root = os.fspath(root) if root is not None else default_root()
        self.train = train
        prefix = "train" if train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
        if download:
            for name in _SHA256:
                if self._find(name) is None:
                    _download(name, os.path.join(self.root, "mnist"),
                              MIRRORS if mirrors is None else mirrors)
        paths = [self._find(name) for name in names]
        if None in paths:
            missing = names[paths.index(None)]
            raise FileNotFoundError(
                f"MNIST: {missing}[.gz] not found in {os.path.join(self.root, 'mnist')} or "
                f"{self.root}; pass download=True to fetch it, or copy the MNIST IDX files into "
                f"{os.path.join(self.root, 'mnist')} (or set GPUAD_DATA to a folder whose mnist/ "
                f"holds them)")
        images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"MNIST: {paths[0]}: wrong dims, images are {images.shape[1:]}, "
                             f"expected (28, 28)")
        if len(images) != len(labels):
            raise ValueError(f"MNIST: {paths[0]} holds {len(images)} images but {paths[1]} "
                             f"holds {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"MNIST: {paths[1]} has a label {labels.max()} outside 0..9")
        self.data, self.targets = Tensor(images.copy()), Tensor(labels.astype(numpy.int64))
        x = images.reshape(-1, 1, 28, 28).astype(numpy.float32) / numpy.float32(255)
        if normalize:
            x = (x - numpy.float32(MNIST_MEAN)) / numpy.float32(MNIST_STD)
        super().__init__(Tensor(x), self.targets)

    def _find(self, name):
        for folder in (os.path.join(self.root, "mnist"), self.root):
            for path in (os.path.join(folder, name), os.path.join(folder, name + ".gz")):
                if os.path.isfile(path):
                    return path
        return None

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"MNIST({split}, {len(self)} samples, root={self.root!r})"


def _download(name, folder, mirrors):
    """Fetch <mirror><name>.gz into folder, trying mirrors in order; only a file whose decompressed
    content has the known SHA-256 ever gets its final name."""
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, name + ".gz")
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name + ".gz"
        part = os.path.join(folder, f".{name}.gz.{os.getpid()}.part")
        try:
            _fetch(url, part)
            with open(part, "rb") as f:
                digest = hashlib.sha256(_gunzip(f.read())).hexdigest()
            if digest != _SHA256[name]:
                raise ValueError(f"SHA-256 of the decompressed file is {digest}, expected "
                                 f"{_SHA256[name]}")
            os.replace(part, final)
            _fsync_dir(folder)
            return final
        except Exception as e:  # noqa: BLE001  (any failure: note it, try the next mirror)
            failures.append(f"  {url}: {type(e).__name__}: {e}")
        finally:
            if os.path.exists(part):
                os.remove(part)
    raise RuntimeError(f"MNIST: could not download {name}.gz from any mirror:\n"
                       + "\n".join(failures or ["  (no mirrors given)"])
                       + f"\nCopy the MNIST IDX files (gzipped or not) into {folder}, or set "
                       f"GPUAD_DATA to a folder whose mnist/ subfolder holds them.")


def _fetch(url, path):
    import urllib.request  # lazily: importing gpuad stays lean

    from tqdm import tqdm
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(path, "wb") as f:
        size = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=size, unit="B", unit_scale=True, desc=os.path.basename(url), leave=False,
                  disable=None) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                bar.update(len(chunk))
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
