"""A small decoder-only Transformer (GPT-2's architecture, after Karpathy's nanoGPT): token and
position embeddings, n_layer pre-norm blocks of causal self-attention and a 4x GELU MLP, a final
LayerNorm and an LM head that shares its weight with the token embedding.

Parameter names follow nanoGPT's (wte, wpe, h.0.attn.c_attn, ..., lm_head) without its
`transformer.` prefix. The head is tied the way torch code ties it: `lm_head.weight` IS
`wte.weight`, one Parameter registered under both names. So parameters() and optimizers see it
once, its gradient is the sum of both uses, and state_dict() lists it under both keys, like torch;
load_state_dict copies the same values into it twice.
"""
import dataclasses
import math

import gpuad
import gpuad.nn as nn
import gpuad.nn.functional as F
from gpuad import backend


@dataclasses.dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64     # the longest context the model sees (position embeddings)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True        # biases in the Linears and LayerNorms, as GPT-2 has


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions 0..t: one fused (3C, C) qkv
    projection, scaled_dot_product_attention(is_causal=True), an output projection."""

    def __init__(self, config):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"GPT: n_embd ({config.n_embd}) must be divisible by n_head "
                             f"({config.n_head})")
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(B, T, self.n_head, C // self.n_head).permute(0, 2, 1, 3)
                   for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.permute(0, 2, 1, 3).reshape(B, T, C)))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """x + attn(ln_1(x)), then x + mlp(ln_2(x)): pre-norm, as in GPT-2."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """GPT(GPTConfig(...)) or GPT(vocab_size=..., block_size=..., ...). forward(idx) maps integer
    tokens (B, T), T <= block_size, to next-token logits (B, T, vocab_size)."""

    def __init__(self, config=None, **kwargs):
        super().__init__()
        config = dataclasses.replace(config or GPTConfig(), **kwargs)
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one Parameter, two uses
        self._init_weights()

    def _init_weights(self):
        """GPT-2's: N(0, 0.02) for Linear and Embedding weights, zero biases, and the projections
        that write into the residual stream scaled down to N(0, 0.02 / sqrt(2 * n_layer))."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, 0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for block in self.h:
            nn.init.normal_(block.attn.c_proj.weight, 0.0, std)
            nn.init.normal_(block.mlp.c_proj.weight, 0.0, std)

    def forward(self, idx):
        T = idx.shape[-1]
        if T > self.config.block_size:
            raise ValueError(f"GPT: a sequence of length {T} (input shape {tuple(idx.shape)}) is "
                             f"longer than block_size {self.config.block_size}; crop it to the "
                             f"last {self.config.block_size} tokens")
        pos = gpuad.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def loss(self, idx, targets):
        """Mean cross-entropy (nats per token) of predicting targets (B, T) from idx (B, T)."""
        return next_token_loss(self(idx), targets)

    def num_parameters(self, non_embedding=True):
        """Parameters counted once each (the tied head is the token embedding); without the
        position embeddings by default, as GPT-2's paper counts."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    @gpuad.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Extend idx (B, T) by max_new_tokens tokens, each sampled from the model's distribution
        given the last block_size tokens: logits / temperature, only the top_k most likely
        (ties with the k-th kept), temperature=0 takes the most likely token. Random draws come
        from gpuad's seeded generator, so gpuad.manual_seed makes it repeatable. Call .eval()
        first when the model has dropout."""
        if temperature < 0:
            raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"generate: top_k must be a positive integer or None, got {top_k}")
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]
            logits = self(context)[:, -1, :]
            idx = gpuad.cat([idx, _sample(logits, temperature, top_k)], dim=1)
        return idx


def _sample(logits, temperature, top_k):
    """One token per row of logits (B, V), as a (B, 1) int64 tensor, by the Gumbel-max trick:
    argmax(logits / temperature + Gumbel noise) is a draw from softmax(logits / temperature)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        data = logits.array  # the k-th largest per row; numpy and CuPy sort alike
        kth = gpuad.Tensor(backend.xp_of(data).sort(data, axis=-1)[:, -top_k, None])
        logits = gpuad.where(logits < kth, -math.inf, logits)
    u = gpuad.rand(*logits.shape, dtype=logits.dtype, device=logits.device)
    gumbel = -gpuad.log(-gpuad.log(gpuad.clamp(u, min=1e-20)))  # u = 0 would give log(0)
    return (logits + gumbel).argmax(dim=-1, keepdim=True)


def next_token_loss(logits, targets):
    """Mean cross-entropy (nats per token) of logits (B, T, vocab) against targets (B, T): GPT.loss
    from logits computed elsewhere (a compiled forward)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
