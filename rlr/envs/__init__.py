"""Multi-turn environments for RL (TRL's `environment_factory`), named in `rl.environment`.

An environment is a class: `reset(**row)` starts an episode from a prepared data row (and may return text that TRL
appends to the prompt), its public methods are the tools the model calls (type hints + docstrings, as for rl.tools),
and an optional `get_reward()` scores the finished episode (TRL logs it under the class name, weight 1). TRL makes
one instance per rollout. A shipped environment also writes its own prompts: `data.train.source: env:<name>`.
"""
