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
