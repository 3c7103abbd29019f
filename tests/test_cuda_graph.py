"""gpuad.cuda.graph: a training step recorded once as a CUDA graph and replayed gives the same
parameters as the same steps run eagerly."""
import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
from models.mlp import MLP


def test_graphs_need_a_cuda_device():
    with pytest.raises(ValueError, match="cuda.graph: a CUDA graph records GPU kernels, but the "
                                         "step runs on cpu"):
        gpuad.cuda.graph(lambda: None, device="cpu")


@pytest.mark.gpu
def test_replayed_sgd_steps_match_eager_steps():
    gpuad.manual_seed(0)
    batches = [(gpuad.randn(16, 20, device="cuda"), gpuad.randint(0, 10, (16,), device="cuda"))
               for _ in range(8)]
    eager, graphed = (MLP(in_features=20, hidden=(32,)).to("cuda") for _ in range(2))
    graphed.load_state_dict(eager.state_dict())
    eager_opt = gpuad.optim.SGD(eager.parameters(), lr=0.1, momentum=0.9)
    graphed_opt = gpuad.optim.SGD(graphed.parameters(), lr=0.1, momentum=0.9)

    eager_losses = []
    for x, y in batches:
        loss = F.cross_entropy(eager(x), y)
        eager_opt.zero_grad()
        loss.backward()
        eager_opt.step()
        eager_losses.append(loss.item())

    static_x, static_y = batches[0][0].clone(), batches[0][1].clone()

    def step():
        loss = F.cross_entropy(graphed(static_x), static_y)
        graphed_opt.zero_grad()
        loss.backward()
        graphed_opt.step()
        return loss

    graphed_losses = []
    for x, y in batches[:2]:  # warm-up, eagerly: kernels compile, momentum buffers appear
        static_x.copy_(x)
        static_y.copy_(y)
        graphed_losses.append(step().item())
    replay = gpuad.cuda.graph(step)
    for x, y in batches[2:]:
        static_x.copy_(x)
        static_y.copy_(y)
        graphed_losses.append(replay().item())

    np.testing.assert_allclose(graphed_losses, eager_losses, rtol=1e-5, atol=1e-6)
    for (name, a), b in zip(eager.state_dict().items(), graphed.state_dict().values()):
        np.testing.assert_allclose(b.cpu().numpy(), a.cpu().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 7, 3), (17, 33, 16), (128, 784, 256)])
@pytest.mark.parametrize("layout", ["contiguous", "a transposed", "b transposed"])
def test_graph_matmul_kernel_matches_cublas(m, k, n, dtype, layout):
    """The tiled kernel that stands in for cuBLAS while a graph records (CuPy refuses cuBLAS
    there) gives cuBLAS's products, for the transposed views the linear rules pass it too."""
    import cupy

    from gpuad.backend import kernels
    rng = np.random.default_rng(0)
    a = cupy.asarray(rng.standard_normal((k, m) if layout == "a transposed" else (m, k)), dtype)
    b = cupy.asarray(rng.standard_normal((n, k) if layout == "b transposed" else (k, n)), dtype)
    a = a.T if layout == "a transposed" else a
    b = b.T if layout == "b transposed" else b
    got, want = kernels._gemm_kernel(a, b), a @ b
    tol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(cupy.asnumpy(got), cupy.asnumpy(want), rtol=tol, atol=tol * k)


@pytest.mark.parametrize("sa, sb", [((2, 3, 4), (2, 4, 5)), ((3, 4), (2, 2, 4, 5)),
                                    ((2, 1, 3, 4), (3, 4, 5))])
def test_graph_matmul_kernel_loops_over_stacks_of_matrices(sa, sb, monkeypatch):
    """Stacks of matrices (attention, grouped convolutions in gpuad.compile's graphs) go through
    the 2-D kernel one matrix at a time, broadcasting the stack dims as matmul does; acted out
    with numpy standing in for CuPy and for the 2-D kernel."""
    from gpuad.backend import kernels
    monkeypatch.setattr(kernels, "cupy", np)
    calls = []

    def gemm_2d(a, b, out):
        calls.append(out.shape)
        np.matmul(a, b, out=out)
        return out
    monkeypatch.setattr(kernels, "_gemm_into", gemm_2d)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    got = kernels._gemm_kernel(a, b)
    np.testing.assert_array_equal(got, a @ b)
    assert len(calls) == int(np.prod(got.shape[:-2])) and set(calls) == {got.shape[-2:]}


@pytest.mark.gpu
@pytest.mark.parametrize("sa, sb", [((2, 3, 4), (2, 4, 5)), ((2, 2, 5, 8), (8, 3))])
def test_graph_matmul_kernel_on_stacks_matches_cublas(sa, sb):
    import cupy

    from gpuad.backend import kernels
    rng = np.random.default_rng(1)
    a = cupy.asarray(rng.standard_normal(sa), "float32")
    b = cupy.asarray(rng.standard_normal(sb), "float32")
    np.testing.assert_allclose(cupy.asnumpy(kernels._gemm_kernel(a, b)), cupy.asnumpy(a @ b),
                               rtol=1e-4, atol=1e-4)
