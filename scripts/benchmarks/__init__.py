"""The parts of scripts/bench.py, one job per module (scripts/bench.py is the entry point).

data (MNIST or random data, initial weights) -> runners (one framework training one network)
-> timing (interleaved rounds) -> overhead, training (the benchmarks) -> memory (peak RSS and
GPU memory) -> report (environment and table). floor holds the hand-written reference networks.
"""
