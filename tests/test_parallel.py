"""numpy passes split over the cores (gpuad/backend/parallel.py): the blocks cover the array once,
the CNN's ops give bit for bit what they give unsplit, and a pass stays whole, in the calling
thread, for anything but a large numpy array or when the user allows one thread."""
import multiprocessing
import os
import threading
import time
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
from gpuad import backend
from gpuad.backend import parallel


@pytest.fixture
def split(monkeypatch):
    """Four threads and blocks of any size, so test-sized arrays split."""
    monkeypatch.setattr(parallel, "MIN_BLOCK_BYTES", 1)
    before = parallel.threads()
    parallel.set_threads(4)
    yield
    parallel.set_threads(before)


class Blocks:
    """An fn for parallel_slices that adds one to its block of `array` and notes who did it."""

    def __init__(self, array):
        self.array, self.blocks, self.threads = array, [], set()
        self.lock = threading.Lock()

    def __call__(self, block):
        with self.lock:
            self.blocks.append(block)
            self.threads.add(threading.get_ident())
        self.array[block] += 1


def test_blocks_cover_the_array_once_on_several_threads_along_its_outermost_axis(split):
    a = np.zeros((16, 14, 14, 8), np.float32).transpose(3, 0, 1, 2)  # batch-last, seen as NCHW
    fn = Blocks(a)
    backend.parallel_slices(fn, a)
    assert (a == 1).all() and len(fn.blocks) == 4 and len(fn.threads) > 1
    assert all(b[0] == slice(None) and b[1].stop - b[1].start == 4 for b in fn.blocks)  # C cut

    conv1 = np.zeros((1, 3, 3, 28, 28, 8), np.float32)  # one channel; 3 splits 4 ways unevenly
    fn = Blocks(conv1)
    backend.parallel_slices(fn, conv1)
    assert (conv1 == 1).all() and {len(b) for b in fn.blocks} == {4}  # cut along the 28 rows

    rows = np.zeros((3, 1000))
    fn = Blocks(rows)
    backend.parallel_slices(fn, rows, axis=0)  # as asked, though 3 rows make 3 blocks of 4
    assert (rows == 1).all() and sorted(b[0].start for b in fn.blocks) == [0, 1, 2]


def test_small_device_and_single_thread_passes_run_whole_in_the_calling_thread(split,
                                                                               monkeypatch):
    def blocks(like, axis=None):
        fn = Blocks(np.zeros(like.shape))
        backend.parallel_slices(fn, like, axis)
        assert (fn.array == 1).all()
        return fn.blocks if fn.threads == {threading.get_ident()} else "split"

    assert blocks(backend.to_device(np.zeros((8, 8)), "strict")) == [(...,)]  # CuPy's stand-in
    assert blocks(np.zeros(())) == [(...,)]
    assert blocks(np.zeros((8, 8))) == "split"
    parallel.set_threads(1)
    assert blocks(np.zeros((8, 8))) == [(...,)]
    assert blocks(np.zeros((8, 8)), axis=1) == [(slice(None), slice(None))]
    parallel.set_threads(4)
    monkeypatch.setattr(parallel, "MIN_BLOCK_BYTES", 1 << 19)
    assert blocks(np.zeros((8, 8))) == [(...,)]
    assert blocks(np.zeros((8, 1 << 16))) == "split"  # 4 MiB: 4 blocks of 1 MiB

    monkeypatch.setattr(parallel, "MIN_BLOCK_BYTES", 1)
    inner = []
    backend.parallel_slices(lambda b: inner.append(blocks(np.zeros((8, 8)))), np.zeros((8, 8)))
    assert inner == [[(...,)]] * 4  # a block never splits again


def test_an_error_in_a_block_is_raised_once_every_block_has_finished(split):
    a = np.zeros((4, 8))

    def fn(block):
        time.sleep(0.01 * (4 - block[0].start))  # the caller's block finishes last
        a[block] = 1
        if block[0].start:
            raise ValueError(f"block {block[0].start}")
    with pytest.raises(ValueError, match="block"):
        backend.parallel_slices(fn, a, axis=0)
    assert (a == 1).all()


def test_blocks_keep_the_callers_silenced_float_warnings(split):
    a = np.full((4, 64), np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(invalid="ignore"):
            backend.parallel_slices(lambda b: np.multiply(a[b], 0, out=a[b]), a)
    assert np.isnan(a).all()


def test_thread_count_follows_the_users_limits(monkeypatch):
    monkeypatch.delenv("GPUAD_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert parallel._default_threads() == 1
    monkeypatch.setenv("GPUAD_NUM_THREADS", "3")
    assert parallel._default_threads() == 3
    monkeypatch.delenv("GPUAD_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    if hasattr(os, "sched_getaffinity"):
        assert parallel._default_threads() == len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="positive int"):
        parallel.set_threads(0)


def _sum_of_halves(queue):
    a = np.zeros((4, 8))
    backend.parallel_slices(lambda b: a.__setitem__(b, 1), a, axis=0)
    queue.put(a.sum())


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_a_forked_child_gets_a_pool_of_its_own(split):
    backend.parallel_slices(lambda b: None, np.zeros((4, 8)), axis=0)  # the parent's pool runs
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sum_of_halves, args=(queue,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12: fork with threads
        child.start()
    try:
        assert queue.get(timeout=30) == 32.0  # its blocks ran (with the parent's pool: a hang)
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.kill()


def _cnn_outputs(rng, dtype):
    """LeNet-style forward and backward, plus the paths LeNet does not take (overlapping and
    padded pools, dilated strided convs): every array the CNN ops return."""
    x = gpuad.tensor(rng.standard_normal((4, 3, 12, 12)).astype(dtype), requires_grad=True)
    w1 = gpuad.tensor(rng.standard_normal((8, 3, 3, 3)).astype(dtype), requires_grad=True)
    w2 = gpuad.tensor(rng.standard_normal((6, 8, 3, 3)).astype(dtype), requires_grad=True)
    b = gpuad.tensor(rng.standard_normal(8).astype(dtype), requires_grad=True)
    h = F.max_pool2d(gpuad.relu(F.conv2d(x, w1, b, padding=1)), 2)  # the tiled pool
    h = gpuad.relu(F.conv2d(h, w2, stride=2, padding=2, dilation=2))
    h = F.max_pool2d(h, 3, stride=1, padding=1) + F.avg_pool2d(h, 2, stride=1)[..., :1, :1]
    (h * gpuad.tensor(rng.standard_normal(h.shape).astype(dtype))).sum().backward()
    return [t.detach().numpy() for t in (h, x.grad, w1.grad, w2.grad, b.grad)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_cnn_ops_split_give_the_unsplit_results_bit_for_bit(split, dtype):
    rng = np.random.default_rng(0)
    split_run = _cnn_outputs(rng, dtype)
    parallel.set_threads(1)
    whole_run = _cnn_outputs(np.random.default_rng(0), dtype)
    for a, b in zip(split_run, whole_run):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_relu_gradient_is_wheres_bit_for_bit_nan_inf_and_signed_zero_included(split):
    rng = np.random.default_rng(1)
    for dtype in (np.float16, np.float32, np.float64):
        y = np.maximum(rng.standard_normal((8, 64)), 0).astype(dtype)
        g = rng.standard_normal((8, 64)).astype(dtype)
        y[0, :4] = [np.nan, 0.0, -0.0, np.inf]
        g[:, :6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, -1.0]
        y_t = gpuad.tensor(y, requires_grad=True)
        out = gpuad.relu(y_t)
        out.backward(gpuad.tensor(g))
        expected = np.where(np.maximum(y, 0) <= 0, 0, g).astype(dtype)
        assert y_t.grad.numpy().tobytes() == expected.tobytes()
