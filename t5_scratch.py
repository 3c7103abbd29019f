import numpy as np, gpuad, gpuad.nn.functional as F, models, tracemalloc
rng = np.random.default_rng(5)
batches = [(gpuad.tensor(rng.standard_normal((64, 256)).astype(np.float32)),
            gpuad.tensor(rng.integers(0, 10, 64))) for _ in range(6)]
gpuad.manual_seed(0)
model = models.MLP(256, (256, 256), 10)
opt = gpuad.optim.Adam(model.parameters(), lr=1e-3)
def step(x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss
c = gpuad.compile(step)
for x, y in batches: c(x, y)
print(c.programs()[-1].source)
