import numpy as np, gpuad, gpuad.nn.functional as F, models, warnings
warnings.simplefilter("error")
rng = np.random.default_rng(0)

def run(compiled, set_to_none, model_fn, shape, ncls, steps=6):
    gpuad.manual_seed(0)
    m = model_fn()
    opt = gpuad.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
    def step(x, y):
        out = m(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=set_to_none)
        loss.backward()
        opt.step()
        return {"loss": loss, "out": out.detach()}
    if compiled: step = gpuad.compile(step)
    r = np.random.default_rng(1)
    losses = []
    for i in range(steps):
        x = gpuad.tensor(r.standard_normal(shape).astype(np.float32))
        y = gpuad.tensor(r.integers(0, ncls, shape[0]))
        res = step(x, y)
        losses.append((res["loss"].item(), res["out"].numpy().sum()))
    return losses, [p.array.copy() for p in m.parameters()] + [b.array.copy() for b in m.buffers()], step

for name, mf, shape, ncls in [("resnet", lambda: models.ResNet(), (2, 1, 28, 28), 10), ("mlp", lambda: models.MLP(12, (16,), 5), (8, 12), 5)]:
    for stn in (True, False):
        a = run(False, stn, mf, shape, ncls); b = run(True, stn, mf, shape, ncls)
        print(name, stn, a[0] == b[0], all(np.array_equal(x, y) for x, y in zip(a[1], b[1])), b[2].traces)
