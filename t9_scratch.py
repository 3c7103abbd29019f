import cProfile, pstats, numpy as np, gpuad, gpuad.nn.functional as F, models
rng = np.random.default_rng(0)
gpuad.manual_seed(0)
m = models.MLP(784, (256, 256), 10)
opt = gpuad.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
def step(x, y):
    loss = F.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step(); return loss
c = gpuad.compile(step)
x = rng.standard_normal((128, 784)).astype(np.float32); y = rng.integers(0, 10, 128)
for _ in range(3): c(gpuad.Tensor(x), gpuad.Tensor(y))
p = c.programs()[-1]
cProfile.run("for _ in range(2000): p.host_pass()", "/tmp/prof")
pstats.Stats("/tmp/prof").sort_stats("tottime").print_stats(12)
