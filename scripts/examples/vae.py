"""A variational autoencoder (Kingma & Welling, 2014) on MNIST: the encoder gives a Normal over
the latent code, rsample() draws from it differentiably and kl_divergence regularises it, as a
PyTorch user writes it with torch.distributions.

    python scripts/examples/vae.py --epochs 1 --data $GPUAD_DATA
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's gpuad

import gpuad  # noqa: E402
import gpuad.nn.functional as F  # noqa: E402
from gpuad import nn  # noqa: E402
from gpuad.data import DataLoader  # noqa: E402
from gpuad.data.datasets import MNIST  # noqa: E402
from gpuad.distributions import Normal, kl_divergence  # noqa: E402


class VAE(nn.Module):
    def __init__(self, latent=20, hidden=400):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU())
        self.mean, self.log_var = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 784))

    def forward(self, x):
        h = self.encoder(x)
        posterior = Normal(self.mean(h), (0.5 * self.log_var(h)).exp())
        logits = self.decoder(posterior.rsample())
        return logits, posterior


def loss_fn(logits, x, posterior):
    """The negative evidence lower bound per image: reconstruction + KL(q(z|x) || N(0, I))."""
    reconstruction = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="sum")
    prior = Normal(gpuad.zeros_like(posterior.loc), gpuad.ones_like(posterior.scale))
    return (reconstruction + kl_divergence(posterior, prior).sum()) / x.shape[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-steps", type=int, default=None, help="stop early (smoke tests)")
    parser.add_argument("--data", default=os.environ.get("GPUAD_DATA"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gpuad.manual_seed(args.seed)
    train = MNIST(args.data, train=True, normalize=False)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True,
                        generator=gpuad.Generator().manual_seed(args.seed))
    model = VAE()
    optimizer = gpuad.optim.Adam(model.parameters(), lr=1e-3)
    step = 0
    for epoch in range(args.epochs):
        for x, _ in loader:
            logits, posterior = model(x)
            loss = loss_fn(logits, x, posterior)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 100 == 0:
                print(json.dumps({"epoch": epoch, "step": step, "loss": loss.item()}), flush=True)
            step += 1
            if args.max_steps is not None and step >= args.max_steps:
                return loss.item()
    return loss.item()


if __name__ == "__main__":
    main()
