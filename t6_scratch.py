import gpuad, numpy as np
class Trainer:
    def __init__(self, lr):
        self.w = gpuad.tensor([1.0, 2.0], requires_grad=True)
        self.opt = gpuad.optim.SGD([self.w], lr=lr)
    @gpuad.compile
    def step(self, x):
        loss = (self.w * x).sum()
        self.opt.zero_grad(); loss.backward(); self.opt.step()
        return loss
t = Trainer(0.1)
for i in range(3): t.step(gpuad.ones(2))
print(t.w)
old = t.opt
t.opt = gpuad.optim.SGD([t.w], lr=1.0)
t.step(gpuad.ones(2))
print(t.w, old.state, t.opt.state)
print(Trainer.step.programs()[-1].source[:600])
