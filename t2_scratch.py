import numpy as np, gpuad, gpuad.nn.functional as F, models, warnings, sys
warnings.simplefilter("error")
dev = sys.argv[1] if len(sys.argv) > 1 else "cpu"
rng = np.random.default_rng(0)

def run_cnn(compiled, steps=12):
    gpuad.manual_seed(0)
    m = models.LeNet5(channels=(2, 3), hidden=(5,), image_size=8).to(dev)
    opt = gpuad.optim.Adam(m.parameters(), lr=1e-2)
    sched = gpuad.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    def step(x, y):
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    if compiled: step = gpuad.compile(step, debug=True)
    losses = []
    r = np.random.default_rng(1)
    for i in range(steps):
        x = gpuad.tensor(r.standard_normal((4, 1, 8, 8)).astype(np.float32), device=dev)
        y = gpuad.tensor(r.integers(0, 10, 4), device=dev)
        losses.append(float(gpuad.backend.asnumpy(step(x, y).array)))
        sched.step()
    return losses, [gpuad.backend.asnumpy(p.array).copy() for p in m.parameters()], opt

def run_gpt(compiled, steps=12):
    gpuad.manual_seed(0)
    m = models.GPT(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.2).to(dev)
    opt = gpuad.optim.AdamW(m.parameters(), lr=1e-2)
    def step(x, y):
        loss = m.loss(x, y)
        opt.zero_grad()
        loss.backward()
        gpuad.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss
    if compiled: step = gpuad.compile(step, debug=True)
    losses = []
    r = np.random.default_rng(1)
    for i in range(steps):
        x = gpuad.tensor(r.integers(0, 11, (3, 8)), device=dev)
        y = gpuad.tensor(r.integers(0, 11, (3, 8)), device=dev)
        losses.append(float(gpuad.backend.asnumpy(step(x, y).array)))
    return losses, [gpuad.backend.asnumpy(p.array).copy() for p in m.parameters()], opt

for name, fn in [("cnn", run_cnn), ("gpt", run_gpt)]:
    a = fn(False); b = fn(True)
    same = all((x == y).all() for x, y in zip(a[1], b[1]))
    print(name, a[0] == b[0], same)
    if not same or a[0] != b[0]:
        print(a[0]); print(b[0])
