"""rlr: reinforcement learning for reasoning language models, from a YAML preset, on one node."""

__version__ = "0.1.0"
