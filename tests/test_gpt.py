"""models.GPT: shapes, causality, the tied LM head, initialisation, gradients and generate()."""
import math

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
import models
from gpuad import optim
from models.gpt import _sample

TINY = {"vocab_size": 11, "block_size": 8, "n_layer": 2, "n_head": 2, "n_embd": 8}


def tiny(device="cpu", seed=0, **overrides):
    gpuad.manual_seed(seed)
    return models.GPT(**{**TINY, **overrides}).to(device)


def tokens(shape, vocab=TINY["vocab_size"], device="cpu", seed=1):
    data = np.random.default_rng(seed).integers(0, vocab, shape)
    return gpuad.tensor(data, device=device)


def test_forward_shapes_and_dtype(device):
    model = tiny(device)
    logits = model(tokens((3, 8), device=device))
    assert logits.shape == (3, 8, 11) and logits.dtype == gpuad.float32
    assert logits.device == gpuad.device(device)
    assert model(tokens((2, 5), device=device)).shape == (2, 5, 11)  # shorter than block_size
    loss = model.loss(tokens((3, 8), device=device), tokens((3, 8), device=device, seed=2))
    assert loss.shape == () and abs(loss.item() - math.log(11)) < 0.1  # small init: near uniform


def test_config_dataclass_and_kwargs_agree():
    config = models.GPTConfig(**TINY)
    gpuad.manual_seed(0)
    a = models.GPT(config)
    b = tiny()
    assert a.config == b.config == config
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(p.numpy(force=True), q.numpy(force=True), err_msg=name)
    with pytest.raises(ValueError, match="divisible by n_head"):
        models.GPT(**{**TINY, "n_head": 3})


def test_longer_than_block_size_is_refused():
    with pytest.raises(ValueError, match="block_size 8"):
        tiny()(tokens((1, 9)))


def test_causal_a_later_token_does_not_change_earlier_logits(device):
    model = tiny(device).eval()
    idx = tokens((2, 8))
    changed = idx.numpy(force=True).copy()
    changed[:, 5] = (changed[:, 5] + 3) % 11
    a = model(idx.to(device)).numpy(force=True)
    b = model(gpuad.tensor(changed, device=device)).numpy(force=True)
    np.testing.assert_allclose(a[:, :5], b[:, :5], rtol=0, atol=1e-6)
    assert np.abs(a[:, 5:] - b[:, 5:]).max() > 1e-4  # the change is seen from position 5 on


def test_init_is_gpt2s():
    model = models.GPT(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=64)
    std = {name: p.numpy(force=True).std() for name, p in model.named_parameters()}
    assert abs(std["wte.weight"] - 0.02) < 0.002
    assert abs(std["h.0.attn.c_attn.weight"] - 0.02) < 0.002
    scaled = 0.02 / math.sqrt(2 * 4)
    assert abs(std["h.1.attn.c_proj.weight"] - scaled) < 0.1 * scaled
    assert abs(std["h.3.mlp.c_proj.weight"] - scaled) < 0.1 * scaled
    assert not model.h[0].mlp.c_fc.bias.numpy(force=True).any()
    assert (model.ln_f.weight.numpy(force=True) == 1).all()


# ---- the tied head ------------------------------------------------------------------------------
def test_head_is_tied_to_the_token_embedding(device):
    model = tiny(device)
    assert model.lm_head.weight is model.wte.weight  # also after .to(device)
    names = [name for name, _ in model.named_parameters()]
    assert "wte.weight" in names and "lm_head.weight" not in names  # parameters() lists it once
    assert len(list(model.parameters())) == len({id(p) for p in model.parameters()})
    state = model.state_dict()  # both names, like torch's state_dict of a tied model
    np.testing.assert_array_equal(state["lm_head.weight"].numpy(force=True),
                                  state["wte.weight"].numpy(force=True))
    n, e, v, t = TINY["n_layer"], TINY["n_embd"], TINY["vocab_size"], TINY["block_size"]
    attn = (3 * e * e + 3 * e) + (e * e + e)
    per_block = 2 * 2 * e + attn + (4 * e * e + 4 * e) + (4 * e * e + e)  # norms, attn, mlp
    assert model.num_parameters(non_embedding=False) == v * e + t * e + n * per_block + 2 * e


def test_tied_gradient_sums_both_uses():
    """The gradient of the shared weight is that of the embedding use plus that of the head
    use: compare with a copy where the two are separate Parameters."""
    model = tiny()
    idx, targets = tokens((2, 8)), tokens((2, 8), seed=2)
    model.loss(idx, targets).backward()
    untied = tiny()
    untied.lm_head.weight = gpuad.nn.Parameter(untied.wte.weight.detach().clone())
    untied.loss(idx, targets).backward()
    both = untied.wte.weight.grad.numpy(force=True) + untied.lm_head.weight.grad.numpy(force=True)
    np.testing.assert_allclose(model.wte.weight.grad.numpy(force=True), both, rtol=1e-5, atol=1e-7)
    assert np.abs(untied.wte.weight.grad.numpy(force=True)).max() > 0
    assert np.abs(untied.lm_head.weight.grad.numpy(force=True)).max() > 0


def test_gradcheck_tiny_model_float64(device):
    """Central differences of the loss w.r.t. parameters, the tied weight among them (its
    numeric derivative moves both uses at once), on a float64 model."""
    gpuad.manual_seed(0)
    model = models.GPT(vocab_size=5, block_size=4, n_layer=1, n_head=2, n_embd=4).to(device)
    model.double()
    for p in model.parameters():  # larger weights than GPT-2's 0.02, so every path matters
        p.array[...] = p.array * 20
    idx, targets = tokens((2, 4), vocab=5, device=device), tokens((2, 4), vocab=5, device=device,
                                                                  seed=2)
    params = [model.wte.weight, model.wpe.weight, model.h[0].attn.c_attn.weight,
              model.h[0].ln_1.weight, model.h[0].mlp.c_fc.bias, model.ln_f.bias]
    assert gpuad.gradcheck(lambda *ps: model.loss(idx, targets), params, atol=1e-6)


def test_optimizer_and_checkpoint_handle_the_shared_parameter(tmp_path):
    model = tiny()
    opt = optim.AdamW(model.parameters(), lr=1e-2)  # would raise if a parameter came twice
    model.loss(tokens((2, 8)), tokens((2, 8), seed=2)).backward()
    total = gpuad.nn.utils.clip_grad_norm_(model.parameters(), 1e9)
    unique = math.sqrt(sum(float((p.grad.numpy(force=True).astype(np.float64) ** 2).sum())
                           for p in model.parameters()))
    assert abs(total.item() - unique) < 1e-5 * unique  # the tied gradient counted once
    opt.step()
    assert len(opt.state) == len(list(model.parameters()))
    assert model.lm_head.weight is model.wte.weight

    gpuad.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ck")
    state = gpuad.load(tmp_path / "ck")
    other = tiny(seed=5)
    other_opt = optim.AdamW(other.parameters(), lr=1e-2)
    other.load_state_dict(state["model"])
    other_opt.load_state_dict(state["optimizer"])
    assert other.lm_head.weight is other.wte.weight  # loading keeps the tie
    idx = tokens((2, 8), seed=3)
    np.testing.assert_array_equal(other(idx).numpy(force=True), model(idx).numpy(force=True))
    for a, b in ((model, opt), (other, other_opt)):  # one more identical step each
        b.zero_grad()
        a.loss(idx, tokens((2, 8), seed=4)).backward()
        b.step()
    for (name, p), (_, q) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(p.numpy(force=True), q.numpy(force=True), err_msg=name)


def test_matches_a_torch_twin():
    """Same weights in a torch model of the same layout: logits, loss and every gradient agree
    (the tied one included)."""
    torch = pytest.importorskip("torch")
    tnn, tF = torch.nn, torch.nn.functional
    cfg = models.GPTConfig(**TINY)

    class Attn(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = tnn.Linear(cfg.n_embd, 3 * cfg.n_embd)
            self.c_proj = tnn.Linear(cfg.n_embd, cfg.n_embd)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (t.view(B, T, cfg.n_head, C // cfg.n_head).transpose(1, 2)
                       for t in self.c_attn(x).split(C, dim=2))
            y = tF.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = tnn.LayerNorm(cfg.n_embd), Attn()
            self.ln_2 = tnn.LayerNorm(cfg.n_embd)
            self.mlp = tnn.Module()
            self.mlp.c_fc = tnn.Linear(cfg.n_embd, 4 * cfg.n_embd)
            self.mlp.c_proj = tnn.Linear(4 * cfg.n_embd, cfg.n_embd)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            h = tF.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh")
            return x + self.mlp.c_proj(h)

    class TorchGPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte = tnn.Embedding(cfg.vocab_size, cfg.n_embd)
            self.wpe = tnn.Embedding(cfg.block_size, cfg.n_embd)
            self.h = tnn.ModuleList([Block() for _ in range(cfg.n_layer)])
            self.ln_f = tnn.LayerNorm(cfg.n_embd)
            self.lm_head = tnn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.h:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    model = tiny().double()
    twin = TorchGPT().double()
    twin.load_state_dict({k: torch.from_numpy(v.numpy(force=True).copy()) for k, v in
                          model.state_dict().items()})
    idx, targets = tokens((3, 8)), tokens((3, 8), seed=2)
    logits = model(idx)
    loss = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
    loss.backward()
    t_logits = twin(torch.from_numpy(idx.numpy(force=True)))
    t_targets = torch.from_numpy(targets.numpy(force=True)).reshape(-1)
    t_loss = tF.cross_entropy(t_logits.reshape(-1, 11), t_targets)
    t_loss.backward()
    np.testing.assert_allclose(logits.numpy(force=True), t_logits.detach().numpy(), atol=1e-12)
    t_params = dict(twin.named_parameters())
    assert set(t_params) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(force=True), t_params[name].grad.numpy(),
                                   rtol=1e-9, atol=1e-12, err_msg=name)


# ---- generate -----------------------------------------------------------------------------------
def test_generate_crops_the_context_and_is_reproducible(device):
    model = tiny(device).eval()
    prompt = tokens((2, 12), device=device)  # longer than block_size 8
    gpuad.manual_seed(3)
    out = model.generate(prompt, 10)
    assert out.shape == (2, 22) and out.dtype == gpuad.int64
    np.testing.assert_array_equal(out[:, :12].numpy(force=True), prompt.numpy(force=True))
    assert ((out.numpy(force=True) >= 0) & (out.numpy(force=True) < 11)).all()
    gpuad.manual_seed(3)  # only the last block_size tokens count: the same continuation
    cropped = model.generate(prompt[:, -8:], 10)
    np.testing.assert_array_equal(cropped[:, 8:].numpy(force=True), out[:, 12:].numpy(force=True))
    gpuad.manual_seed(4)
    assert not np.array_equal(model.generate(prompt, 10).numpy(force=True), out.numpy(force=True))
    assert not model.generate(prompt, 2).requires_grad


def test_generate_greedy_top_k_one_and_cold_temperature_agree(device):
    model = tiny(device).eval()
    prompt = tokens((3, 2), device=device)
    greedy = model.generate(prompt, 8, temperature=0).numpy(force=True)
    np.testing.assert_array_equal(model.generate(prompt, 8, top_k=1).numpy(force=True), greedy)
    cold = model.generate(prompt, 8, temperature=1e-4)
    np.testing.assert_array_equal(cold.numpy(force=True), greedy)
    idx = gpuad.tensor(greedy[:, :-1], device=device)  # each greedy token is the arg-max
    last = model(idx[:, -8:]).numpy(force=True)[:, -1]
    np.testing.assert_array_equal(last.argmax(-1), greedy[:, -1])


def test_sample_follows_temperature_and_top_k(device):
    logits = gpuad.tensor(np.tile([2.0, 1.0, 0.5, 0.0, -1.0], (20000, 1)), device=device)
    for temperature in (1.0, 0.5, 2.0):
        draws = _sample(logits, temperature, None).numpy(force=True).ravel()
        freq = np.bincount(draws, minlength=5) / len(draws)
        p = np.exp(np.array([2.0, 1.0, 0.5, 0.0, -1.0]) / temperature)
        np.testing.assert_allclose(freq, p / p.sum(), atol=0.015)
    draws = _sample(logits, 1.0, 2).numpy(force=True).ravel()
    freq = np.bincount(draws, minlength=5) / len(draws)
    assert set(draws) == {0, 1}  # only the two likeliest
    np.testing.assert_allclose(freq[:2], [math.e / (math.e + 1), 1 / (math.e + 1)], atol=0.015)


def test_generate_refuses_bad_arguments():
    model = tiny()
    with pytest.raises(ValueError, match="temperature"):
        model.generate(tokens((1, 2)), 1, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(tokens((1, 2)), 1, top_k=0)


def test_dropout_only_while_training():
    model = tiny(dropout=0.5)
    idx = tokens((2, 8))
    model.eval()
    np.testing.assert_array_equal(model(idx).numpy(force=True), model(idx).numpy(force=True))
    model.train()
    assert not np.array_equal(model(idx).numpy(force=True), model(idx).numpy(force=True))
