import time, numpy as np, gpuad, gpuad.nn.functional as F, models
rng = np.random.default_rng(0)
for optname in ("sgd", "adam"):
    gpuad.manual_seed(0)
    m = models.MLP(784, (256, 256), 10)
    opt = gpuad.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) if optname == "sgd" else gpuad.optim.Adam(m.parameters())
    def step(x, y):
        loss = F.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step(); return loss
    c = gpuad.compile(step)
    x = rng.standard_normal((128, 784)).astype(np.float32); y = rng.integers(0, 10, 128)
    for _ in range(3): c(gpuad.Tensor(x), gpuad.Tensor(y))
    p = c.programs()[-1]
    t = time.perf_counter()
    for _ in range(200): p.host_pass()
    hp = (time.perf_counter() - t) / 200
    t = time.perf_counter()
    for _ in range(30): c(gpuad.Tensor(x), gpuad.Tensor(y))
    full = (time.perf_counter() - t) / 30
    t = time.perf_counter()
    for _ in range(30): step(gpuad.Tensor(x), gpuad.Tensor(y))
    eager = (time.perf_counter() - t) / 30
    print(optname, "host pass us", round(hp * 1e6, 1), "replay ms", round(full * 1e3, 3), "eager ms", round(eager*1e3, 3))
