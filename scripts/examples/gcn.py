"""A two-layer graph convolutional network (Kipf & Welling, 2017) on a synthetic graph of four
communities, with message passing written as index_add, as a PyTorch user writes it.

    python scripts/examples/gcn.py --epochs 100
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's gpuad

import gpuad  # noqa: E402
import gpuad.nn.functional as F  # noqa: E402
from gpuad import nn  # noqa: E402


def community_graph(nodes, classes, p_in, p_out, features, generator):
    """A stochastic block model: edges (both directions, self-loops added), noisy features and
    labels; the features alone are a weak signal, the graph makes them strong."""
    labels = gpuad.randint(0, classes, (nodes,), generator=generator)
    same = labels[:, None] == labels[None, :]
    p = gpuad.where(same, gpuad.tensor(p_in), gpuad.tensor(p_out))
    upper = gpuad.triu(gpuad.rand(nodes, nodes, generator=generator) < p, diagonal=1)
    src, dst = gpuad.nonzero(upper | upper.T | gpuad.eye(nodes, dtype=gpuad.bool), as_tuple=True)
    means = gpuad.randn(classes, features, generator=generator)
    x = means[labels] * 0.4 + gpuad.randn(nodes, features, generator=generator)
    return x, src, dst, labels


class GCNLayer(nn.Module):
    """H' = D^-1/2 (A + I) D^-1/2 H W: each node sums its neighbours' messages (index_add)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, h, src, dst, norm):
        messages = self.linear(h)[src] * norm[:, None]
        return gpuad.zeros(h.shape[0], messages.shape[1]).index_add(0, dst, messages)


class GCN(nn.Module):
    def __init__(self, features, hidden, classes, dropout=0.5):
        super().__init__()
        self.layer1, self.layer2 = GCNLayer(features, hidden), GCNLayer(hidden, classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, src, dst, norm):
        h = self.dropout(F.relu(self.layer1(x, src, dst, norm)))
        return self.layer2(h, src, dst, norm)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gpuad.manual_seed(args.seed)
    generator = gpuad.Generator().manual_seed(args.seed)
    x, src, dst, labels = community_graph(args.nodes, 4, 0.05, 0.005, 16, generator)
    degree = gpuad.zeros(args.nodes).index_add(0, dst, gpuad.ones(len(dst)))
    norm = degree[src].rsqrt() * degree[dst].rsqrt()
    train = gpuad.rand(args.nodes, generator=generator) < 0.2  # 20% of the labels are known
    model = GCN(16, 32, 4)
    optimizer = gpuad.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for epoch in range(args.epochs):
        model.train()
        optimizer.zero_grad()
        logits = model(x, src, dst, norm)
        loss = F.cross_entropy(logits[train], labels[train])
        loss.backward()
        optimizer.step()
        if epoch % 20 == 0 or epoch == args.epochs - 1:
            model.eval()
            with gpuad.no_grad():
                hit = model(x, src, dst, norm).argmax(dim=1) == labels
            accuracy = hit[~train].float().mean().item()
            print(json.dumps({"epoch": epoch, "loss": loss.item(), "test_accuracy": accuracy}),
                  flush=True)
    return accuracy


if __name__ == "__main__":
    main()
