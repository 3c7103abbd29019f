"""REINFORCE (Williams, 1992) with a baseline on CartPole, an environment written in numpy: the
policy's Categorical gives the action, its log-probability the gradient, as a PyTorch user
writes it with torch.distributions.

    python scripts/examples/reinforce.py --episodes 300
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's gpuad

import gpuad  # noqa: E402
from gpuad import nn  # noqa: E402
from gpuad.distributions import Categorical  # noqa: E402


class CartPole:
    """The classic control task (Barto et al., 1983; Gym's CartPole-v1 constants): push a cart
    left or right to keep a pole upright; reward 1 per step, at most `limit` steps."""

    def __init__(self, rng, limit=500):
        self.rng, self.limit = rng, limit

    def reset(self):
        self.state, self.steps = self.rng.uniform(-0.05, 0.05, 4), 0
        return self.state.astype(np.float32)

    def step(self, action):
        x, x_dot, theta, theta_dot = self.state
        force = 10.0 if action == 1 else -10.0
        cos, sin = math.cos(theta), math.sin(theta)
        temp = (force + 0.05 * theta_dot ** 2 * sin) / 1.1
        theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos ** 2 / 1.1))
        x_acc = temp - 0.05 * theta_acc * cos / 1.1
        self.state = np.array([x + 0.02 * x_dot, x_dot + 0.02 * x_acc,
                               theta + 0.02 * theta_dot, theta_dot + 0.02 * theta_acc])
        self.steps += 1
        done = abs(self.state[0]) > 2.4 or abs(self.state[2]) > 0.2095 or self.steps >= self.limit
        return self.state.astype(np.float32), 1.0, done


def returns_of(rewards, gamma):
    out, running = [], 0.0
    for r in reversed(rewards):
        running = r + gamma * running
        out.append(running)
    return out[::-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gpuad.manual_seed(args.seed)
    env = CartPole(np.random.default_rng(args.seed))
    policy = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 2))
    optimizer = gpuad.optim.Adam(policy.parameters(), lr=1e-2)
    recent = []
    for episode in range(args.episodes):
        obs, done, log_probs, entropies, rewards = env.reset(), False, [], [], []
        while not done:
            dist = Categorical(logits=policy(gpuad.from_numpy(obs)))
            action = dist.sample()
            log_probs.append(dist.log_prob(action))
            entropies.append(dist.entropy())
            obs, reward, done = env.step(action.item())
            rewards.append(reward)
        returns = gpuad.tensor(returns_of(rewards, args.gamma))
        advantage = (returns - returns.mean()) / (returns.std() + 1e-8) if len(rewards) > 1 \
            else returns * 0
        loss = -(gpuad.stack(log_probs) * advantage).sum() - 0.01 * gpuad.stack(entropies).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recent = (recent + [len(rewards)])[-20:]
        if episode % 50 == 0 or episode == args.episodes - 1:
            mean_length = sum(recent) / len(recent)
            print(json.dumps({"episode": episode, "mean_length_last_20": mean_length}), flush=True)
    return sum(recent) / len(recent)


if __name__ == "__main__":
    main()
