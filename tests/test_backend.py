"""Devices, array modules and the strict backend (gpuad/backend.py, gpuad/testing/strict.py)."""
import numpy as np
import pytest

import gpuad
from gpuad import backend
from gpuad.testing import strict


def test_device_parsing():
    assert gpuad.device("cpu") == backend.CPU and str(gpuad.device("cpu")) == "cpu"
    assert gpuad.device("cuda") == gpuad.device("cuda:0") == "cuda:0"
    assert gpuad.device("cuda:1").index == 1 and gpuad.device("cuda:1").type == "cuda"
    assert gpuad.device(gpuad.device("strict")) == "strict"
    assert repr(gpuad.device("cuda:1")) == "device(type='cuda', index=1)"
    assert len({gpuad.device("cpu"), gpuad.device("cpu"), gpuad.device("cuda:0")}) == 2
    for bad in ("gpu", "cuda:x", "cpu:1", ""):
        with pytest.raises(ValueError, match="unknown device"):
            gpuad.device(bad)
    with pytest.raises(TypeError, match="expected a string"):
        gpuad.device(3)
    with pytest.raises(AttributeError):
        gpuad.device("cpu").type = "cuda"


def test_cuda_queries_never_fail():
    assert isinstance(gpuad.cuda.is_available(), bool)
    assert gpuad.cuda.device_count() >= 0
    if not gpuad.cuda.is_available():
        assert gpuad.cuda.device_count() == 0


@pytest.mark.skipif(gpuad.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_says_how_to_get_one():
    with pytest.raises(RuntimeError, match=r"cuda:0 was requested.*gpuad\[cuda12\]"):
        gpuad.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="cuda:0 was requested"):
        gpuad.tensor([1.0]).cuda()


def test_xp_of_and_device_of():
    a = np.zeros(2)
    assert backend.xp_of(a) is np and backend.device_of(a) == "cpu"
    s = backend.to_device(a, "strict")
    assert backend.xp_of(s) is strict.xp and backend.device_of(s) == "strict"
    assert backend.to_device(s, "cpu").__class__ is np.ndarray


def test_strict_arrays_refuse_what_cupy_refuses():
    s = backend.to_device(np.arange(3.0), "strict")
    with pytest.raises(TypeError, match="implicit conversion"):
        np.asarray(s)
    with pytest.raises(TypeError):
        np.exp(s)  # a numpy function on a device array
    with pytest.raises(TypeError):
        np.sum(s)
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        s + np.ones(3)  # mixing host and device arrays
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        np.ones(3) * s
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        s[np.array([0, 1])]  # host index arrays
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        strict.xp.maximum(s, np.ones(3))


def test_strict_arrays_do_what_cupy_does():
    xp = strict.xp
    s = backend.to_device(np.arange(6.0).reshape(2, 3), "strict")
    total = s.sum()
    assert isinstance(total, strict.StrictArray) and total.ndim == 0  # 0-d array, not a scalar
    assert float(total) == 15.0
    assert isinstance(xp.exp(s), strict.StrictArray)
    assert isinstance(s * 2 + np.float32(1), strict.StrictArray)
    assert s.shape == (2, 3) and s.T.shape == (3, 2)
    s[0, 1] = 10.0
    assert float(s[0, 1]) == 10.0
    host = backend.asnumpy(s)
    assert type(host) is np.ndarray and host[0, 1] == 10.0
    assert "exp" in strict.USED and "ndarray.sum" in strict.USED


def test_the_op_suite_only_calls_functions_that_cupy_has():
    """Run every op case forward and backward on the strict backend, then look up each array-module
    function and array method it reached in CuPy's namespace (CuPy imports without a GPU)."""
    cupy = pytest.importorskip("cupy")
    from op_cases import CASES
    from test_ops import _tensors

    strict.USED.clear()
    for case in CASES:
        for shapes in case.shapes:
            for kwargs in case.kwargs:
                inputs = _tensors(case, case.sample(shapes), "strict")
                outs = case.fn(*inputs, **kwargs)
                outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
                total = [o.sum() for o in outs if o.requires_grad]
                if total:
                    sum(total).backward()
    gpuad.erf(gpuad.tensor([0.1, 1.0, 5.0], device="strict"))  # Cody's path on the host arrays
    missing = strict.missing_from(cupy, strict.USED)
    assert len(strict.USED) > 20
    assert not missing, f"CuPy lacks {missing}: add a helper to gpuad/backend.py"


# ---- float32 matmul precision (TF32 is opt-in, as in torch) --------------------------------------
def test_matmul_precision_is_highest_by_default_and_checked():
    assert gpuad.get_float32_matmul_precision() == "highest"
    with pytest.raises(ValueError, match="set_float32_matmul_precision: expected 'highest'"):
        gpuad.set_float32_matmul_precision("fast")
    assert gpuad.get_float32_matmul_precision() == "highest"


@pytest.mark.gpu
def test_tf32_rounds_float32_matmul_inputs_only_when_asked():
    """1.0001 has no TF32 representation (10-bit mantissa): with TF32 a 256-term dot product of
    1.0001s and ones comes out 256.0, in float32 256.0256."""
    x = gpuad.full((256, 256), 1.0001, device="cuda")
    y = gpuad.ones(256, 256, device="cuda")
    try:
        exact = (x @ y)[0, 0].item()
        gpuad.set_float32_matmul_precision("high")
        rounded = (x @ y)[0, 0].item()
    finally:
        gpuad.set_float32_matmul_precision("highest")
    assert abs(exact - 256.0256) < 1e-3 and rounded == 256.0
    assert abs((x @ y)[0, 0].item() - 256.0256) < 1e-3  # and back


def test_malloc_keeps_freed_memory_on_glibc_unless_turned_off():
    import platform
    import subprocess
    import sys
    code = "import gpuad; print(gpuad.backend.MALLOC_TUNED)"
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(glibc)
    env = {**__import__("os").environ, "GPUAD_MALLOC_TUNING": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.strip() == "False"


def test_release_freed_memory_hands_the_heaps_free_pages_back():
    if not backend.MALLOC_TUNED:
        assert backend.release_freed_memory() in (True, False)  # no glibc: nothing to check
        return

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    arrays = [np.ones(1 << 18, np.float32) for _ in range(64)]  # 64 MB in 1 MB heap chunks
    before = rss_mb()
    del arrays
    kept = rss_mb()  # the tuned malloc keeps them mapped
    assert backend.release_freed_memory() is True
    assert before - kept < 16 and kept - rss_mb() > 48


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint64"])
def test_indices_outside_finds_the_first_bad_entry_as_a_full_scan_does(dtype):
    rng = np.random.default_rng(0)
    signed = np.dtype(dtype).kind == "i"
    for low, high, ignore in [(0, 5, None), (0, 5, -100 if signed else None), (-3, 3, None),
                              (0, 0, None), (2, 5, 7)]:
        if low < 0 and not signed:
            continue
        for _ in range(40):
            values = rng.integers(-6 if signed else 0, 9, rng.integers(0, 7))
            if ignore is not None:
                values[rng.random(values.size) < 0.3] = ignore
            index = values.astype(dtype).reshape(-1, 1)[::-1, 0]  # a strided view too
            bad = [int(v) for v in index if not low <= v < high and v != ignore]
            assert backend.indices_outside(index, low, high, ignore) == (bad[0] if bad else None)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(8,), (128, 256), (3, 8192), (2, 8192 + 5), (5, 7, 999)])
def test_relu_gives_maximums_bits_on_its_fast_path_and_off_it(dtype, shape):
    # the fast path (whole blocks of zeros, then a tail) must give numpy's maximum(x, 0) bit for
    # bit: NaN of either sign kept, -0.0 as maximum gives it, infinities
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:8] = [np.nan, -np.nan, -0.0, 0.0, np.inf, -np.inf, -1.0, 1.0]
    bits = np.dtype(f"i{x.itemsize}")
    want = np.maximum(x, 0)
    assert backend.relu(x).view(bits).tolist() == want.view(bits).tolist()
    strided = x[..., ::2]  # not contiguous: maximum itself
    assert np.array_equal(backend.relu(strided).view(bits), np.maximum(strided, 0).view(bits))
    permuted = x.transpose()  # contiguous in another axis order: its layout is kept, as maximum's
    got, expected = backend.relu(permuted), np.maximum(permuted, 0)
    # an array of its own, as maximum's (a transposed view of a buffer kept LeNet's peak memory
    # 0.3 MB higher)
    assert got.strides == expected.strides and got.base is None
    assert np.array_equal(got.view(bits), expected.view(bits))
    into = np.full_like(x, 7)
    assert backend.relu(x, out=into) is into
    assert np.array_equal(into.view(bits), want.view(bits))
    y = x.copy()
    backend.relu(y, out=y)  # in place, as the benchmark floor uses it
    assert np.array_equal(y.view(bits), want.view(bits))
    t = gpuad.tensor(x, requires_grad=True)
    gpuad.nn.functional.relu(t).sum().backward()
    # torch's threshold_backward: the gradient stops where the output is <= 0 (NaN passes it)
    assert np.array_equal(t.grad.numpy(), np.where(want <= 0, 0, 1).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NN", "NT", "TN", "TT"])
def test_matmul_sums_a_long_product_with_a_small_result_from_pieces(dtype, layout):
    # OpenBLAS's packing GEMM is slow on (9, 50176) @ (50176, 16), a conv's weight gradient;
    # backend.linalg.matmul sums products of pieces of k in order, which its small kernel runs fast
    from gpuad.backend import linalg
    rng = np.random.default_rng(1)
    m, k, n = 9, 50176, 16
    a = rng.standard_normal((m, k) if layout[0] == "N" else (k, m)).astype(dtype)
    b = rng.standard_normal((k, n) if layout[1] == "N" else (n, k)).astype(dtype)
    a, b = (a if layout[0] == "N" else a.T), (b if layout[1] == "N" else b.T)
    piece = linalg._SMALL_PRODUCT // (m * n) // linalg._PIECE_STEP * linalg._PIECE_STEP
    assert 2 * piece <= k  # this shape is split
    want = a[:, :piece] @ b[:piece]
    for start in range(piece, k, piece):
        want += a[:, start:start + piece] @ b[start:start + piece]
    got = linalg.matmul(a, b)
    assert got.dtype == dtype and got.shape == (m, n)
    assert np.array_equal(got, want)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(got, exact, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-2 if dtype == np.float32 else 1e-10)
    a[0, 5] = np.nan  # NaN and infinities reach the result as in one product
    assert np.isnan(linalg.matmul(a, b)[0]).all() and not np.isnan(linalg.matmul(a, b)[1:]).any()


@pytest.mark.parametrize("shapes, dtype", [
    (((1, 60000), (60000, 16)), np.float32),  # a vector: numpy's own path
    (((16, 60000), (60000, 32)), np.float32),  # a result too large to gain
    (((9, 2000), (2000, 16)), np.float32),  # a short k: one small product already
    (((9, 60000), (60000, 16)), np.float16),  # no BLAS
    (((9, 60000), (60000, 16)), np.int64),
    (((3, 9, 60000), (60000, 16)), np.float32),  # batched: not 2-D
])
def test_matmul_is_one_product_elsewhere(shapes, dtype):
    from gpuad.backend import linalg
    rng = np.random.default_rng(2)
    a, b = (rng.integers(-3, 4, s).astype(dtype) for s in shapes)
    got, want = linalg.matmul(a, b), a @ b
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_conv_weight_gradient_of_few_channels_on_a_large_batch_is_accurate():
    # LeNet's first layer at batch 64: the gradient's GEMM is split (above); against float64
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    g = rng.standard_normal((64, 16, 28, 28)).astype(np.float32)
    grads = []
    for dtype in (np.float32, np.float64):
        wt = gpuad.tensor(w.astype(dtype), requires_grad=True)
        y = gpuad.nn.functional.conv2d(gpuad.tensor(x.astype(dtype)), wt, padding=1)
        (y * gpuad.tensor(g.astype(dtype))).sum().backward()
        grads.append(wt.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-2)


def _erf_inputs(rng):
    return np.concatenate([np.linspace(-6, 6, 200_001), rng.standard_normal(100_000) * 2,
                           2.0 ** rng.uniform(-140, 0, 20_000) * rng.choice([-1, 1], 20_000),
                           np.linspace(0.83, 1.26, 20_001),  # both seams of the float32 pieces
                           [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 3.9, 3.92, 4.0, 4.01,
                            1e-30, 1e-45, 0.84375, 1.25]])


def test_erf_of_float32_is_within_an_ulp_of_the_float64_erf():
    # float32 erf runs in float32 on three fitted pieces: at most about 1 ulp from the float64
    # erf (torch's erff: 0.74), exactly +-1 from 3.92 on, and 0, -0, the infinities and NaN (its
    # sign bit too) as the float64 path gives them
    from gpuad.backend import special
    x = _erf_inputs(np.random.default_rng(5)).astype(np.float32)
    got = special.erf(x)
    want = special.erf(x.astype(np.float64))
    assert got.dtype == np.float32 and got.shape == x.shape
    finite = np.isfinite(x)
    ulps = np.abs(got[finite] - want[finite]) / np.spacing(np.abs(want[finite]).astype(np.float32))
    assert ulps.max() <= 1.01, (ulps.max(), x[finite][np.argmax(ulps)])
    assert (ulps > 0.5).mean() < 0.05  # mostly correctly rounded
    exact = ~finite | (np.abs(x) >= 3.92) | (x == 0)
    assert np.array_equal(got[exact], want[exact].astype(np.float32), equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    zero_d = special.erf(np.array(0.5, np.float32))  # 0-d in, 0-d out
    assert zero_d.shape == () and abs(zero_d - special.erf(np.array(0.5))) < 6e-8


@pytest.mark.parametrize("scale", [1 / np.sqrt(2), 3.0])
def test_float32_erf_gathering_its_outer_pieces_keeps_every_bit(scale):
    # mostly small entries (GELU's inputs): the outer pieces run on the gathered rest and are put
    # back; mostly large ones: every piece over every entry. The same bits as every piece over
    # every entry, with NaN of either sign, the infinities, both zeros and the piece boundaries
    from gpuad.backend import special
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(1 << 16) * scale).astype(np.float32)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 0.84375, -0.84375, 1.25,
                      -1.25, 4.0, 3.92, 1e-30, -1e-45], np.float32)
    edges = np.concatenate([edges, np.nextafter(edges[6:12], np.float32(0))])
    x[rng.choice(x.size, 300, replace=False)] = np.resize(edges, 300)
    every_piece = special.where(np.abs(x) < np.float32(special._ERF32_SMALL),
                                special._erf32_small(x), special._erf32_rest(x))
    got = special._erf_float32(x)
    assert np.array_equal(got.view(np.uint32), every_piece.view(np.uint32))
    rest = int(np.count_nonzero(~(np.abs(x) < np.float32(special._ERF32_SMALL))))
    assert (rest < 0.4 * x.size) == (scale < 1)  # the scales take both paths


def test_erf_of_float16_is_the_float64_erf_rounded():
    from gpuad.backend import special
    x = _erf_inputs(np.random.default_rng(6)).astype(np.float16)
    got = special.erf(x)
    assert got.dtype == np.float16
    assert np.array_equal(got, special.erf(x.astype(np.float64)).astype(np.float16),
                          equal_nan=True)


def test_the_float32_erf_coefficients_are_those_the_fit_script_gives():
    # scripts/fit_erf.py is how they were made: fitting again gives them (up to the last bits a
    # different BLAS may round differently)
    import importlib.util
    import pathlib

    from gpuad.backend import special
    path = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "fit_erf.py"
    spec = importlib.util.spec_from_file_location("fit_erf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    p, e, q, r = module.fit()
    assert e == special._ERF32_E
    for fitted, kept in ((p, special._ERF32_P), (q, special._ERF32_Q), (r, special._ERF32_R)):
        np.testing.assert_allclose(fitted, kept, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_where_selects_numpys_bits(dtype, monkeypatch):
    # backend.where selects bits (numpy's where branches per element, 6x slower on a mask with no
    # pattern): every value, NaN of either sign, -0.0 and the infinities, and the dtype must be
    # numpy.where's, for arrays, numbers (+0.0 and -0.0 apart) and transposed views
    rng = np.random.default_rng(6)
    shape = (128, 80)  # above the size where the select starts
    a, b = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    a.reshape(-1)[:6] = [np.nan, -np.nan, -0.0, 0.0, np.inf, -np.inf]
    b.reshape(-1)[2:8] = [np.nan, -0.0, -np.nan, np.inf, 0.0, -np.inf]
    cond = rng.random(shape) > 0.5
    pairs = [(a, b), (a, 0), (0, b), (a, 0.0), (-0.0, b), (a, -0.0), (1.5, b), (a, 2), (a, True)]
    wants = [np.where(cond, x, y) for x, y in pairs] + [np.where(cond.T, a.T, b.T)]
    calls = []
    real_where = np.where
    monkeypatch.setattr(np, "where", lambda *args: calls.append(args) or real_where(*args))
    gots = [backend.where(cond, x, y) for x, y in pairs] + [backend.where(cond.T, a.T, b.T)]
    assert not calls  # every case above took the select
    for got, want in zip(gots, wants):
        assert got.dtype == want.dtype == dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
    # a mask that picks one side everywhere: a fresh copy of that side (never a view of it)
    for uniform in (np.zeros(shape, bool), np.ones(shape, bool)):
        for x, y in pairs + [(a.T.T, b)]:
            got = backend.where(uniform, x, y)
            want = real_where(uniform, x, y)
            assert got.dtype == want.dtype == dtype and got.tobytes() == want.tobytes()
            assert got.flags.c_contiguous and got.flags.writeable
            assert not any(np.shares_memory(got, v) for v in (x, y) if isinstance(v, np.ndarray))
        got = backend.where(uniform.T, a.T, b.T)
        assert got.tobytes() == real_where(uniform.T, a.T, b.T).tobytes()
    assert not calls
    # the rest is numpy's where: integers, a number that widens the dtype, broadcasting, small
    small = cond[:2, :3]
    for args in ((cond, cond.astype(np.int32), 0), (cond, a, np.float64(0.5)), (cond, a, b[:1]),
                 (small, a[:2, :3], b[:2, :3])):
        got, want = backend.where(*args), real_where(*args)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    assert len(calls) == 4


def test_in_order_of_copies_into_the_other_operands_memory_order_only_when_they_differ():
    rng = np.random.default_rng(0)
    batch_last = rng.standard_normal((3, 7, 7, 200)).astype(np.float32).transpose(3, 0, 1, 2)
    nchw = rng.standard_normal((200, 3, 7, 7)).astype(np.float32)
    moved = backend.in_order_of(nchw, batch_last)
    assert moved is not nchw and np.array_equal(moved, nchw)
    assert moved.strides == batch_last.strides  # batch-last, as the output a ufunc writes
    same = np.ascontiguousarray(batch_last.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    assert backend.in_order_of(same, batch_last) is same  # already in that order
    assert backend.in_order_of(nchw, nchw.copy()) is nchw
    small = nchw[:2]
    assert backend.in_order_of(small, batch_last[:2]) is small  # below the size worth a copy
    on_device = strict.wrap(nchw)
    assert backend.in_order_of(on_device, batch_last) is on_device  # numpy's concern alone
    # relu's backward reads its gradient through it: the same bits either way
    y = np.maximum(batch_last, 0)
    from gpuad.ops.elementwise import _relu_grad
    mixed, plain = _relu_grad(nchw, y), _relu_grad(np.array(moved), y)
    assert mixed.strides == y.strides and np.array_equal(mixed.view(np.uint32),
                                                          plain.view(np.uint32))


def test_may_hold_nan_reads_numpy_arrays_and_assumes_a_nan_elsewhere():
    a = np.arange(12.0).reshape(3, 4)
    assert not backend.may_hold_nan(a)
    a[1, 2] = np.nan
    assert backend.may_hold_nan(a)
    assert not backend.may_hold_nan(np.zeros((0, 3)))  # empty: nothing to find
    assert not backend.may_hold_nan(np.arange(5))  # integers hold no NaN
    x = gpuad.tensor(np.ones(3), device="strict")
    assert backend.may_hold_nan(x.array)  # a device array: the host does not ask


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("target_shape,index_shape", [((65, 16), (32, 8)), ((9, 3, 4), (40,)),
                                                      ((5, 2), (3, 3))], ids=str)
def test_scatter_add_of_rows_gives_the_bits_of_the_row_wise_add_at(target_shape, index_shape,
                                                                   dtype, monkeypatch):
    """backend.scatter_add adds rows picked by one integer array entry by entry (numpy's fast 1-D
    add.at): the same additions in the same order as numpy's row-wise add.at, repeats and negative
    rows included, into a target that already holds values."""
    rng = np.random.default_rng(3)
    rows = target_shape[0]
    index = rng.integers(-rows, rows, index_shape)
    index.flat[:3] = (0, -rows, rows - 1)  # both ends, and a row named both ways
    values = (rng.normal(0, 1e3, index_shape + target_shape[1:])).astype(dtype)
    values.flat[::7] = 1e-6  # small terms after big ones: the order of the sums shows
    start = rng.normal(0, 1e3, target_shape).astype(dtype)
    want = start.copy()
    np.add.at(want, index, values)
    calls = []
    real_at = np.add.at
    monkeypatch.setattr(np, "add", type("Add", (), {
        "at": staticmethod(lambda t, i, v: calls.append(t.ndim) or real_at(t, i, v))}))
    got = start.copy()
    assert backend.scatter_add(got, index, values) is got
    assert backend.scatter_add(got2 := start.copy(), (index,), values) is got2  # a 1-tuple too
    monkeypatch.undo()
    assert calls == [1, 1]  # the flat loop ran
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    np.testing.assert_array_equal(got2.view(np.uint8), want.view(np.uint8))


def test_scatter_add_out_of_range_rows_raise_numpys_error_and_leave_the_target():
    target = np.zeros((3, 2))
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        backend.scatter_add(target, np.array([0, 3]), np.ones((2, 2)))
    assert not target.any()  # numpy checks the index before adding
    with pytest.raises(IndexError, match="index -4 is out of bounds"):
        backend.scatter_add(target, np.array([-4]), np.ones((1, 2)))
    strided = np.zeros((4, 3))[:, :2]  # not contiguous: the row-wise call, the same sums
    backend.scatter_add(strided, np.array([1, 1, 0]), np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(strided, [[4, 5], [2, 4], [0, 0], [0, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where_selects_bits_under_a_mask_that_broadcasts(dtype, monkeypatch):
    """A bool cond that broadcasts to the other operands' shape (a causal mask over a batch of
    attention scores) takes the select too: numpy.where's bits, NaN of either sign, -0.0 and the
    infinities, and its dtype and shape."""
    rng = np.random.default_rng(7)
    shape = (3, 4, 24, 32)
    a, b = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    a.reshape(-1)[:6] = [np.nan, -np.nan, -0.0, 0.0, np.inf, -np.inf]
    b.reshape(-1)[2:8] = [np.nan, -0.0, -np.nan, np.inf, 0.0, -np.inf]
    causal = np.tril(np.ones((24, 32), bool))
    conds = [causal, rng.random((4, 1, 32)) > 0.5, rng.random((1, 1, 1, 32)) > 0.5,
             np.zeros((24, 32), bool), np.ones((24, 32), bool)]
    pairs = [(a, b), (a, -np.inf), (-np.inf, b), (a, 0), (0.0, b), (a, -0.0), (-0.0, b), (2, b)]
    calls = []
    real_where = np.where
    monkeypatch.setattr(np, "where", lambda *args: calls.append(args) or real_where(*args))
    for cond in conds:
        for x, y in pairs:
            got = backend.where(cond, x, y)
            want = real_where(cond, x, y)
            assert got.dtype == want.dtype == dtype and got.shape == want.shape == shape
            assert got.tobytes() == want.tobytes()
    assert not calls  # every case above took the select
    counts = np.arange(a.size, dtype=np.int32).reshape(shape)
    for args in ((causal, a, b[:1]), (causal, counts, 5), (causal[None], a, b[0])):
        calls.clear()
        np.testing.assert_array_equal(backend.where(*args), real_where(*args))
        assert len(calls) == 1  # a broadcast value, integers, a bigger cond: numpy's
