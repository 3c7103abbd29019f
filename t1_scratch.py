import numpy as np, gpuad, gpuad.nn.functional as F, models, warnings
warnings.simplefilter("error")
def make():
    gpuad.manual_seed(0)
    m = models.MLP(20, (32,), 10)
    opt = gpuad.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    return m, opt
rng = np.random.default_rng(0)
data = [(rng.standard_normal((16, 20)).astype(np.float32), rng.integers(0, 10, 16)) for _ in range(10)]
def run(compiled):
    m, opt = make()
    def step(x, y):
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    if compiled:
        step = gpuad.compile(step, debug=True)
    losses = []
    for x, y in data:
        losses.append(step(gpuad.tensor(x), gpuad.tensor(y)).item())
    return losses, [p.array.copy() for p in m.parameters()], step
a = run(False); b = run(True)
print(a[0]); print(b[0])
print(all((x == y).all() for x, y in zip(a[1], b[1])))
print(b[2].programs()[-1].source)
